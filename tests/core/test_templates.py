from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from studio.core.documents import ConfigKind, SafetyConfig
from studio.core.errors import InputError, NotFoundError
from studio.core.taxonomy import CONFIGURABLE, Category
from studio.core.templates import (
    PHRASINGS,
    SKELETON_SECTIONS,
    Template,
    _load_template,
    get_template,
    list_templates,
    new_config,
    render_categorical,
)

SCENARIOS = ("game-studio", "public-prosecutor", "childrens-publisher", "language-learning", "film-production")


def test_all_templates_are_bundled_in_order() -> None:
    ids = [t.id for t in list_templates()]
    assert ids == [*SCENARIOS, "policy-skeleton", "categorical"]


@pytest.mark.parametrize("template_id", SCENARIOS)
def test_scenario_templates_are_substantial_free_form_policies(template_id: str) -> None:
    template = get_template(template_id)
    assert template.kind is ConfigKind.FREE_FORM
    assert "scenario" in template.tags
    words = len(template.text.split())
    assert 200 <= words <= 900, words
    assert template.title and template.description


def test_scenario_texts_are_distinct() -> None:
    texts = {get_template(t).text for t in SCENARIOS}
    assert len(texts) == len(SCENARIOS)


def test_unknown_template_is_not_found() -> None:
    with pytest.raises(NotFoundError, match="no-such-template"):
        get_template("no-such-template")


def test_skeleton_has_every_section_heading_in_order() -> None:
    text = get_template("policy-skeleton").text
    headings = [line.lstrip("# ").strip() for line in text.splitlines() if line.startswith("#")]
    assert headings == list(SKELETON_SECTIONS)


@pytest.mark.parametrize("template", list_templates(), ids=lambda t: t.id)
def test_every_template_makes_a_valid_config(template: Template) -> None:
    config = new_config(template.id, author="ana")
    assert config.template == template.id
    assert config.kind is template.kind
    assert config.author == "ana"
    reloaded = SafetyConfig.model_validate_json(config.model_dump_json())
    assert reloaded == config


def test_phrasings_each_have_one_category_slot() -> None:
    assert len(PHRASINGS) >= 5
    assert len(set(PHRASINGS)) == len(PHRASINGS)
    for phrasing in PHRASINGS:
        assert phrasing.count("{categories}") == 1


def test_render_is_reproducible_from_recorded_seed_and_phrasing() -> None:
    allowed = [Category.VIOLENCE, Category.PRIVACY]
    first = render_categorical(allowed)
    assert first.seed is not None
    assert render_categorical(allowed, seed=first.seed) == first
    by_phrasing = render_categorical(allowed, phrasing=first.phrasing)
    assert by_phrasing.text == first.text
    assert by_phrasing.seed is None


def test_fresh_seeds_differ_between_calls() -> None:
    seeds = {render_categorical([Category.DRUGS]).seed for _ in range(20)}
    assert len(seeds) > 1


def test_different_seeds_reach_every_phrasing() -> None:
    reached = {render_categorical([Category.WEAPONS], seed=seed).phrasing for seed in range(300)}
    assert reached == set(range(len(PHRASINGS)))


@settings(max_examples=60, deadline=None)
@given(
    allowed=st.sets(st.sampled_from(CONFIGURABLE), min_size=1),
    seed=st.integers(min_value=0, max_value=2**63),
)
def test_render_lists_exactly_the_allowed_definitions(allowed: set[Category], seed: int) -> None:
    rendered = render_categorical(allowed, seed=seed)
    assert render_categorical(sorted(allowed), seed=seed) == rendered
    for category in CONFIGURABLE:
        present = category.info.definition in rendered.text
        assert present == (category in allowed), category
        assert (category.display_name in rendered.text) == (category in allowed)
    assert Category.OTHER_HARMS.info.definition not in rendered.text
    assert "{categories}" not in rendered.text


def test_nothing_allowed_has_its_own_rendering_for_every_phrasing() -> None:
    texts = [render_categorical([], phrasing=index).text for index in range(len(PHRASINGS))]
    assert len(set(texts)) == len(PHRASINGS)
    for text in texts:
        assert "{categories}" not in text
        assert not any(c.display_name in text for c in CONFIGURABLE)
        assert not any(c.info.definition in text for c in CONFIGURABLE)


def test_other_harms_can_never_be_allowed() -> None:
    with pytest.raises(InputError, match="other_harms"):
        render_categorical([Category.VIOLENCE, Category.OTHER_HARMS], seed=1)
    with pytest.raises(InputError, match="other_harms"):
        new_config("categorical", allowed=[Category.OTHER_HARMS])


@pytest.mark.parametrize("phrasing", [-1, len(PHRASINGS)])
def test_unknown_phrasing_is_an_input_error(phrasing: int) -> None:
    with pytest.raises(InputError, match="phrasing"):
        render_categorical([Category.SEXUAL], phrasing=phrasing)


def test_categorical_config_records_phrasing_and_seed() -> None:
    config = new_config("categorical", allowed=[Category.PRIVACY, Category.FINANCIAL_CRIME], seed=42)
    assert config.kind is ConfigKind.CATEGORICAL
    assert config.allowed == [Category.FINANCIAL_CRIME, Category.PRIVACY]
    assert config.phrasing_seed == 42
    assert config.phrasing is not None
    again = render_categorical(config.allowed, seed=config.phrasing_seed)
    assert again.text == config.text
    assert again.phrasing == config.phrasing
    assert re.fullmatch(r"[a-z0-9][a-z0-9._-]*", config.id)
    assert "Financial crime" in config.title


def test_categorical_config_without_seed_still_records_one() -> None:
    config = new_config("categorical", allowed=[Category.VIOLENCE])
    assert config.phrasing_seed is not None
    assert render_categorical(config.allowed, seed=config.phrasing_seed).text == config.text


def test_new_config_uses_given_id_and_title() -> None:
    config = new_config("film-production", config_id="red-quarry-v1", title="Red Quarry policy")
    assert (config.id, config.title) == ("red-quarry-v1", "Red Quarry policy")
    assert config.text == get_template("film-production").text


def test_free_form_template_refuses_allowed_categories() -> None:
    with pytest.raises(InputError, match="free-form"):
        new_config("game-studio", allowed=[Category.VIOLENCE])


def test_bad_config_id_is_a_one_line_input_error() -> None:
    with pytest.raises(InputError) as caught:
        new_config("game-studio", config_id="Not A Valid Id")
    assert "\n" not in str(caught.value)
    assert "(id)" in str(caught.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("id: broken\ntitle: T\nkind: free-form\ndescription: D\ntext: x\ncolour: red\n", "unknown field 'colour'"),
        ("id: other\ntitle: T\nkind: free-form\ndescription: D\ntext: x\n", "does not match the file name"),
        ("id: broken\ntitle: T\nkind: poem\ndescription: D\ntext: x\n", "unknown kind"),
        ("id: broken\ntitle: T\nkind: free-form\ndescription: D\n", "'text'"),
        ("id: broken\ntitle: T\nkind: categorical\ndescription: D\ntext: x\n", "has no text"),
        ("id: broken\ntitle: [unclosed\n", "broken.yaml:"),
        ("- just\n- a list\n", "mapping"),
    ],
)
def test_broken_template_files_give_located_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError) as caught:
        _load_template(path)
    text = str(caught.value)
    assert str(path) in text
    assert message in text
    assert "\n" not in text
