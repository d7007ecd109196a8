from __future__ import annotations

import pytest

from studio.core.taxonomy import (
    CONFIGURABLE,
    JUDGE_KEYS,
    Category,
    UnknownCategoryError,
    metric_set_name,
    parse_category,
    parse_category_set,
    split_set_name,
)


def test_seven_configurable_categories_and_other_harms() -> None:
    assert len(CONFIGURABLE) == 7
    assert Category.OTHER_HARMS not in CONFIGURABLE
    assert len(JUDGE_KEYS) == 8
    assert JUDGE_KEYS[3] == "Illegal Drug-Related Activities and Substance Abuse"


@pytest.mark.parametrize("category", list(Category))
def test_every_spelling_parses_back(category: Category) -> None:
    info = category.info
    for spelling in (category.value, info.judge_key, info.metric_spelling, info.split_spelling):
        assert parse_category(spelling) is category
        assert parse_category(spelling.upper()) is category


def test_known_spellings_exactly() -> None:
    drugs = Category.DRUGS.info
    assert drugs.metric_spelling == "Illegal Drug_Related Activities and Substance Abuse"
    assert drugs.split_spelling == "Illegal_Drug.Related_Activities_and_Substance_Abuse"
    sexual = Category.SEXUAL.info
    assert sexual.metric_spelling == "Sexual Misconduct_Exploitation_and Infidelity"


def test_split_names_from_the_test_set() -> None:
    assert parse_category_set("Financial_Crime_and_Theft.Privacy_Violations") == {
        Category.FINANCIAL_CRIME,
        Category.PRIVACY,
    }
    assert parse_category_set("safe") == frozenset()
    assert parse_category_set("Violence.Weapons,_Explosives,_Arson,_and_Illegal_Firearm_Transactions") == {
        Category.VIOLENCE,
        Category.WEAPONS,
    }
    assert parse_category_set("Illegal_Drug.Related_Activities_and_Substance_Abuse") == {Category.DRUGS}


def test_metric_joined_names() -> None:
    name = metric_set_name([Category.VIOLENCE, Category.DISCRIMINATION, Category.FINANCIAL_CRIME])
    assert name == "Financial Crime and Theft-Discrimination and Verbal Abuse-Violence"
    assert parse_category_set(name) == {Category.VIOLENCE, Category.DISCRIMINATION, Category.FINANCIAL_CRIME}
    drugs = metric_set_name([Category.DRUGS, Category.PRIVACY])
    assert parse_category_set(drugs) == {Category.DRUGS, Category.PRIVACY}


@pytest.mark.parametrize("cats", [[], [Category.DRUGS], list(CONFIGURABLE), [Category.SEXUAL, Category.WEAPONS]])
def test_set_names_round_trip(cats: list[Category]) -> None:
    assert parse_category_set(split_set_name(cats)) == frozenset(cats)
    assert parse_category_set(metric_set_name(cats)) == frozenset(cats)


@pytest.mark.parametrize("bad", ["Violence.Nonsense", "Fraud", "Violence..Privacy_Violations", "Drug"])
def test_unknown_names_are_rejected(bad: str) -> None:
    with pytest.raises(UnknownCategoryError):
        parse_category_set(bad)


def test_published_split_names_without_commas() -> None:
    assert parse_category_set("Sexual_Misconduct_Exploitation_and_Infidelity") == {Category.SEXUAL}
    assert parse_category_set("Violence.Weapons_Explosives_Arson_and_Illegal_Firearm_Transactions") == {
        Category.VIOLENCE,
        Category.WEAPONS,
    }
