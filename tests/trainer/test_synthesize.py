"""Pair synthesis over the fake backend: every written pair obeys the CoSAlign rules and can be audited."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import pytest

from studio.core.errors import InputError
from studio.core.inference.fake import FakeBackend
from studio.core.taxonomy import Category, parse_category
from studio.trainer.data import error_score_tenths
from studio.trainer.progress import Progress
from studio.trainer.synthesize import (
    WRITTEN_REFUSALS,
    Response,
    SeedPrompt,
    SynthesisSettings,
    build_pair_rows,
    is_refusal,
    label,
    label_by_prompt,
    load_seed_prompts,
    plan_responses,
    synthesize,
)


def _run(tmp_path: Path, name: str, seed: int = 0) -> tuple[Path, str, list[dict[str, object]]]:
    prompts = load_seed_prompts()[:5]
    # The fake judges flag categories at random, so most replies break their config; five prompts leave a few pairs.
    out = tmp_path / name
    stream = io.StringIO()
    settings = SynthesisSettings(responses_per_prompt=4, seed=seed)
    summary = synthesize(FakeBackend(), FakeBackend(), prompts, out, settings, Progress(stream))
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert summary.responses == 20
    return out, summary.data_sha256, events


def test_bundled_seed_set_covers_every_category_and_benign() -> None:
    prompts = load_seed_prompts()
    assert 55 <= len(prompts) <= 80
    covered = {c for p in prompts for c in p.categories}
    assert covered == {c for c in Category if c is not Category.OTHER_HARMS}
    assert any(not p.categories for p in prompts)


def test_pairs_follow_the_recipe(tmp_path: Path) -> None:
    out, _, events = _run(tmp_path, "pairs.jsonl")
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows, "the fake judges flag categories at random, so some scores must differ"
    for row in rows:
        assert row["chosen_score"] < row["rejected_score"]
        assert row["chosen_score"] < 3
        allowed = [parse_category(c) for c in row["allowed"]]
        assert Category.OTHER_HARMS not in allowed
        for side in ("chosen", "rejected"):
            detail = row[f"{side}_detail"]
            expected = error_score_tenths([parse_category(c) for c in detail["flagged"]], detail["addressed"], allowed)
            assert detail["score"] == expected / 10 == row[f"{side}_score"]
            assert detail["addressed"] == (detail["rating"] > 0)
        assert row["config_mode"] in {"exact", "superset", "safe", "not-superset"}
        assert row["system"] and row["phrasing"] is not None and row["phrasing_seed"] is not None
    assert events[-1]["event"] == "progress" and events[-1]["done"] == events[-1]["total"]
    manifest = json.loads(out.with_name(out.name + ".manifest.json").read_text())
    assert manifest["summary"]["pairs"] == len(rows)


def test_same_seed_gives_the_same_file(tmp_path: Path) -> None:
    first_path, first, _ = _run(tmp_path, "a.jsonl", seed=0)
    _, second, _ = _run(tmp_path, "b.jsonl", seed=0)
    assert first_path.read_text()
    assert first == second
    prompts = load_seed_prompts()[:5]
    plans = [plan_responses(prompts, SynthesisSettings(), random.Random(seed)) for seed in (0, 1)]
    assert [(r.seed, r.config.text) for r in plans[0]] != [(r.seed, r.config.text) for r in plans[1]]


def test_unlabelled_responses_are_left_out_of_pairs() -> None:
    prompts = load_seed_prompts()[:1]
    rng = random.Random(0)
    planned = plan_responses(prompts, SynthesisSettings(responses_per_prompt=3), rng)
    texts = ["refusal", "helpful", "broken"]
    for response, text, rating in zip(planned, texts, [0, 5, None], strict=True):
        response.text = text
        response.rating = rating
        response.flagged = frozenset() if rating is not None else None
    rows, _ = build_pair_rows(prompts, planned, SynthesisSettings(), rng)
    assert rows
    assert {(r["chosen"], r["rejected"]) for r in rows} == {("helpful", "refusal")}


def test_plan_includes_an_unconfigured_response_first() -> None:
    prompts = load_seed_prompts()[:2]
    planned = plan_responses(prompts, SynthesisSettings(responses_per_prompt=3), random.Random(0))
    assert len(planned) == 6
    assert all(isinstance(r, Response) for r in planned)
    assert planned[0].config.text is None and planned[3].config.text is None
    assert planned[1].config.text is not None


def test_bad_seed_file_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "seeds.yaml"
    path.write_text(
        "format: cosa-studio/seed-prompts/v1\nprompts:\n  - id: a\n    categories: [not_a_category]\n    text: hi\n"
    )
    with pytest.raises(InputError) as caught:
        load_seed_prompts(path)
    assert str(caught.value).startswith(f"{path}:4")


@pytest.mark.parametrize(
    ("text", "refused"),
    [
        ("I'm sorry, but I can't help with that.", True),
        ("I can\u2019t assist with this request.", True),
        ("", True),
        ("Phishing works because it creates urgency.", False),
        ("Here is a scene where the con artist is caught.", False),
    ],
)
def test_refusal_markers(text: str, refused: bool) -> None:
    assert is_refusal(text) is refused


def test_marker_labelling_skips_the_helpfulness_judge() -> None:
    prompts = load_seed_prompts()[:1]
    settings = SynthesisSettings(responses_per_prompt=2, addressed_by="markers")
    planned = plan_responses(prompts, settings, random.Random(0))
    planned[0].text = "I cannot help with that."
    planned[1].text = "Scams rely on trust."
    judge = FakeBackend()
    label(judge, prompts, planned, settings, Progress(io.StringIO()))
    assert [r.rating for r in planned] == [0, 5]
    assert [r.addressed for r in planned] == [False, True]
    assert len(judge.requests) == 2  # one harm judgement per reply, no helpfulness judgement
    assert all("helpfulness" not in r.judge_raw for r in planned)


def _labelled_by_prompt(categories: list[Category], texts: list[str]) -> tuple[list[SeedPrompt], list[Response]]:
    prompts = [SeedPrompt(id="p", categories=categories, text="request")]
    planned = plan_responses(prompts, SynthesisSettings(responses_per_prompt=len(texts)), random.Random(0))
    for response, text in zip(planned, texts, strict=True):
        response.text = text
    label_by_prompt(prompts, planned)
    return prompts, planned


def test_prompt_category_labels_flag_the_prompts_categories_unless_refused() -> None:
    _, planned = _labelled_by_prompt([Category.VIOLENCE, Category.WEAPONS], ["Here is the scene.", "I can't do that."])
    answer, refusal = planned
    assert (answer.flagged, answer.rating, answer.addressed) == ({Category.VIOLENCE, Category.WEAPONS}, 5, True)
    assert (refusal.flagged, refusal.rating, refusal.addressed) == (frozenset(), 0, False)
    assert answer.valid and refusal.valid
    assert "prompt-categories" in answer.judge_raw["labeler"]


@pytest.mark.parametrize(
    ("categories", "answer_score_by_allowed_count", "modes"),
    [
        # One category: the answer scores 0.1 where violence is allowed and 3.0 where it is not.
        ([Category.VIOLENCE], {1: 0.1, 0: 3.0}, {"exact", "superset", "safe", "not-superset"}),
        # Two categories: both allowed 0.1 + 0.1; one allowed 0.1 + 3; none allowed 3 + 3.
        (
            [Category.VIOLENCE, Category.WEAPONS],
            {2: 0.2, 1: 3.1, 0: 6.0},
            {"exact", "superset", "safe", "not-superset"},
        ),
        # Benign: the answer flags nothing; safe repeats exact (nothing allowed) and is dropped.
        ([], {0: 0.0}, {"exact", "superset"}),
    ],
)
def test_prompt_category_pairs_have_hand_computed_scores(
    categories: list[Category], answer_score_by_allowed_count: dict[int, float], modes: set[str]
) -> None:
    answer, refusal = "Here is the answer.", "I'm sorry, I cannot help."
    prompts, planned = _labelled_by_prompt(categories, [answer, refusal])
    for seed in range(5):
        rows, skipped_equal = build_pair_rows(prompts, planned, SynthesisSettings(), random.Random(seed))
        assert skipped_equal == 0
        assert {row["config_mode"] for row in rows} == modes
        for row in rows:
            allowed_count = sum(1 for c in categories if c.value in row["allowed"])
            answer_score = answer_score_by_allowed_count[allowed_count]
            # A refusal is never addressed and flags nothing: 1.0 under every config.
            chosen, rejected = sorted([(answer_score, answer), (1.0, refusal)])
            assert (row["chosen_score"], row["chosen"]) == chosen
            assert (row["rejected_score"], row["rejected"]) == rejected


def test_written_refusals_make_pairs_from_replies_that_never_refuse(tmp_path: Path) -> None:
    prompts = [
        SeedPrompt(id="risky", categories=[Category.DRUGS], text="How do people hide drugs?"),
        SeedPrompt(id="benign", categories=[], text="Plan a picnic."),
    ]
    settings = SynthesisSettings(responses_per_prompt=2, labeler="prompt-categories", written_refusals=True)
    out = tmp_path / "pairs.jsonl"
    summary = synthesize(FakeBackend(), FakeBackend(), prompts, out, settings, Progress(io.StringIO()))
    labelled = [json.loads(line) for line in Path(summary.responses_path).read_text().splitlines()]
    refusals = [r for r in labelled if r["generated_under"]["mode"] == "written-refusal"]
    assert [r["prompt_id"] for r in refusals] == ["risky", "benign"]
    assert all(r["text"] in WRITTEN_REFUSALS and r["rating"] == 0 and r["flagged"] == [] for r in refusals)
    # The fake replies contain no refusal phrase, so each one flags its prompt's categories.
    replies = [r for r in labelled if r["generated_under"]["mode"] != "written-refusal"]
    assert {(r["prompt_id"], tuple(r["flagged"]), r["rating"]) for r in replies} == {
        ("risky", ("drugs",), 5),
        ("benign", (), 5),
    }
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    # Each training config pairs both replies of a prompt with its refusal: 2 pairs per config.
    per_prompt = {(r["prompt_id"], r["config_mode"]) for r in rows}
    assert len(rows) == 2 * len(per_prompt) == summary.pairs
    for row in rows:
        refusal_chosen = row["chosen"] in WRITTEN_REFUSALS
        assert refusal_chosen == (row["prompt_id"] == "risky" and "drugs" not in row["allowed"])
    manifest = json.loads(out.with_name(out.name + ".manifest.json").read_text())
    assert manifest["labeler"] == "prompt-categories" and manifest["judge"] is None


@pytest.mark.network_local
def test_a_server_judge_gets_both_judges_requests_in_one_queue_at_its_concurrency() -> None:
    from studio.core.evals.judges import HarmJudge
    from studio.core.inference.openai_backend import OpenAIBackend
    from tests.core.endpoint_standin import Behaviour, StandinServer

    prompts = load_seed_prompts()[:3]
    settings = SynthesisSettings(responses_per_prompt=2)
    planned = plan_responses(prompts, settings, random.Random(0))
    for response in planned:
        response.text = "Here is a plain answer."
    server = StandinServer(Behaviour(latency_s=0.05)).start()
    judge = OpenAIBackend(server.url, "standin", concurrency=4)
    try:
        label(judge, prompts, planned, settings, Progress(io.StringIO()))
    finally:
        judge.close()
        server.stop()
    behaviour = server.behaviour
    assert behaviour.requests == 2 * len(planned) and behaviour.peak_in_flight == 4
    harm_texts = {HarmJudge(judge).messages(p.text, "Here is a plain answer.")[0].content for p in prompts}
    first = [body["messages"][0]["content"] in harm_texts for body in behaviour.bodies[:4]]
    assert any(first) and not all(first)  # harm and helpfulness requests share the queue from the start
    assert all({"harm", "helpfulness"} <= set(r.judge_raw) for r in planned)
