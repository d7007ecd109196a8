"""How scores are written for people: one format shared by every command, report and pane.

CoSA-Score lies in [-1, 1] and its sign is the point (helpful-and-safe pushes it up, unsafe pushes it down), so a
score always carries its sign and three decimals; a difference between two scores is written the same way. Rounding
happens before the sign is chosen, so a tiny negative never shows as ``-0.000``. A score that does not exist (no
valid items) is ``n/a``, never ``0``.
"""

from __future__ import annotations

#: Shown where a score does not exist because no item was valid.
NO_SCORE = "n/a"


def format_score(value: float | None, *, signed: bool = True) -> str:
    """``+0.412``, ``-0.050`` or ``n/a``; ``signed=False`` for values that are not scores (rates, kappas)."""
    if value is None:
        return NO_SCORE
    rounded = round(value, 3) + 0.0  # + 0.0 turns -0.0 into 0.0
    return f"{rounded:+.3f}" if signed else f"{rounded:.3f}"
