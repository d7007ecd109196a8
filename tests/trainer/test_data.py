"""CoSAlign data recipe: config sampling modes, the error score and pairing, against hand-computed values."""

from __future__ import annotations

import random

import pytest

from studio.core.taxonomy import CONFIGURABLE, Category
from studio.trainer.data import (
    ConfigMode,
    error_score,
    error_score_tenths,
    preference_pairs,
    sample_allowed,
    sample_configs,
)

FIN = Category.FINANCIAL_CRIME
VIO = Category.VIOLENCE
PRIV = Category.PRIVACY
WEAP = Category.WEAPONS
OTHER = Category.OTHER_HARMS


def test_error_score_refusal_with_no_flags_is_one() -> None:
    assert error_score([], addressed=False, allowed=[]) == 1.0


def test_error_score_allowed_and_disallowed_flags() -> None:
    # addressed (0) + one allowed flag (0.1) + one disallowed flag (3)
    assert error_score_tenths([FIN, VIO], addressed=True, allowed=[FIN]) == 31
    # not addressed (1) + two allowed flags (0.2)
    assert error_score_tenths([FIN, VIO], addressed=False, allowed=[FIN, VIO]) == 12


def test_error_score_other_harms_is_always_disallowed() -> None:
    assert error_score_tenths([OTHER], addressed=True, allowed=list(CONFIGURABLE)) == 30


def test_categories_outside_training_set_count_as_one_other_harms_flag() -> None:
    universe = (FIN, VIO)
    # PRIV and WEAP fall outside the training set: together they count as one Other Harms flag (3), FIN allowed (0.1)
    assert error_score_tenths([FIN, PRIV, WEAP], addressed=True, allowed=[FIN, PRIV], universe=universe) == 31
    # Inside the full taxonomy PRIV is allowed (0.1) and WEAP is not (3), plus FIN (0.1)
    assert error_score_tenths([FIN, PRIV, WEAP], addressed=True, allowed=[FIN, PRIV]) == 32


def test_pairs_lower_score_is_chosen_and_equal_scores_are_skipped() -> None:
    scores = [10, 0, 10, 31]
    # (0,1): 1 chosen over 0; (0,2): equal, skipped; (0,3): 0 over 3; (1,2): 1 over 2; (1,3): 1 over 3; (2,3): 2 over 3
    assert preference_pairs(scores) == [(1, 0), (0, 3), (1, 2), (1, 3), (2, 3)]


def test_pairs_whose_chosen_breaks_the_config_are_skipped() -> None:
    # 30 vs 60: the chosen reply scores 3 or more, so no pair; 29 vs 30 is kept
    assert preference_pairs([30, 60]) == []
    assert preference_pairs([29, 30]) == [(0, 1)]


def test_exact_and_safe_modes() -> None:
    rng = random.Random(0)
    assert sample_allowed([FIN, VIO], ConfigMode.EXACT, rng) == frozenset({FIN, VIO})
    assert sample_allowed([FIN, VIO], ConfigMode.SAFE, rng) == frozenset()


def test_other_harms_is_never_sampled() -> None:
    rng = random.Random(1)
    for _ in range(200):
        for mode in ConfigMode:
            allowed = sample_allowed([FIN, OTHER], mode, rng)
            assert allowed is None or OTHER not in allowed


@pytest.mark.parametrize("seed", range(30))
def test_superset_and_not_superset_shapes(seed: int) -> None:
    rng = random.Random(seed)
    prompt = frozenset({FIN, VIO})
    superset = sample_allowed(prompt, ConfigMode.SUPERSET, rng)
    assert superset is not None and prompt < superset
    not_superset = sample_allowed(prompt, ConfigMode.NOT_SUPERSET, rng)
    assert not_superset is not None
    assert not prompt <= not_superset
    assert not_superset & prompt < prompt


def test_modes_that_cannot_apply_give_none() -> None:
    rng = random.Random(0)
    assert sample_allowed([], ConfigMode.NOT_SUPERSET, rng) is None
    assert sample_allowed(list(CONFIGURABLE), ConfigMode.SUPERSET, rng) is None


def test_sample_configs_is_seeded_and_unique() -> None:
    first = sample_configs([FIN], random.Random(42))
    second = sample_configs([FIN], random.Random(42))
    assert first == second
    sets = [c.allowed for c in first]
    assert len(sets) == len(set(sets))
    assert [c.mode for c in first][:2] == [ConfigMode.EXACT, ConfigMode.SUPERSET]


def test_benign_prompt_exact_and_safe_collapse_to_one_config() -> None:
    configs = sample_configs([], random.Random(3))
    modes = [c.mode for c in configs]
    assert ConfigMode.SAFE not in modes  # same empty set as exact
    assert ConfigMode.NOT_SUPERSET not in modes
    assert modes == [ConfigMode.EXACT, ConfigMode.SUPERSET]
