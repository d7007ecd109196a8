"""The one score format used by the CLI, the reports and the panes."""

from __future__ import annotations

import pytest

from studio.core.evals.formatting import NO_SCORE, format_score


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
