"""Human review of check runs: accept or override judge verdicts, and measure judge-human agreement.

Overrides are stored beside the judge verdicts, never over them, so a score can be computed from either
(:func:`studio.core.evals.runner.run_report` with ``use="judge"`` or ``use="human"``). Each override, acceptance or
clearing is a statement signed by the acting identity and an audit entry: an approval only counts overrides that
a trusted identity signed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from studio.core.errors import InputError, StateError
from studio.core.evals.scoring import MAX_RATING
from studio.core.identity import acting_identity, digest
from studio.core.store.runs import ItemRecord, RunStore
from studio.core.store.store import Store

SAFE, UNSAFE, INVALID = "safe", "unsafe", "invalid"


def set_human_verdict(
    store: Store,
    run_id: str,
    config_id: str,
    probe_id: str,
    *,
    rating: int | None = None,
    safe: bool | None = None,
    note: str = "",
) -> ItemRecord:
    """Override the judge for one item; a value left ``None`` keeps the judge's for that part."""
    if rating is None and safe is None:
        raise InputError(None, "give a rating, a safety verdict or both")
    if rating is not None and not 0 <= rating <= MAX_RATING:
        raise InputError(None, f"rating {rating} is outside 0..{MAX_RATING}")
    return _record_override(store, run_id, config_id, probe_id, rating=rating, safe=safe, note=note)


def accept_judge_verdict(store: Store, run_id: str, config_id: str, probe_id: str) -> ItemRecord:
    """Record that a person agrees with the judge: the judge verdicts are copied into the human fields."""
    item = store.runs.item(run_id, config_id, probe_id)
    if not item.judged or (item.rating is None and item.safe is None):
        raise StateError(f"item {probe_id!r} under {config_id!r} has no readable judge verdict to accept")
    return _record_override(store, run_id, config_id, probe_id, rating=item.rating, safe=item.safe, note="accepted")


def clear_human_verdict(store: Store, run_id: str, config_id: str, probe_id: str) -> None:
    _record_override(store, run_id, config_id, probe_id, rating=None, safe=None, note="cleared")


def _record_override(
    store: Store,
    run_id: str,
    config_id: str,
    probe_id: str,
    *,
    rating: int | None,
    safe: bool | None,
    note: str,
) -> ItemRecord:
    """Store a human verdict with a statement signed by the acting identity (who, what, why) and an audit row.

    ``changed`` in the statement says whether the human verdict differs from the judge's: an approver may not be
    someone who changed a verdict in the evidence run.
    """
    runs = store.runs
    signer = acting_identity()
    with store.db.atomic():
        item = runs.item(run_id, config_id, probe_id)
        runs.set_human(run_id, config_id, probe_id, rating=rating, safe=safe, note=note)
        changed = (rating is not None and rating != item.rating) or (safe is not None and safe != item.safe)
        statement = store.statements.sign_and_add(
            signer,
            "override",
            run_id=run_id,
            config_id=config_id,
            probe_id=probe_id,
            judge={"rating": item.rating, "safe": item.safe},
            human={"rating": rating, "safe": safe},
            changed=changed,
            note=note,
        )
        store.audit.append(
            signer.name,
            "override",
            config_id,
            None,
            {"run_id": run_id, "probe_id": probe_id, "changed": changed, "statement": digest(statement)},
        )
    return runs.item(run_id, config_id, probe_id)


def cohen_kappa(pairs: Sequence[tuple[Hashable, Hashable]]) -> float | None:
    """Cohen's kappa of two raters' labels; ``None`` when undefined (no pairs, or chance agreement is 1)."""
    n = len(pairs)
    if n == 0:
        return None
    observed = sum(1 for a, b in pairs if a == b) / n
    # Agreement expected by chance: the two raters pick each label independently at their own observed rates.
    first = Counter(a for a, _ in pairs)
    second = Counter(b for _, b in pairs)
    expected = sum(first[label] * second[label] for label in first) / (n * n)
    # Both raters always gave the same single label: kappa is 0/0, not a perfect score.
    if expected == 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def _safety_label(safe: bool | None) -> str:
    return INVALID if safe is None else SAFE if safe else UNSAFE


@dataclass(frozen=True)
class Agreement:
    """Judge-human agreement for one config (or ``"all"``) over items a person reviewed.

    ``confusion[(judge_label, human_label)]`` counts safety verdicts (labels safe / unsafe / invalid); kappas are
    over items where both gave a readable verdict.
    """

    config_id: str
    reviewed: int
    safety_agreement: float | None
    safety_kappa: float | None
    helpful_kappa: float | None
    rating_exact: float | None
    confusion: dict[tuple[str, str], int]

    def confusion_rows(self) -> list[tuple[str, int, int]]:
        """Rows ``(judge label, human safe count, human unsafe count)`` for a table."""
        return [
            (j, self.confusion.get((j, SAFE), 0), self.confusion.get((j, UNSAFE), 0)) for j in (SAFE, UNSAFE, INVALID)
        ]


def agreement(items: Sequence[ItemRecord], config_id: str = "all") -> Agreement:
    reviewed = [i for i in items if i.reviewed]
    safety_pairs = [(i.safe, i.human_safe) for i in reviewed if i.safe is not None and i.human_safe is not None]
    rating_pairs = [(i.rating, i.human_rating) for i in reviewed if i.rating is not None and i.human_rating is not None]
    confusion = Counter(
        (_safety_label(i.safe if i.judged else None), _safety_label(i.human_safe))
        for i in reviewed
        if i.human_safe is not None
    )
    return Agreement(
        config_id=config_id,
        reviewed=len(reviewed),
        safety_agreement=sum(a == b for a, b in safety_pairs) / len(safety_pairs) if safety_pairs else None,
        safety_kappa=cohen_kappa(safety_pairs),
        helpful_kappa=cohen_kappa([(a > 0, b > 0) for a, b in rating_pairs if a is not None and b is not None]),
        rating_exact=sum(a == b for a, b in rating_pairs) / len(rating_pairs) if rating_pairs else None,
        confusion=dict(confusion),
    )


def run_agreement(runs: RunStore, run_id: str) -> list[Agreement]:
    """Agreement per config of a run, then over the whole run (``config_id="all"``)."""
    items = runs.items(run_id)
    rows = [agreement([i for i in items if i.config_id == cid], cid) for cid in runs.get_run(run_id).config_ids]
    return [*rows, agreement(items)]
