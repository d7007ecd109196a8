"""Hints for a wrong name: the closest valid one ("did you mean") and the valid ones to pick from.

Every "no such X" message a user can meet (config ids, suites, runs, models, templates, categories, setting keys,
command-line flags) ends with :func:`choices_hint`, so a typo is fixed without reading code or schemas.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

#: How many valid names a hint lists before it says how many more there are.
SHOWN_CHOICES = 12


def closest(value: str, choices: Iterable[str]) -> str | None:
    """The choice ``value`` most likely meant: a unique prefix match, else the nearest spelling, else None."""
    options = list(dict.fromkeys(choices))
    folded = value.casefold()
    prefixed = [option for option in options if option.casefold().startswith(folded)] if folded else []
    if len(prefixed) == 1:
        return prefixed[0]
    by_folded = {option.casefold(): option for option in options}
    near = difflib.get_close_matches(folded, list(by_folded), n=1, cutoff=0.6)
    return by_folded[near[0]] if near else None


def listing(choices: Sequence[str], limit: int = SHOWN_CHOICES) -> str:
    """``a, b, c`` with at most ``limit`` names and a count of the rest."""
    shown = ", ".join(choices[:limit])
    rest = len(choices) - limit
    return shown + (f" and {rest} more" if rest > 0 else "")


def choices_hint(
    value: str,
    choices: Iterable[str],
    *,
    label: str = "valid",
    limit: int = SHOWN_CHOICES,
    guess: str | None = None,
) -> str:
    """``"; did you mean 'x'? valid: a, b, c"``, to append to a one-line error (``"; valid: none"`` when there is
    nothing to choose from). ``guess`` replaces the closest choice where the caller knows better (aliases)."""
    options = list(dict.fromkeys(choices))
    guess = guess if guess is not None else closest(value, options)
    parts = [f"did you mean {guess!r}?"] if guess is not None and guess != value else []
    parts.append(f"{label}: {listing(options, limit) if options else 'none'}")
    return "; " + " ".join(parts)
