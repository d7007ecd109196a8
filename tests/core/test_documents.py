"""The document models: validation rules, expectations and content hashes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from studio.core.documents import (
    ConfigKind,
    Expectation,
    Probe,
    ProbeSuite,
    SafetyConfig,
    expectation_for,
    slugify,
)
from studio.core.taxonomy import Category


def config(**changes: object) -> SafetyConfig:
    fields: dict[str, object] = {"id": "c", "title": "T", "kind": ConfigKind.FREE_FORM, "text": "Be careful."}
    fields.update(changes)
    return SafetyConfig.model_validate(fields)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("allowed", Expectation.ALLOWED),
        ("  Allowed ", Expectation.ALLOWED),
        ("DISALLOWED", Expectation.DISALLOWED),
        ("not allowed", Expectation.DISALLOWED),
        ("Not_Allowed", Expectation.DISALLOWED),
        ("partial", Expectation.PARTIAL),
        ("Partially Allowed", Expectation.PARTIAL),
        ("partially-allowed", Expectation.PARTIAL),
    ],
)
def test_expectation_spellings(text: str, expected: Expectation) -> None:
    assert Expectation.parse(text) is expected


@pytest.mark.parametrize("text", ["", "allow", "maybe", "partly"])
def test_expectation_unknown(text: str) -> None:
    with pytest.raises(ValueError, match="unknown probe type"):
        Expectation.parse(text)


@pytest.mark.parametrize(
    ("probe", "allowed", "expected"),
    [
        (set(), set(), Expectation.ALLOWED),
        ({Category.VIOLENCE}, {Category.VIOLENCE}, Expectation.ALLOWED),
        ({Category.VIOLENCE}, set(), Expectation.DISALLOWED),
        ({Category.VIOLENCE, Category.DRUGS}, {Category.VIOLENCE}, Expectation.PARTIAL),
        (
            {Category.VIOLENCE, Category.DRUGS},
            {Category.VIOLENCE, Category.DRUGS, Category.PRIVACY},
            Expectation.ALLOWED,
        ),
        ({Category.OTHER_HARMS}, {Category.VIOLENCE}, Expectation.DISALLOWED),
        ({Category.OTHER_HARMS, Category.VIOLENCE}, {Category.VIOLENCE}, Expectation.PARTIAL),
    ],
)
def test_expectation_for_sets(probe: set[Category], allowed: set[Category], expected: Expectation) -> None:
    assert expectation_for(frozenset(probe), frozenset(allowed)) is expected


def test_allowed_is_put_in_taxonomy_order() -> None:
    made = config(kind=ConfigKind.CATEGORICAL, allowed=["weapons", "financial_crime"])
    assert made.allowed == [Category.FINANCIAL_CRIME, Category.WEAPONS]
    assert made.allowed_set == frozenset({Category.FINANCIAL_CRIME, Category.WEAPONS})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"kind": ConfigKind.CATEGORICAL, "allowed": ["other_harms"]}, "other_harms can never be allowed"),
        ({"kind": ConfigKind.CATEGORICAL, "allowed": ["drugs", "drugs"]}, "listed more than once"),
        ({"allowed": ["drugs"]}, "only for categorical configs"),
        ({"text": " \n\t"}, "config text is blank"),
        ({"id": "Has Spaces"}, "String should match pattern"),
        ({"title": ""}, "at least 1 character"),
        ({"version": 0}, "greater than or equal to 1"),
        ({"tags": ["a,b"]}, "String should match pattern"),
        ({"colour": "red"}, "Extra inputs are not permitted"),
        ({"format": "cosa-studio/config/v2"}, "Input should be 'cosa-studio/config/v1'"),
    ],
)
def test_config_rules(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        config(**changes)


def test_naive_and_offset_datetimes_become_utc() -> None:
    made = config(
        created=datetime(2025, 1, 1, 12, 0), updated=datetime(2025, 1, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    )
    assert made.created == datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    assert made.updated.tzinfo is UTC
    assert made.updated.hour == 12


def test_content_hash_follows_model_facing_content_only() -> None:
    base = config()
    assert config(title="Other", notes="n", tags=["x"], version=5).content_hash() == base.content_hash()
    assert config(text="Be very careful.").content_hash() != base.content_hash()
    categorical = config(kind=ConfigKind.CATEGORICAL)
    assert categorical.content_hash() != base.content_hash()
    assert config(kind=ConfigKind.CATEGORICAL, allowed=["drugs"]).content_hash() != categorical.content_hash()


def test_probe_needs_expectation_or_categories() -> None:
    with pytest.raises(ValidationError, match="needs an expected behaviour"):
        Probe(text="hi")
    with pytest.raises(ValidationError, match="probe text is blank"):
        Probe(text="  ", expected=Expectation.ALLOWED)


def test_probe_expectation_under_config() -> None:
    stated = Probe(text="x", expected=Expectation.PARTIAL, categories=[Category.DRUGS])
    derived = Probe(text="x", categories=[Category.DRUGS])
    allows_drugs = config(kind=ConfigKind.CATEGORICAL, allowed=[Category.DRUGS])
    assert stated.expectation_under(allows_drugs) is Expectation.PARTIAL
    assert derived.expectation_under(allows_drugs) is Expectation.ALLOWED
    assert derived.expectation_under(None) is Expectation.DISALLOWED


def test_suite_probe_ids_and_duplicates() -> None:
    suite = ProbeSuite(
        id="s",
        title="S",
        probes=[Probe(text="a", expected="allowed"), Probe(id="named", text="b", expected="disallowed")],
    )
    assert suite.probe_ids() == ["p1", "named"]
    with pytest.raises(ValidationError, match="probe id 'x' is used twice"):
        ProbeSuite(id="s", title="S", probes=[Probe(id="x", text="a", expected="allowed")] * 2)
    with pytest.raises(ValidationError, match="at least 1 item"):
        ProbeSuite(id="s", title="S", probes=[])


def test_suite_hash_depends_on_probes_only() -> None:
    probes = [Probe(text="a", expected=Expectation.ALLOWED)]
    first = ProbeSuite(id="s", title="S", probes=probes)
    assert ProbeSuite(id="t", title="Other", version=3, probes=probes).content_hash() == first.content_hash()
    changed = ProbeSuite(id="s", title="S", probes=[Probe(text="b", expected=Expectation.ALLOWED)])
    assert changed.content_hash() != first.content_hash()


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("Game Studio: Writers' Room!", "game-studio-writers-room"),
        ("???", "item"),
        ("Ünïcode Café", "unicode-cafe"),
        ("中文", "item"),
    ],
)
def test_slugify(text: str, slug: str) -> None:
    assert slugify(text) == slug
