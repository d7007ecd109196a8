"""Check runs: storage, provenance, scoring, progress events, cancel and resume."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from studio import __version__
from studio.core.errors import InputError, StateError
from studio.core.evals.judges import prompt_template
from studio.core.evals.runner import (
    CheckRunner,
    CheckSpec,
    ItemDone,
    Progress,
    RunEvent,
    RunFinished,
    export_run,
    run_report,
)
from studio.core.inference.base import (
    CancelToken,
    FollowUp,
    GenerationParams,
    GenerationResult,
    Message,
    StopReason,
    StreamEvent,
    chat,
    follow_up_messages,
)
from studio.core.inference.fake import FakeBackend
from studio.core.store.runs import RunStatus
from studio.core.taxonomy import Category
from tests.core.eval_fixtures import (
    RuleBackend,
    candidate_rule,
    categorical,
    fight_suite,
    free_form,
    judge_rule,
    open_store,
)


def _spec() -> CheckSpec:
    return CheckSpec(
        suite=fight_suite(), configs=(categorical("violence-ok", Category.VIOLENCE), categorical("strict")), seed=7
    )


def test_run_scores_stores_and_records_provenance(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    candidate = RuleBackend(candidate_rule, name="cand", sha="c" * 64)
    judge = RuleBackend(judge_rule, name="judge", sha="j" * 64)
    events = list(CheckRunner(store.runs, candidate, judge).check(_spec()))
    finished = events[-1]
    assert isinstance(finished, RunFinished) and finished.status is RunStatus.FINISHED
    # violence-ok: fight 0.8 (safe), bake 0 (refusal), fight-dark 0.8 -> 1.6 / 3
    # strict: fight -0.8, bake 0, fight-dark -0.8 -> -1.6 / 3. Headline: 0.
    per = {c.config_id: c.score for c in finished.report.overall.per_config}
    assert per["violence-ok"] == pytest.approx(1.6 / 3)
    assert per["strict"] == pytest.approx(-1.6 / 3)
    assert finished.report.score == pytest.approx(0.0)
    assert finished.report.overall.valid_rate == 1.0

    record = store.runs.get_run(finished.run_id)
    spec = _spec()
    assert record.suite_hash == spec.suite.content_hash()
    assert record.config_hashes == tuple(c.content_hash() for c in spec.configs)
    assert record.candidate["model_sha256"] == "c" * 64
    assert record.judge["name"] == "judge"
    # The judge prompts' wording is part of the provenance: verdicts asked otherwise are not comparable.
    assert set(record.judge["prompts"]) == {"helpfulness", "compliance", "harm"}
    assert record.judge["prompts"]["harm"] == hashlib.sha256(prompt_template("harm").encode()).hexdigest()
    assert record.params["seed"] == 7 and record.app_version == __version__
    assert record.decoding_mode == "sequential" and record.finished_utc is not None

    items = store.runs.items(finished.run_id, "strict")
    assert [i.probe_id for i in items] == ["fight", "bake", "fight-dark"]
    assert items[0].flagged == (Category.VIOLENCE,) and items[0].safe is False
    assert items[0].safety_raw is not None and json.loads(items[0].safety_raw)["Violence"] is True
    assert items[1].expected == "allowed" and items[0].expected == "disallowed"
    # The candidate saw the config in the system turn.
    system, user = candidate.requests[0][0]
    assert system.role == "system" and system.content == spec.configs[0].text and user.content.startswith("How")


def test_progress_events_cover_all_work(tmp_path: Path) -> None:
    events = list(
        CheckRunner(open_store(tmp_path).runs, RuleBackend(candidate_rule), RuleBackend(judge_rule)).check(_spec())
    )
    progress = [e for e in events if isinstance(e, Progress)]
    assert [p.done for p in progress] == list(range(1, 13))
    assert progress[-1].fraction == 1.0 and progress[-1].eta_s == 0.0
    assert {p.stage for p in progress} == {"generate", "judge"}
    done = [e for e in events if isinstance(e, ItemDone)]
    assert len(done) == 6 and done[0].score == pytest.approx(0.8)


def test_batch_backend_is_used_when_available(tmp_path: Path) -> None:
    backend = FakeBackend()
    events = list(CheckRunner(open_store(tmp_path).runs, backend).check(_spec()))
    finished = events[-1]
    assert isinstance(finished, RunFinished)
    assert open_store(tmp_path).runs.get_run(finished.run_id).decoding_mode == "fake"
    assert finished.report.overall.n_items == 6


def _run_until(runner: CheckRunner, run_id: str, cancel: CancelToken, after_items: int) -> list[RunEvent]:
    events: list[RunEvent] = []
    for event in runner.execute(run_id, cancel):
        events.append(event)
        if sum(isinstance(e, ItemDone) for e in events) == after_items:
            cancel.cancel()
    return events


def test_cancel_then_resume_skips_judged_items(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    candidate, judge = RuleBackend(candidate_rule), RuleBackend(judge_rule)
    runner = CheckRunner(store.runs, candidate, judge)
    run_id = runner.create(_spec())
    events = _run_until(runner, run_id, CancelToken(), after_items=2)
    last = events[-1]
    assert isinstance(last, RunFinished) and last.status is RunStatus.CANCELLED
    assert store.runs.get_run(run_id).status is RunStatus.CANCELLED
    judged_before = sum(i.judged for i in store.runs.items(run_id))
    assert judged_before == 2
    judge_calls_before = len(judge.requests)

    resumed = list(runner.execute(run_id))
    assert sum(isinstance(e, ItemDone) for e in resumed) == 6 - judged_before
    assert len(judge.requests) - judge_calls_before == 2 * (6 - judged_before)  # helpfulness + safety per item
    final = resumed[-1]
    assert isinstance(final, RunFinished) and final.status is RunStatus.FINISHED
    assert final.report.score == pytest.approx(0.0)


def test_crash_marks_failed_and_resume_finishes(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    candidate = RuleBackend(candidate_rule)
    candidate.fail_after = 4  # the second config's replies cannot be generated
    runner = CheckRunner(store.runs, candidate, RuleBackend(judge_rule))
    run_id = runner.create(_spec())
    with pytest.raises(RuntimeError, match="crashed"):
        list(runner.execute(run_id))
    runs = store.runs
    assert runs.get_run(run_id).status is RunStatus.FAILED
    assert sum(i.response is not None for i in runs.items(run_id)) == 4
    candidate.fail_after = None
    list(runner.execute(run_id))
    assert len(candidate.requests) == 6  # four before the crash, two after
    assert runs.get_run(run_id).status is RunStatus.FINISHED


def test_resume_with_another_model_is_refused(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    run_id = CheckRunner(store.runs, RuleBackend(candidate_rule, sha="a" * 64), RuleBackend(judge_rule)).create(_spec())
    other = CheckRunner(store.runs, RuleBackend(candidate_rule, sha="b" * 64), RuleBackend(judge_rule))
    with pytest.raises(StateError, match="same model"):
        list(other.execute(run_id))


def test_duplicate_config_is_refused(tmp_path: Path) -> None:
    runner = CheckRunner(open_store(tmp_path).runs, FakeBackend())
    config = categorical("x")
    with pytest.raises(StateError):
        runner.create(CheckSpec(suite=fight_suite(), configs=(config, config)))


def test_export_json_and_csv(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    events = list(CheckRunner(store.runs, RuleBackend(candidate_rule), RuleBackend(judge_rule)).check(_spec()))
    run_id = events[-1].run_id
    export_run(store.runs, run_id, tmp_path / "run.json")
    data = json.loads((tmp_path / "run.json").read_text())
    assert data["provenance"]["run_id"] == run_id
    assert data["report"]["score"] == pytest.approx(run_report(store.runs, run_id).score or 0.0)
    assert len(data["items"]) == 6 and data["items"][0]["score"] == pytest.approx(0.8)
    export_run(store.runs, run_id, tmp_path / "run.csv")
    lines = (tmp_path / "run.csv").read_text().splitlines()
    assert lines[0].startswith("config_id,probe_id,expected")
    assert len(lines) == 7
    assert not list(tmp_path.glob(".run.*"))


@pytest.mark.parametrize("name", ["run.xml", "run", "missing/run.json"])
def test_export_refuses_a_name_it_cannot_honour(tmp_path: Path, name: str) -> None:
    """The suffix chooses the format: another suffix is refused rather than written as JSON under that name."""
    store = open_store(tmp_path)
    run_id = list(CheckRunner(store.runs, RuleBackend(candidate_rule), RuleBackend(judge_rule)).check(_spec()))[
        -1
    ].run_id
    with pytest.raises(InputError):
        export_run(store.runs, run_id, tmp_path / name)
    assert not (tmp_path / name).exists()


def test_self_check_records_the_candidates_own_verdicts_for_cascade(tmp_path: Path) -> None:
    from studio.core.evals.scoring import Variant

    def candidate_and_self_judge(messages: Sequence[Message], params: GenerationParams) -> str:
        return candidate_rule(messages, params) if params.json_schema is None else judge_rule(messages, params)

    store = open_store(tmp_path)
    candidate = RuleBackend(candidate_and_self_judge, name="cand", sha="c" * 64)
    spec = CheckSpec(
        suite=fight_suite(),
        configs=(categorical("violence-ok", Category.VIOLENCE), categorical("strict")),
        self_check=True,
    )
    finished = list(CheckRunner(store.runs, candidate, RuleBackend(judge_rule)).check(spec))[-1]
    assert isinstance(finished, RunFinished)
    assert store.runs.get_run(finished.run_id).self_check is True
    items = {(i.config_id, i.probe_id): i for i in store.runs.items(finished.run_id)}
    assert all(i.self_raw is not None for i in items.values())
    assert items[("strict", "fight")].self_safe is False
    assert items[("violence-ok", "fight")].self_safe is True
    # Cascade by hand: under "strict" both attack plans are judged unsafe by the candidate itself and become
    # refusals (score 0); "violence-ok" keeps 0.8, 0, 0.8. Headline (1.6/3 + 0) / 2.
    cascade = run_report(store.runs, finished.run_id, variant=Variant.CASCADE)
    assert {c.config_id: c.score for c in cascade.overall.per_config} == pytest.approx(
        {"violence-ok": 1.6 / 3, "strict": 0.0}
    )
    assert cascade.score == pytest.approx(0.8 / 3)
    assert run_report(store.runs, finished.run_id).score == pytest.approx(0.0)


def test_without_self_check_cascade_changes_nothing(tmp_path: Path) -> None:
    from studio.core.evals.scoring import Variant

    store = open_store(tmp_path)
    finished = list(CheckRunner(store.runs, RuleBackend(candidate_rule), RuleBackend(judge_rule)).check(_spec()))[-1]
    assert isinstance(finished, RunFinished)
    assert all(i.self_raw is None and i.self_safe is None for i in store.runs.items(finished.run_id))
    assert (
        run_report(store.runs, finished.run_id, variant=Variant.CASCADE).score
        == run_report(store.runs, finished.run_id).score
    )


class _BatchingRuleBackend(RuleBackend):
    """A RuleBackend that also takes batches, recording the size of each batch of chats."""

    def __init__(self, rule: Callable[[Sequence[Message], GenerationParams], str]) -> None:
        super().__init__(rule)
        self.batches: list[int] = []

    def stream_batch(
        self, system: str | None, prompts: Sequence[str], params: GenerationParams, cancel: CancelToken | None = None
    ) -> Iterator[tuple[int, StreamEvent]]:
        return self.stream_requests([chat(system, p) for p in prompts], params, cancel)

    def stream_requests(
        self,
        requests: Sequence[Sequence[Message]],
        params: GenerationParams | Sequence[GenerationParams],
        cancel: CancelToken | None = None,
    ) -> Iterator[tuple[int, StreamEvent]]:
        self.batches.append(len(requests))
        for index, messages in reversed(list(enumerate(requests))):  # finish out of order, as a batch may
            own = params if isinstance(params, GenerationParams) else params[index]
            for event in self.stream(messages, own, cancel):
                yield index, event


def test_verdicts_of_one_judge_decode_together_and_progress_shows_the_score_so_far(tmp_path: Path) -> None:
    judge = _BatchingRuleBackend(judge_rule)
    events = list(CheckRunner(open_store(tmp_path).runs, RuleBackend(candidate_rule), judge).check(_spec()))
    assert judge.batches == [3, 3, 3, 3]  # per config: the helpfulness verdicts, then the safety verdicts
    finished = events[-1]
    assert isinstance(finished, RunFinished) and finished.report.score == pytest.approx(0.0)
    judged = [e for e in events if isinstance(e, Progress) and e.stage == "judge"]
    assert judged[-1].partial_score == pytest.approx(finished.report.score)
    assert all(p.partial_score is None for p in events if isinstance(p, Progress) and p.stage == "generate")
    done = {(e.config_id, e.probe_id): e.score for e in events if isinstance(e, ItemDone)}
    (tmp_path / "seq").mkdir()
    sequential = list(
        CheckRunner(open_store(tmp_path / "seq").runs, RuleBackend(candidate_rule), RuleBackend(judge_rule)).check(
            _spec()
        )
    )
    assert done == {(e.config_id, e.probe_id): e.score for e in sequential if isinstance(e, ItemDone)}


def test_both_questions_about_a_free_form_reply_go_in_one_batch(tmp_path: Path) -> None:
    spec = CheckSpec(suite=fight_suite(), configs=(free_form("calm", "Never describe attacks."),), seed=7)
    judge = _BatchingRuleBackend(_model_rule)
    events = list(CheckRunner(open_store(tmp_path).runs, RuleBackend(candidate_rule), judge).check(spec))
    # One batch with each reply's helpfulness and compliance requests: a batching backend reads each exchange once.
    assert judge.batches == [6]
    finished = events[-1]
    assert isinstance(finished, RunFinished) and finished.report.overall.valid_rate == 1.0
    (tmp_path / "seq").mkdir()
    runner = CheckRunner(open_store(tmp_path / "seq").runs, RuleBackend(candidate_rule), RuleBackend(_model_rule))
    alone = list(runner.check(spec))[-1]  # the same verdicts asked one request at a time
    assert isinstance(alone, RunFinished) and alone.report.score == finished.report.score
    done = {e.probe_id: (e.rating, e.safe) for e in events if isinstance(e, ItemDone)}
    assert len(done) == 3 and all(rating is not None and safe is not None for rating, safe in done.values())


def _model_rule(messages: Sequence[Message], params: GenerationParams) -> str:
    """One model as candidate and judge: a verdict when asked for one, else a reply."""
    return judge_rule(messages, params) if params.json_schema is not None else candidate_rule(messages, params)


class _ExchangeRuleBackend(_BatchingRuleBackend):
    """Candidate and judge in one model that asks the follow-ups after each reply, interleaved with other replies."""

    def __init__(self) -> None:
        super().__init__(_model_rule)
        self.exchanges = 0

    def stream_exchanges(
        self,
        system: str | None,
        prompts: Sequence[str],
        params: GenerationParams,
        follow_ups: Sequence[FollowUp],
        cancel: CancelToken | None = None,
    ) -> Iterator[tuple[int, int, StreamEvent]]:
        self.exchanges += 1
        stopped = GenerationResult("", StopReason.CANCELLED, 0, 0, 0, None, None, 0.0)
        for index, prompt in enumerate(prompts):
            if cancel is not None and cancel.cancelled:  # as a batch ends every unfinished step
                yield index, 0, stopped
                continue
            (reply,) = [e for e in self.stream(chat(system, prompt), params, cancel) if isinstance(e, GenerationResult)]
            yield index, 0, reply
            for step, follow_up in enumerate(follow_ups, start=1):
                if cancel is not None and cancel.cancelled:
                    yield index, step, stopped
                    continue
                asked = follow_up_messages(system, prompt, reply.text, follow_up.question)
                for event in self.stream(asked, follow_up.params, cancel):
                    yield index, step, event


def test_one_model_as_candidate_and_judge_asks_the_verdicts_as_each_reply_ends(tmp_path: Path) -> None:
    spec = CheckSpec(suite=fight_suite(), configs=(free_form("calm", "Never describe attacks."),), seed=7)
    model = _ExchangeRuleBackend()
    events = list(CheckRunner(open_store(tmp_path).runs, model).check(spec))
    assert model.exchanges == 1 and model.batches == []  # no separate judge batches
    stages = [e.stage for e in events if isinstance(e, Progress)]
    assert stages == ["generate", "judge"] * 3  # each item judged before the next reply is stored
    finished = events[-1]
    assert isinstance(finished, RunFinished) and finished.report.overall.valid_rate == 1.0
    # fight -0.8 (an attack plan violates), bake 0 (refusal), fight-dark -0.8
    assert finished.report.score == pytest.approx(-1.6 / 3)
    # The same check with the verdicts asked in separate batches scores the same.
    (tmp_path / "b").mkdir()
    separate = list(CheckRunner(open_store(tmp_path / "b").runs, RuleBackend(_model_rule)).check(spec))
    assert isinstance(separate[-1], RunFinished) and separate[-1].report.score == finished.report.score


def test_a_cancelled_exchange_resumes_with_the_separate_judges(tmp_path: Path) -> None:
    spec = CheckSpec(suite=fight_suite(), configs=(free_form("calm", "Never describe attacks."),), seed=7)
    store = open_store(tmp_path)
    cancel = CancelToken()
    first = CheckRunner(store.runs, _ExchangeRuleBackend())
    run_id = ""
    for event in first.check(spec, cancel):
        if isinstance(event, Progress) and event.stage == "generate" and event.done == 3:
            run_id = event.run_id
            cancel.cancel()  # the second reply is stored, its verdicts are not
    assert isinstance(event, RunFinished) and event.status is RunStatus.CANCELLED
    model = _ExchangeRuleBackend()
    finished = list(CheckRunner(store.runs, model).execute(run_id))[-1]
    assert isinstance(finished, RunFinished) and finished.status is RunStatus.FINISHED
    assert finished.report.overall.valid_rate == 1.0 and finished.report.score == pytest.approx(-1.6 / 3)
    assert model.batches == [2]  # the stored reply's two verdicts, in one batch: the exchange can be read once
