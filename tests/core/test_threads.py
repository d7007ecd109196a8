"""Decode threads fitted to the free cores (studio.core.inference.threads)."""

from __future__ import annotations

from collections.abc import Iterator

from studio.core.inference.threads import ThreadFitter, fitting_threads


def _reads(*values: int | None) -> Iterator[int | None]:
    yield from values


def test_other_tasks_take_cores_away_down_to_one() -> None:
    assert fitting_threads(2, 2, lambda: 0) == 2
    assert fitting_threads(2, 2, lambda: 1) == 1
    assert fitting_threads(4, 8, lambda: 6) == 2
    assert fitting_threads(2, 2, lambda: 5) == 1
    assert fitting_threads(2, 8, lambda: 0) == 2  # never more than configured


def test_the_quietest_of_several_reads_counts() -> None:
    reads = _reads(3, 0, 2)
    assert fitting_threads(2, 2, lambda: next(reads)) == 2


def test_unknown_load_keeps_the_configured_count() -> None:
    assert fitting_threads(3, 2, lambda: None) == 3


def test_fitter_applies_only_changes() -> None:
    applied: list[int] = []
    reads = _reads(0, 1, 1, 1, 1, 1, 1, 0)  # a quiet reading ends a count at once
    fitter = ThreadFitter(applied.append, configured=2, read=lambda: next(reads))
    fitter.cores = 2
    assert [fitter.fit() for _ in range(4)] == [2, 1, 1, 2]
    assert applied == [1, 2]


def test_a_disabled_fitter_never_changes_the_count() -> None:
    applied: list[int] = []
    fitter = ThreadFitter(applied.append, configured=2, enabled=False)
    assert fitter.fit() == 2 and applied == []
