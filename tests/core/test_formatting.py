"""The one score format used by the CLI, the reports and the panes."""

from __future__ import annotations

import pytest

from studio.core.evals.formatting import NO_SCORE, format_score, format_time_left, format_utc, progress_note


@pytest.mark.parametrize(
    ("value", "shown"),
    [(0.4123, "+0.412"), (-0.05, "-0.050"), (1.0, "+1.000"), (-1.0, "-1.000"), (0.0, "+0.000"), (-0.0001, "+0.000")],
)
def test_scores_carry_their_sign_and_three_decimals(value: float, shown: str) -> None:
    assert format_score(value) == shown


def test_missing_score_is_not_zero() -> None:
    assert format_score(None) == NO_SCORE == "n/a"
    assert format_score(None, signed=False) == "n/a"


def test_unsigned_values() -> None:
    assert format_score(0.75, signed=False) == "0.750"
    assert format_score(-0.0004, signed=False) == "0.000"


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (None, "estimating…"),
        (4.4, "about 4 s left"),
        (59.6, "about 1 min 0 s left"),
        (125, "about 2 min 5 s left"),
        (3 * 3600 + 7 * 60 + 30, "about 3 h 7 min left"),
    ],
)
def test_time_left_is_rounded_to_what_a_person_plans_by(seconds: float | None, shown: str) -> None:
    assert format_time_left(seconds) == shown


def test_progress_note_adds_the_score_so_far_once_items_are_judged() -> None:
    assert progress_note(0, 30.0, None) == ""
    assert progress_note(3, 30.0, None) == "about 30 s left"
    assert progress_note(3, None, 0.25) == "estimating… · score so far +0.250"
    assert progress_note(5, 12.0, -0.0001) == "about 12 s left · score so far +0.000"


def test_utc_stamps_are_written_without_the_t_and_the_zone() -> None:
    assert format_utc("2026-05-01T09:30:00+00:00") == "2026-05-01 09:30:00"
