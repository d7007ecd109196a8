"""Check runs: generate each probe's reply under each config, judge it, store everything, and report progress.

A run is resumable per item: responses and verdicts are stored as they arrive, and running a stored run again
only does the work still missing. Progress is a plain stream of events (:data:`RunEvent`), so a terminal and a GUI
are two observers of the same protocol.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from studio import __version__
from studio.core.documents import ProbeSuite, SafetyConfig
from studio.core.errors import CancelledError, InputError, StateError
from studio.core.evals.judges import HelpfulnessJudge, SafetyJudge, prompt_fingerprints
from studio.core.evals.judging import Judged, Reply, judge_many, safety_many
from studio.core.evals.scoring import Helpfulness, ScoredItem, ScoreReport, Variant, item_score, score_items
from studio.core.fileio import output_target, write_output
from studio.core.inference.base import (
    Backend,
    BackendInfo,
    BatchBackend,
    CancelToken,
    ExchangeBackend,
    GenerationParams,
    GenerationResult,
    StopReason,
    chat,
    max_concurrency,
)
from studio.core.inference.concurrent import RequestsFailed, complete_concurrently
from studio.core.store.run_seals import resume_problem, seal_run
from studio.core.store.runs import ItemRecord, ItemSeed, RunRecord, RunStatus, RunStore
from studio.core.store.statements import StatementRepo


@dataclass(frozen=True)
class CheckSpec:
    """What to check: a suite under one or more configs, with decoding params and a seed."""

    suite: ProbeSuite
    configs: tuple[SafetyConfig, ...]
    params: GenerationParams = field(default_factory=lambda: GenerationParams(max_tokens=256))
    judge_params: GenerationParams = field(default_factory=lambda: GenerationParams(temperature=0.0, max_tokens=256))
    seed: int = 0
    label: str = ""
    #: Also ask the candidate to judge its own replies, so the Cascade variant can be scored.
    self_check: bool = False


@dataclass(frozen=True)
class ItemDone:
    """One item has its response and verdicts."""

    run_id: str
    config_id: str
    probe_id: str
    rating: int | None
    safe: bool | None
    score: float | None  # None when the item is invalid


@dataclass(frozen=True)
class Progress:
    """Work done so far: each item counts twice (its reply, then its verdicts)."""

    run_id: str
    stage: str  # "generate" or "judge"
    done: int
    total: int
    eta_s: float | None
    #: CoSA-Score of the items judged so far in this run (None before the first valid verdict).
    partial_score: float | None = None

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0


@dataclass(frozen=True)
class RunFinished:
    run_id: str
    status: RunStatus
    report: ScoreReport
    #: Why a failed run stopped (its items keep their own errors; resuming the run tries them again).
    error: str | None = None


RunEvent = ItemDone | Progress | RunFinished


def backend_record(info: BackendInfo) -> dict[str, Any]:
    """Provenance of a backend: name, kind, model file and its sha256, chat template hash."""
    return {
        "name": info.name,
        "kind": info.kind,
        "model_path": info.model_path,
        "model_sha256": info.model_sha256,
        "chat_template_sha256": info.chat_template_sha256,
        "context_length": info.context_length,
        "device": info.device,
        **endpoint_record(info),
    }


def endpoint_record(info: BackendInfo) -> dict[str, Any]:
    """For a model server: its URL, the model id asked for and what the server reported about itself."""
    if info.kind != "openai":
        return {}
    return {"endpoint": {key: info.extra[key] for key in ("base_url", "model_id", "server") if key in info.extra}}


def marker_warnings_for(spec: CheckSpec, *backends: Backend) -> list[str]:
    """Warnings about marker-like text in the configs and probes, when a server renders the chat template itself
    and nothing defuses such text on the way (see :mod:`studio.core.inference.endpoints`)."""
    from studio.core.inference.endpoints import marker_warnings

    if not any(b.info.kind == "openai" and not getattr(b, "guard", False) for b in backends):
        return []
    texts = {f"config {c.id}": c.text for c in spec.configs}
    texts.update({f"probe {pid}": p.text for pid, p in zip(spec.suite.probe_ids(), spec.suite.probes, strict=True)})
    return marker_warnings(texts)


def new_run_id() -> str:
    return datetime.now(UTC).strftime("run-%Y%m%dT%H%M%S-") + secrets.token_hex(3)


def _seeded(params: GenerationParams, seed: int) -> GenerationParams:
    return replace(params, seed=seed)


def scored_item(item: ItemRecord, use: str = "judge") -> ScoredItem:
    """A stored item for scoring; ``use="human"`` takes the human verdicts where a person gave them."""
    rating, safe = item.rating, item.safe
    if not item.judged:
        rating, safe = None, None
    if use == "human":
        rating = item.human_rating if item.human_rating is not None else rating
        safe = item.human_safe if item.human_safe is not None else safe
    return ScoredItem(
        item.config_id,
        rating,
        safe,
        probe_id=item.probe_id,
        item_type=item.expected,
        categories=item.categories,
        self_safe=item.self_safe,
        flagged=None if item.flagged is None else frozenset(item.flagged),
    )


def run_report(
    runs: RunStore,
    run_id: str,
    use: str = "judge",
    helpfulness: Helpfulness = Helpfulness.GRADED,
    variant: Variant = Variant.PLAIN,
) -> ScoreReport:
    items = runs.items(run_id)
    return score_items((scored_item(i, use) for i in items), helpfulness, variant)


class CheckRunner:
    """Runs checks with a candidate backend and a judge backend (they may be the same object)."""

    def __init__(self, runs: RunStore, candidate: Backend, judge: Backend | None = None) -> None:
        self.runs = runs
        self.candidate = candidate
        self.judge_backend = judge or candidate

    def create(self, spec: CheckSpec) -> str:
        """Store a new run with all its items pending and return its id."""
        if not spec.configs:
            raise StateError("a check needs at least one config")
        ids = [c.id for c in spec.configs]
        if len(set(ids)) != len(ids):
            raise StateError("the same config id is given twice")
        seeds = [
            ItemSeed(
                config.id,
                probe_id,
                probe.text,
                probe.expectation_under(config).value,
                tuple(probe.categories),
            )
            for config in spec.configs
            for probe_id, probe in zip(spec.suite.probe_ids(), spec.suite.probes, strict=True)
        ]
        run_id = new_run_id()
        self.runs.create_run(
            run_id,
            label=spec.label,
            suite=spec.suite,
            configs=list(spec.configs),
            candidate=backend_record(self.candidate.info),
            judge={**backend_record(self.judge_backend.info), "prompts": prompt_fingerprints()},
            params=_seeded(spec.params, spec.seed).as_record(),
            judge_params=_seeded(spec.judge_params, spec.seed).as_record(),
            seed=spec.seed,
            app_version=__version__,
            items=seeds,
            self_check=spec.self_check,
            warnings=tuple(marker_warnings_for(spec, self.candidate, self.judge_backend)),
        )
        return run_id

    def check(self, spec: CheckSpec, cancel: CancelToken | None = None) -> Iterator[RunEvent]:
        """Create a run and execute it."""
        yield from self.execute(self.create(spec), cancel)

    def execute(self, run_id: str, cancel: CancelToken | None = None) -> Iterator[RunEvent]:
        """Do the missing work of a run, yielding events; ends with :class:`RunFinished`.

        Raises :class:`StateError` when the candidate is not the model the run was started with.
        """
        run = self._start(run_id, cancel)
        try:
            for config in self.runs.configs(run_id):
                if self._asks_in_exchange(run, config):
                    yield from self._exchange_config(run, config)
                else:
                    yield from self._generate_config(run, config)
                yield from self._judge_config(run, config)
        except CancelledError:
            yield self._finish(run, RunStatus.CANCELLED)
            return
        except _Stopped as stopped:
            run.failed = str(stopped)
        except KeyboardInterrupt:
            self._stop(run_id, RunStatus.CANCELLED, run.mode, on_error=True)
            raise
        except BaseException:
            self._stop(run_id, RunStatus.FAILED, run.mode, on_error=True)
            raise
        yield self._finish(run, RunStatus.FINISHED if run.failed is None else RunStatus.FAILED)

    def _stop(self, run_id: str, status: RunStatus, mode: str | None, *, on_error: bool = False) -> None:
        """Store the run's final status and seal it as it is now (:mod:`studio.core.store.run_seals`), so a resume
        can tell whether someone changed it in between. While an exception is on its way out (``on_error``), a
        seal that cannot be made does not replace that exception: the run is then resumed unsealed."""
        if on_error:
            self.runs.finish_run(run_id, status, mode)
            with contextlib.suppress(Exception):
                seal_run(self.runs.db, run_id)
            return
        with self.runs.db.atomic():
            self.runs.finish_run(run_id, status, mode)
            seal_run(self.runs.db, run_id)

    def _start(self, run_id: str, cancel: CancelToken | None) -> _Run:
        """Load a stored run, check its models, mark it running and count the work already done."""
        record = self.runs.get_run(run_id)
        self._check_same_models(record)
        problem = resume_problem(StatementRepo(self.runs.db), run_id)
        if problem is not None:
            raise StateError(problem)
        judge_params = _stored_params(record.judge_params)
        judges = _Judges(
            HelpfulnessJudge(self.judge_backend, judge_params),
            SafetyJudge(self.judge_backend, judge_params),
            SafetyJudge(self.candidate, judge_params) if record.self_check else None,
        )
        self.runs.finish_run(run_id, RunStatus.RUNNING, None)
        items = self.runs.items(run_id)
        done = sum(1 for i in items if i.response is not None) + sum(1 for i in items if i.judged)
        tally = _Tally(run_id, done, 2 * len(items), _Eta(2 * len(items) - done))
        return _Run(run_id, _stored_params(record.params), judges, tally, cancel)

    def _finish(self, run: _Run, status: RunStatus) -> RunFinished:
        """Store the run's final status, sealed, and report it (with the error that stopped it, if any)."""
        self._stop(run.run_id, status, run.mode)
        error = run.failed if status is RunStatus.FAILED else None
        return RunFinished(run.run_id, status, run_report(self.runs, run.run_id), error=error)

    def _generate_config(self, run: _Run, config: SafetyConfig) -> Iterator[RunEvent]:
        """Generate and store every missing reply under ``config``. Items whose request to a model server failed
        keep the error and stay pending; the run goes on to judge the replies that came back."""
        pending = [i for i in self.runs.items(run.run_id, config.id) if i.response is None]
        try:
            for item, result in self._generate(config, pending, run.params, run.cancel):
                yield self._save_reply(run, config, item, result)
        except RequestsFailed as exc:
            for index, message in exc.failures.items():
                self.runs.save_item_error(run.run_id, config.id, pending[index].probe_id, message)
            run.failed = run.failed or str(exc)

    def _asks_in_exchange(self, run: _Run, config: SafetyConfig) -> bool:
        """Whether the verdicts are asked in the exchange, on the reply's KV cells, while other replies decode:
        when one local model is candidate and judge and both judges continue the exchange (free-form configs)."""
        return (
            self.judge_backend is self.candidate
            and isinstance(self.candidate, ExchangeBackend)
            and run.judges.safety.follow_up(config) is not None
        )

    def _exchange_config(self, run: _Run, config: SafetyConfig) -> Iterator[RunEvent]:
        """Generate every missing reply under ``config`` and ask both judges about each one as soon as it ends;
        replies and verdicts are stored as they arrive."""
        pending = [i for i in self.runs.items(run.run_id, config.id) if i.response is None]
        if not pending:
            return
        helpfulness, safety = run.judges.helpfulness, run.judges.safety
        follow_up = safety.follow_up(config)
        assert isinstance(self.candidate, ExchangeBackend) and follow_up is not None
        asked = [helpfulness.follow_up(), follow_up]
        answers: dict[int, dict[int, str]] = {}
        prompts = [i.prompt for i in pending]
        for index, step, event in self.candidate.stream_exchanges(config.text, prompts, run.params, asked, run.cancel):
            if not isinstance(event, GenerationResult):
                continue
            if step == 0:
                yield self._save_reply(run, config, pending[index], event)
                continue
            if event.stop_reason is StopReason.CANCELLED:
                raise CancelledError("check cancelled")
            found = answers.setdefault(index, {})
            found[step] = event.text
            if len(found) == len(asked):
                judged = Judged(index, helpfulness.parse(found[1]), safety.parse(config, found[2]))
                yield from self._save_verdicts(run, config, pending[index], judged)

    def _save_reply(self, run: _Run, config: SafetyConfig, item: ItemRecord, result: GenerationResult) -> Progress:
        if result.stop_reason is StopReason.CANCELLED:
            raise CancelledError("check cancelled")
        run.mode = run.mode or result.mode.value
        self.runs.save_response(
            run.run_id, config.id, item.probe_id, result.text, result.stop_reason.value, result.total_s
        )
        return run.tally.step("generate")

    def _check_same_models(self, record: RunRecord) -> None:
        for role, backend, recorded in (
            ("candidate", self.candidate, record.candidate),
            ("judge", self.judge_backend, record.judge),
        ):
            now = backend_record(backend.info)
            if now["model_sha256"] != recorded["model_sha256"] or now["name"] != recorded["name"]:
                raise StateError(
                    f"run {record.id} was started with {role} {recorded['name']!r}; "
                    f"resume it with the same model (got {now['name']!r})"
                )

    def _judge_config(self, run: _Run, config: SafetyConfig) -> Iterator[RunEvent]:
        """Judge every reply under ``config`` that has no verdicts yet. When a model server fails, the items still
        unjudged keep its error and the run stops (resuming continues there)."""
        try:
            yield from self._judge_pending(run, config)
        except RequestsFailed as exc:
            for item in self.runs.items(run.run_id, config.id):
                if item.response is not None and not item.judged:
                    self.runs.save_item_error(run.run_id, config.id, item.probe_id, str(exc))
            raise _Stopped(str(exc)) from None

    def _judge_pending(self, run: _Run, config: SafetyConfig) -> Iterator[RunEvent]:
        """Verdicts of one judge decode together on a batching backend, and go to a server side by side."""
        judges, cancel = run.judges, run.cancel
        answered = [i for i in self.runs.items(run.run_id, config.id) if i.response is not None]
        if judges.self_check is not None:
            self._self_check(run, config, judges.self_check, [i for i in answered if i.self_raw is None])
        pending = [i for i in answered if not i.judged]
        chunk = JUDGE_CHUNK if isinstance(self.judge_backend, BatchBackend) else _chunk(self.judge_backend)
        for judged in judge_many(judges.helpfulness, judges.safety, config, _replies(pending, config), chunk, cancel):
            _raise_if_cancelled(cancel)
            yield from self._save_verdicts(run, config, pending[judged.index], judged)
        _raise_if_cancelled(cancel)

    def _self_check(self, run: _Run, config: SafetyConfig, judge: SafetyJudge, pending: list[ItemRecord]) -> None:
        """The candidate's own safety verdicts on its replies (for the Cascade variant)."""
        for index, own in safety_many(judge, config, _replies(pending, config), run.cancel):
            _raise_if_cancelled(run.cancel)
            self.runs.save_self_verdict(run.run_id, config.id, pending[index].probe_id, safe=own.safe, raw=own.raw)

    def _save_verdicts(self, run: _Run, config: SafetyConfig, item: ItemRecord, judged: Judged) -> Iterator[RunEvent]:
        """Store one item's verdicts; report it and the run's progress with the score of the items judged so far."""
        helpful, safety = judged.helpfulness, judged.safety
        self.runs.save_judgement(
            run.run_id,
            config.id,
            item.probe_id,
            rating=helpful.rating,
            helpfulness_raw=helpful.raw,
            safe=safety.safe,
            safety_raw=safety.raw,
            flagged=safety.flagged,
            violated_clause=safety.violated_clause,
            reason=safety.reason,
        )
        valid = helpful.rating is not None and safety.safe is not None
        score = item_score(helpful.rating or 0, bool(safety.safe)) if valid else None
        yield ItemDone(run.run_id, config.id, item.probe_id, helpful.rating, safety.safe, score)
        yield run.tally.step("judge", partial_score=run_report(self.runs, run.run_id).score)

    def _generate(
        self,
        config: SafetyConfig,
        pending: list[ItemRecord],
        params: GenerationParams,
        cancel: CancelToken | None,
    ) -> Iterator[tuple[ItemRecord, GenerationResult]]:
        if not pending:
            return
        if isinstance(self.candidate, BatchBackend):
            prompts = [i.prompt for i in pending]
            for index, event in self.candidate.stream_batch(config.text, prompts, params, cancel):
                if isinstance(event, GenerationResult):
                    yield pending[index], event
            return
        # A server (or any backend that does not batch): up to its max_concurrency requests in flight, failures
        # per item.
        requests = [chat(config.text, i.prompt) for i in pending]
        for index, result in complete_concurrently(self.candidate, requests, params, cancel):
            yield pending[index], result


def _chunk(backend: Backend) -> int:
    """Replies judged per round on a backend that does not batch: one at a time locally; on a server a few rounds
    of its concurrency, so requests stay in flight while finished items are stored."""
    width = max_concurrency(backend)
    return 1 if width == 1 else 4 * width


#: Replies judged per batch when the judge backend decodes many requests at once.
JUDGE_CHUNK = 16


@dataclass(frozen=True)
class _Judges:
    helpfulness: HelpfulnessJudge
    safety: SafetyJudge
    self_check: SafetyJudge | None


@dataclass
class _Run:
    """What one execution of a run works with, and what it has learned so far."""

    run_id: str
    params: GenerationParams
    judges: _Judges
    tally: _Tally
    cancel: CancelToken | None
    #: Decoding mode of the first reply generated in this execution (recorded with the run).
    mode: str | None = None
    #: Why the run will end as failed (the first failure), or None.
    failed: str | None = None


def _stored_params(record: dict[str, Any]) -> GenerationParams:
    """Decoding params as a run stored them (the stop strings come back as a list)."""
    return GenerationParams(**{**record, "stop": tuple(record["stop"])})


class _Tally:
    """Work done in a run (each item counts twice: its reply, then its verdicts) and the progress events."""

    def __init__(self, run_id: str, done: int, total: int, clock: _Eta) -> None:
        self.run_id = run_id
        self.done = done
        self.total = total
        self.clock = clock

    def step(self, stage: str, partial_score: float | None = None) -> Progress:
        self.done += 1
        return Progress(self.run_id, stage, self.done, self.total, self.clock.tick(), partial_score)


def _replies(items: list[ItemRecord], config: SafetyConfig) -> list[Reply]:
    return [Reply(i.prompt, i.response or "", config.text) for i in items]


class _Stopped(Exception):
    """A run stops early because a model server failed (the items keep the error)."""


def _raise_if_cancelled(cancel: CancelToken | None) -> None:
    if cancel is not None and cancel.cancelled:
        raise CancelledError("check cancelled")


class _Eta:
    """Remaining-time estimate from the pace of the work done in this session."""

    def __init__(self, remaining: int) -> None:
        self.start = time.monotonic()
        self.remaining = remaining
        self.done = 0

    def tick(self) -> float | None:
        self.done += 1
        self.remaining -= 1
        elapsed = time.monotonic() - self.start
        return max(self.remaining, 0) * elapsed / self.done if self.done else None


# -- export ----------------------------------------------------------------------------------------------------------

EXPORT_COLUMNS = (
    "config_id",
    "probe_id",
    "expected",
    "categories",
    "prompt",
    "response",
    "rating",
    "safe",
    "score",
    "flagged",
    "violated_clause",
    "reason",
    "human_rating",
    "human_safe",
    "human_note",
    "helpfulness_raw",
    "safety_raw",
)


def item_row(item: ItemRecord) -> dict[str, Any]:
    """One item as a plain row: verdicts, score, human verdicts and raw judge texts."""
    scored = scored_item(item)
    return {
        "config_id": item.config_id,
        "probe_id": item.probe_id,
        "expected": item.expected,
        "categories": [c.value for c in item.categories],
        "prompt": item.prompt,
        "response": item.response,
        "rating": scored.rating,
        "safe": scored.safe,
        "score": item_score(scored.rating or 0, bool(scored.safe)) if scored.valid else None,
        "flagged": None if item.flagged is None else [c.value for c in item.flagged],
        "violated_clause": item.violated_clause,
        "reason": item.reason,
        "human_rating": item.human_rating,
        "human_safe": item.human_safe,
        "human_note": item.human_note,
        "helpfulness_raw": item.helpfulness_raw,
        "safety_raw": item.safety_raw,
    }


def run_item_rows(runs: RunStore, run_id: str) -> list[dict[str, Any]]:
    """Every item of a run as a plain row, in run order (for tables and exports)."""
    return [item_row(i) for i in runs.items(run_id)]


#: The file suffixes :func:`export_run` writes, and the format of each.
EXPORT_SUFFIXES = {".json": "JSON", ".csv": "CSV"}


def check_export_path(path: Path) -> None:
    """InputError unless ``path`` can take a run export: a .json or .csv file name where a file can be written."""
    if path.suffix.casefold() not in EXPORT_SUFFIXES:
        raise InputError(path, "name the export file .json or .csv (that chooses its format)")
    output_target(path, what="export")


def export_run(runs: RunStore, run_id: str, path: Path) -> None:
    """Write a run as JSON (provenance, report, items) or CSV (one row per item), chosen by the file suffix
    (InputError for another suffix or a path that cannot take the file, checked before anything is read)."""
    check_export_path(path)
    record = runs.get_run(run_id)
    rows = run_item_rows(runs, run_id)
    if path.suffix.casefold() == ".csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, EXPORT_COLUMNS)
        writer.writeheader()
        for row in rows:
            cells = {k: ";".join(v) if isinstance(v, list) else v for k, v in row.items()}
            writer.writerow(cells)
        text = buffer.getvalue()
    else:
        payload = {
            "provenance": record.provenance(),
            "report": run_report(runs, run_id).as_dict(),
            "items": rows,
        }
        text = json.dumps(payload, indent=2, ensure_ascii=False) + "\n"
    write_output(path, text, what="export")
