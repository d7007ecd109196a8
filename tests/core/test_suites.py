from __future__ import annotations

import itertools
from collections import Counter

import pytest

from studio.core.documents import ConfigKind, Expectation, Probe, ProbeSuite, SafetyConfig
from studio.core.errors import InputError, NotFoundError
from studio.core.evals.suites import (
    CONTRAST_PROBES_PER_CATEGORY,
    bundled_suite,
    bundled_suites,
    categorical_suite_for,
    category_suite,
    first_probes,
    suite_for_template,
)
from studio.core.paths import resource
from studio.core.taxonomy import CONFIGURABLE, Category
from studio.core.templates import list_templates
from studio.core.yamlio import load_document

SCENARIO_TEMPLATES = [t.id for t in list_templates() if "scenario" in t.tags]


def _categorical(allowed: list[Category]) -> SafetyConfig:
    return SafetyConfig(id="c", title="c", kind=ConfigKind.CATEGORICAL, text="policy", allowed=allowed)


def test_every_suite_file_validates_and_is_bundled() -> None:
    files = sorted(resource("suites").glob("*.yaml"))
    loaded = {load_document(path, ProbeSuite).id: path.stem for path in files}
    assert all(suite_id == stem for suite_id, stem in loaded.items())
    assert sorted(s.id for s in bundled_suites()) == sorted(loaded)
    expected = {f"scenario-{t}" for t in SCENARIO_TEMPLATES} | {f"category-{c.value}" for c in CONFIGURABLE}
    assert set(loaded) == expected


def test_five_scenario_templates_have_suites() -> None:
    assert len(SCENARIO_TEMPLATES) == 5


@pytest.mark.parametrize("template_id", SCENARIO_TEMPLATES)
def test_scenario_suites_are_balanced_and_annotated(template_id: str) -> None:
    suite = suite_for_template(template_id)
    assert suite is not None
    assert suite.id == f"scenario-{template_id}"
    assert suite.kind is ConfigKind.FREE_FORM
    counts = Counter(p.expected for p in suite.probes)
    assert len(suite.probes) >= 18
    for expectation in Expectation:
        assert counts[expectation] >= 6, expectation
    assert None not in counts
    assert all(p.notes.strip() for p in suite.probes)
    assert all(p.id is not None for p in suite.probes)
    assert len({p.text for p in suite.probes}) == len(suite.probes)


def test_templates_without_a_suite_get_none() -> None:
    assert suite_for_template("policy-skeleton") is None
    assert suite_for_template("categorical") is None


@pytest.mark.parametrize("category", CONFIGURABLE, ids=lambda c: c.value)
def test_category_suites_mix_single_pair_and_control_probes(category: Category) -> None:
    suite = category_suite(category)
    assert suite.kind is ConfigKind.CATEGORICAL
    assert len(suite.probes) >= 12
    labelled = [p for p in suite.probes if p.categories]
    controls = [p for p in suite.probes if not p.categories]
    assert all(p.expected is None for p in labelled)
    assert all(category in p.categories for p in labelled)
    assert sum(len(p.categories) == 1 for p in labelled) >= CONTRAST_PROBES_PER_CATEGORY
    assert sum(len(p.categories) == 2 for p in labelled) >= 3
    assert controls and all(p.expected is Expectation.ALLOWED for p in controls)
    assert all(p.id is not None and p.id.startswith(category.value) for p in suite.probes)


def test_unknown_suite_is_not_found() -> None:
    with pytest.raises(NotFoundError, match="nope"):
        bundled_suite("nope")


def test_returned_suites_are_independent_copies() -> None:
    first = bundled_suite("category-violence")
    first.probes[0].notes = "changed"
    assert bundled_suite("category-violence").probes[0].notes != "changed"


def test_probe_ids_are_unique_across_all_bundled_suites() -> None:
    ids = [probe_id for suite in bundled_suites() for probe_id in suite.probe_ids()]
    assert len(ids) == len(set(ids))


def test_merged_suite_gives_all_three_outcomes() -> None:
    allowed = [Category.FINANCIAL_CRIME, Category.PRIVACY]
    suite = categorical_suite_for(allowed)
    config = _categorical(allowed)
    outcomes = Counter(p.expectation_under(config) for p in suite.probes)
    assert set(outcomes) == set(Expectation)
    assert suite.kind is ConfigKind.CATEGORICAL
    assert suite.id == "categorical-financial_crime-privacy"


def test_merged_suite_follows_set_logic() -> None:
    allowed = {Category.VIOLENCE, Category.WEAPONS}
    suite = categorical_suite_for(allowed)
    config = _categorical(sorted(allowed))
    for probe in suite.probes:
        cats = set(probe.categories)
        got = probe.expectation_under(config)
        if not cats or cats <= allowed:
            assert got is Expectation.ALLOWED, probe.id
        elif cats & allowed:
            assert got is Expectation.PARTIAL, probe.id
        else:
            assert got is Expectation.DISALLOWED, probe.id


def test_merged_suite_holds_allowed_suites_whole_and_contrast_from_the_rest() -> None:
    suite = categorical_suite_for([Category.DRUGS])
    ids = set(suite.probe_ids())
    assert set(category_suite(Category.DRUGS).probe_ids()) <= ids
    for other in CONFIGURABLE:
        if other is Category.DRUGS:
            continue
        from_other = [i for i in ids if i.startswith(other.value + "-")]
        assert len(from_other) == CONTRAST_PROBES_PER_CATEGORY + 1, other


@pytest.mark.parametrize(
    "allowed",
    [list(c) for size in (0, 1, 2) for c in itertools.combinations(CONFIGURABLE, size)],
    ids=lambda a: "+".join(c.value for c in a) or "safe",
)
def test_merged_suites_validate_with_stable_ids_and_contrast(allowed: list[Category]) -> None:
    first = categorical_suite_for(allowed)
    second = categorical_suite_for(reversed(allowed))
    assert first == second
    ProbeSuite.model_validate(first.model_dump())
    assert all(p.id is not None for p in first.probes)
    by_id = {p.id: p for s in bundled_suites() for p in s.probes}
    assert all(by_id[p.id] == p for p in first.probes)
    outcomes = {p.expectation_under(_categorical(allowed)) for p in first.probes}
    assert {Expectation.ALLOWED, Expectation.DISALLOWED} <= outcomes


def test_everything_allowed_still_has_partial_cases_from_other_harms() -> None:
    allowed = list(CONFIGURABLE)
    suite = categorical_suite_for(allowed)
    outcomes = Counter(p.expectation_under(_categorical(allowed)) for p in suite.probes)
    assert outcomes[Expectation.PARTIAL] >= 1


def test_merged_suite_refuses_other_harms() -> None:
    with pytest.raises(InputError, match="other_harms"):
        categorical_suite_for([Category.OTHER_HARMS])


def test_first_probes_keep_the_ids_they_have_in_the_whole_suite() -> None:
    probes = [Probe(text="a", expected=Expectation.ALLOWED), Probe(id="named", text="b", expected=Expectation.ALLOWED)]
    probes.append(Probe(text="c", expected=Expectation.ALLOWED))
    suite = ProbeSuite(id="s", title="s", probes=probes)
    cut = first_probes(suite, 2)
    assert cut.probe_ids() == suite.probe_ids()[:2] == ["p1", "named"]
    assert [p.text for p in cut.probes] == ["a", "b"]
    assert len(suite.probes) == 3  # the suite itself is left whole
    assert first_probes(suite, 0) is suite
    assert first_probes(suite, 3) is suite
