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


def format_time_left(seconds: float | None) -> str:
    """How long a run still needs, rounded to what a person plans by; ``estimating…`` before the first estimate."""
    if seconds is None:
        return "estimating…"
    whole = round(seconds)
    if whole >= 3600:
        return f"about {whole // 3600} h {whole % 3600 // 60} min left"
    if whole >= 60:
        return f"about {whole // 60} min {whole % 60} s left"
    return f"about {whole} s left"


def progress_note(done: int, eta_s: float | None, partial_score: float | None) -> str:
    """The time left and, once items are judged, the CoSA-Score so far; empty before any step is done (no
    estimate can exist yet)."""
    if not done:
        return ""
    parts = [format_time_left(eta_s)]
    if partial_score is not None:
        parts.append(f"score so far {format_score(partial_score)}")
    return " · ".join(parts)


def format_utc(stamp: str) -> str:
    """A stored UTC time stamp (ISO 8601) as a person reads it: ``2026-05-01 09:30:00``."""
    return stamp.replace("T", " ").removesuffix("+00:00")
