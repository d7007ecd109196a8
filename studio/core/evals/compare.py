"""Comparisons: two configs or two models on the same probes, run-vs-run diffs, history and regression matrices.

Everything returns plain rows (frozen dataclasses) that a table model or a terminal can show as they are.
For a verdict that flips between two configs, the config diff hunk that most likely explains it is the one sharing
the most content words with the probe, the replies' judge reasons and the violated clause.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace

from studio.core.documents import ProbeSuite, SafetyConfig
from studio.core.errors import InputError
from studio.core.evals.runner import CheckRunner, CheckSpec, RunEvent, scored_item
from studio.core.evals.scoring import aggregate, item_score
from studio.core.inference.base import CancelToken, GenerationParams
from studio.core.store.runs import ItemRecord, RunStatus, RunStore

_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+|\n+")
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_STOPWORDS = frozenset(
    "a an and are as at be been but by can could do does for from has have how i if in into is it its may me "
    "must my no not of on or our should so than that the their them then there these they this to too us was we "
    "were what when where which who why will with would you your any all also only such other about".split()
)


@dataclass(frozen=True)
class Hunk:
    """One change between two config texts: sentences removed from the first and added in the second."""

    index: int
    removed: tuple[str, ...]
    added: tuple[str, ...]

    def text(self) -> str:
        return "\n".join([*(f"- {s}" for s in self.removed), *(f"+ {s}" for s in self.added)])

    def words(self) -> frozenset[str]:
        return content_words(" ".join(self.removed + self.added))


@dataclass(frozen=True)
class PairRow:
    """One probe under both sides of a comparison."""

    key: str
    prompt: str
    a_rating: int | None
    a_safe: bool | None
    a_score: float | None
    b_rating: int | None
    b_safe: bool | None
    b_score: float | None
    hunk: Hunk | None = None
    hunk_overlap: int = 0

    @property
    def flipped(self) -> bool:
        """The safety verdict differs and both sides are readable."""
        return self.a_safe is not None and self.b_safe is not None and self.a_safe != self.b_safe

    @property
    def delta(self) -> float | None:
        return None if self.a_score is None or self.b_score is None else self.b_score - self.a_score


def content_words(text: str) -> frozenset[str]:
    return frozenset(w for w in _WORD.findall(text.casefold()) if len(w) > 2 and w not in _STOPWORDS)


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def diff_hunks(text_a: str, text_b: str) -> list[Hunk]:
    """Sentence-level differences between two config texts (difflib, no context)."""
    a, b = sentences(text_a), sentences(text_b)
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    hunks: list[Hunk] = []
    for group in matcher.get_grouped_opcodes(0):
        removed = tuple(s for tag, i1, i2, _, _ in group if tag != "equal" for s in a[i1:i2])
        added = tuple(s for tag, _, _, j1, j2 in group if tag != "equal" for s in b[j1:j2])
        if removed or added:
            hunks.append(Hunk(len(hunks), removed, added))
    return hunks


def explaining_hunk(hunks: Sequence[Hunk], evidence: str) -> tuple[Hunk | None, int]:
    """The hunk sharing the most content words with ``evidence``; the only hunk when there is one.

    With several hunks and no shared word, nothing is claimed.
    """
    if not hunks:
        return None, 0
    words = content_words(evidence)
    best = max(hunks, key=lambda h: (len(h.words() & words), -h.index))
    overlap = len(best.words() & words)
    if overlap == 0 and len(hunks) > 1:
        return None, 0
    return best, overlap


def _score(item: ItemRecord, use: str) -> tuple[int | None, bool | None, float | None]:
    scored = scored_item(item, use)
    value = item_score(scored.rating or 0, bool(scored.safe)) if scored.valid else None
    return scored.rating, scored.safe, value


def _evidence(a: ItemRecord, b: ItemRecord) -> str:
    return " ".join([a.prompt, a.violated_clause, a.reason, b.violated_clause, b.reason])


def pair_items(
    items_a: Sequence[ItemRecord],
    items_b: Sequence[ItemRecord],
    hunks: Sequence[Hunk] = (),
    use: str = "judge",
    by_config: bool = False,
) -> list[PairRow]:
    """Pair items by probe id (and config id with ``by_config``), in the first side's order."""

    def key(item: ItemRecord) -> str:
        return f"{item.config_id}/{item.probe_id}" if by_config else item.probe_id

    other = {key(i): i for i in items_b}
    rows: list[PairRow] = []
    for a in items_a:
        b = other.get(key(a))
        if b is None:
            continue
        a_rating, a_safe, a_score = _score(a, use)
        b_rating, b_safe, b_score = _score(b, use)
        row = PairRow(key(a), a.prompt, a_rating, a_safe, a_score, b_rating, b_safe, b_score)
        if row.flipped and hunks:
            hunk, overlap = explaining_hunk(hunks, _evidence(a, b))
            row = replace(row, hunk=hunk, hunk_overlap=overlap)
        rows.append(row)
    return rows


def compare_configs(
    runs: RunStore,
    run_a: str,
    config_a: str,
    run_b: str,
    config_b: str,
    use: str = "judge",
) -> tuple[list[Hunk], list[PairRow]]:
    """Two configs on the same probes (from one run or two): the diff hunks and the per-probe pairs."""
    texts = []
    for run_id, config_id in ((run_a, config_a), (run_b, config_b)):
        found = [c for c in runs.configs(run_id) if c.id == config_id]
        if not found:
            raise InputError(None, f"run {run_id} did not check config {config_id!r}")
        texts.append(found[0].text)
    hunks = diff_hunks(texts[0], texts[1])
    rows = pair_items(runs.items(run_a, config_a), runs.items(run_b, config_b), hunks, use)
    return hunks, rows


def diff_runs(runs: RunStore, run_a: str, run_b: str, use: str = "judge") -> list[PairRow]:
    """Run against run (for example the same configs on two models): items paired by config and probe."""
    runs.get_run(run_a)
    runs.get_run(run_b)
    return pair_items(runs.items(run_a), runs.items(run_b), use=use, by_config=True)


@dataclass(frozen=True)
class HistoryRow:
    """One run of a config."""

    run_id: str
    created_utc: str
    status: str
    config_hash: str
    candidate: str
    judge: str
    score: float | None
    valid_rate: float


def config_history(runs: RunStore, config_id: str, use: str = "judge") -> list[HistoryRow]:
    """Every run that checked ``config_id``, newest first, with that config's score in the run."""
    rows: list[HistoryRow] = []
    for record in runs.readable_runs(config_id)[0]:  # a damaged run is listed by `studio runs list`
        agg = aggregate(scored_item(i, use) for i in runs.items(record.id, config_id))
        position = record.config_ids.index(config_id)
        rows.append(
            HistoryRow(
                run_id=record.id,
                created_utc=record.created_utc,
                status=record.status.value,
                config_hash=record.config_hashes[position],
                candidate=record.candidate["name"],
                judge=record.judge["name"],
                score=agg.score,
                valid_rate=agg.valid_rate,
            )
        )
    return rows


@dataclass(frozen=True)
class MatrixRow:
    """A config's latest finished score on each model, and each score's change from the first (baseline) model."""

    config_id: str
    scores: tuple[float | None, ...]
    deltas: tuple[float | None, ...]


def regression_matrix(
    runs: RunStore, config_ids: Sequence[str], models: Sequence[str], use: str = "judge"
) -> list[MatrixRow]:
    """Rows per config, columns per candidate model name (the first is the baseline). A cell uses the newest
    finished run of that config on that model whose config hash matches the newest run's, so edits do not mix."""
    rows: list[MatrixRow] = []
    for config_id in config_ids:
        history = [h for h in config_history(runs, config_id, use) if h.status == RunStatus.FINISHED.value]
        current_hash = history[0].config_hash if history else None
        scores: list[float | None] = []
        for model in models:
            match = next((h for h in history if h.candidate == model and h.config_hash == current_hash), None)
            scores.append(match.score if match else None)
        base = scores[0] if scores else None
        deltas = tuple(None if s is None or base is None else s - base for s in scores)
        rows.append(MatrixRow(config_id, tuple(scores), deltas))
    return rows


def rerun_configs(
    runner: CheckRunner,
    configs: Sequence[SafetyConfig],
    suite_for: Callable[[SafetyConfig], ProbeSuite],
    params: GenerationParams | None = None,
    seed: int = 0,
    cancel: CancelToken | None = None,
) -> Iterator[RunEvent]:
    """Check each config (for example every approved one) on the runner's candidate model, one run per config,
    so that :func:`regression_matrix` can set the new model beside the old."""
    for config in configs:
        spec = CheckSpec(
            suite=suite_for(config),
            configs=(config,),
            params=params or GenerationParams(max_tokens=256),
            seed=seed,
            label=f"regression on {runner.candidate.info.name}",
        )
        yield from runner.check(spec, cancel)
        if cancel is not None and cancel.cancelled:
            return
