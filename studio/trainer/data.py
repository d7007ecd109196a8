"""The CoSAlign data recipe as pure functions: config sampling, the error score, and preference pairing.

* Configs are sampled relative to a prompt's risk categories P in four modes: **exact** (allowed = P),
  **superset** (P plus random extras), **safe** (nothing allowed) and **not-superset** (a strict subset of P plus
  random extras from outside P). Other Harms is never sampled.
* The error score of a labelled response under an allowed set: +1 when the response does not address the request,
  +0.1 per flagged category the config allows, +3 per flagged category it disallows. Categories outside the
  training set count as Other Harms, which is always disallowed; several of them count as one Other Harms flag.
* Pairs: every two responses to the same prompt with different scores under the same config; the lower one is
  chosen; a pair whose chosen score is 3 or more is skipped (the chosen reply itself breaks the config).

Scores are kept in tenths (integers) so equal scores compare equal exactly.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from itertools import combinations

from studio.core.taxonomy import CONFIGURABLE, Category, ordered

NOT_ADDRESSED_TENTHS = 10
ALLOWED_FLAG_TENTHS = 1
DISALLOWED_FLAG_TENTHS = 30
#: A chosen response at or above this score breaks its config, so its pair is skipped.
CHOSEN_LIMIT_TENTHS = 30


class ConfigMode(StrEnum):
    EXACT = "exact"
    SUPERSET = "superset"
    SAFE = "safe"
    NOT_SUPERSET = "not-superset"


@dataclass(frozen=True)
class SampledConfig:
    mode: ConfigMode
    allowed: frozenset[Category]


def _configurable(categories: Iterable[Category], universe: Sequence[Category]) -> frozenset[Category]:
    return frozenset(c for c in categories if c in universe and c.configurable)


def sample_allowed(
    prompt_categories: Iterable[Category],
    mode: ConfigMode,
    rng: random.Random,
    *,
    universe: Sequence[Category] = CONFIGURABLE,
    max_extras: int = 2,
) -> frozenset[Category] | None:
    """One allowed set for ``mode``, or ``None`` when the mode cannot apply to these prompt categories.

    ``universe`` is the set of categories training may allow (never Other Harms). Superset needs a category
    outside P to add; not-superset needs a non-empty P.
    """
    pool = [c for c in universe if c.configurable]
    cats = _configurable(prompt_categories, pool)
    outside = [c for c in pool if c not in cats]
    if mode is ConfigMode.SAFE:
        return frozenset()
    if mode is ConfigMode.EXACT:
        return cats
    if mode is ConfigMode.SUPERSET:
        if not outside:
            return None
        extras = rng.sample(outside, rng.randint(1, min(max_extras, len(outside))))
        return cats | frozenset(extras)
    if not cats:
        return None
    inside = ordered(cats)
    kept = rng.sample(inside, rng.randint(0, len(inside) - 1))
    extras = rng.sample(outside, rng.randint(0, min(max_extras, len(outside)))) if outside else []
    return frozenset(kept) | frozenset(extras)


def sample_configs(
    prompt_categories: Iterable[Category],
    rng: random.Random,
    *,
    modes: Sequence[ConfigMode] = tuple(ConfigMode),
    universe: Sequence[Category] = CONFIGURABLE,
) -> list[SampledConfig]:
    """One config per applicable mode, without repeating an allowed set (the first mode that produced it wins)."""
    seen: set[frozenset[Category]] = set()
    sampled: list[SampledConfig] = []
    cats = list(prompt_categories)
    for mode in modes:
        allowed = sample_allowed(cats, mode, rng, universe=universe)
        if allowed is None or allowed in seen:
            continue
        seen.add(allowed)
        sampled.append(SampledConfig(mode, allowed))
    return sampled


def error_score_tenths(
    flagged: Iterable[Category],
    addressed: bool,
    allowed: Iterable[Category],
    *,
    universe: Sequence[Category] = CONFIGURABLE,
) -> int:
    """The CoSAlign error score of one labelled response under ``allowed``, in tenths."""
    allowed_set = frozenset(allowed)
    known = frozenset(universe) - {Category.OTHER_HARMS}
    counted: set[Category] = set()
    for category in flagged:
        counted.add(category if category in known else Category.OTHER_HARMS)
    score = 0 if addressed else NOT_ADDRESSED_TENTHS
    for category in counted:
        allowed_here = category is not Category.OTHER_HARMS and category in allowed_set
        score += ALLOWED_FLAG_TENTHS if allowed_here else DISALLOWED_FLAG_TENTHS
    return score


def error_score(
    flagged: Iterable[Category],
    addressed: bool,
    allowed: Iterable[Category],
    *,
    universe: Sequence[Category] = CONFIGURABLE,
) -> float:
    """The error score as a number (see :func:`error_score_tenths`)."""
    return error_score_tenths(flagged, addressed, allowed, universe=universe) / 10


def preference_pairs(scores: Sequence[int]) -> list[tuple[int, int]]:
    """``(chosen_index, rejected_index)`` for every two responses with different scores (in tenths).

    The lower score is chosen; pairs whose chosen score is at least :data:`CHOSEN_LIMIT_TENTHS` are skipped.
    """
    pairs: list[tuple[int, int]] = []
    for i, j in combinations(range(len(scores)), 2):
        if scores[i] == scores[j]:
            continue
        chosen, rejected = (i, j) if scores[i] < scores[j] else (j, i)
        if scores[chosen] >= CHOSEN_LIMIT_TENTHS:
            continue
        pairs.append((chosen, rejected))
    return pairs
