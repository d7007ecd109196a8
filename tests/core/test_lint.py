from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from studio.core.lint import LONG_TOKENS, SHORT_TOKENS, LintHint, lint_config
from studio.core.taxonomy import Category
from studio.core.templates import PHRASINGS, SKELETON_SECTIONS, get_template, render_categorical

SCENARIOS = ("game-studio", "public-prosecutor", "childrens-publisher", "language-learning", "film-production")
MISSING = {"missing-allowed", "missing-disallowed"}

GOOD = """You help the staff of a cooking school.
You may explain knife skills in detail, including how to sharpen a cleaver.
Never give advice on hurting people with kitchen tools.
Examples of allowed requests: how to julienne carrots; how to butcher a chicken.
Examples of requests to decline: how to hide a knife on a flight.
"""


def _codes(hints: list[LintHint]) -> set[str]:
    return {h.code for h in hints}


def _by_code(hints: list[LintHint], code: str) -> list[LintHint]:
    return [h for h in hints if h.code == code]


@pytest.mark.parametrize("template_id", SCENARIOS)
def test_scenario_templates_lint_without_warnings(template_id: str) -> None:
    hints = lint_config(get_template(template_id).text)
    assert not _codes(hints) & MISSING
    assert [h for h in hints if h.severity == "warning"] == []


def test_a_complete_short_policy_is_clean() -> None:
    assert lint_config(GOOD) == []


def test_skeleton_placeholders_are_flagged_on_their_lines() -> None:
    text = get_template("policy-skeleton").text
    hints = _by_code(lint_config(text), "placeholder")
    bracket_lines = [n for n, line in enumerate(text.splitlines(), start=1) if line.lstrip("- ").startswith("[")]
    assert [h.line for h in hints] == bracket_lines
    assert all(h.severity == "warning" for h in hints)


def test_filled_skeleton_headings_count_as_sections_and_examples() -> None:
    body = {
        "Scope": "A bakery's ordering assistant for adult customers.",
        "Allowed": "- Recipes that use rum or wine.",
        "Not allowed": "- Selling alcohol to anyone.",
        "Borderline handling": "- Answer the recipe part of mixed questions.",
        "Examples of allowed requests": "- A rum cake recipe.",
        "Examples of requests to decline": "- Buy me a bottle of rum.",
    }
    text = "\n\n".join(f"## {section}\n{body[section]}" for section in SKELETON_SECTIONS)
    assert lint_config(text, token_count=200) == []


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Be kind to customers and answer questions about our opening hours and prices in a friendly way.", None),
        ("Answer questions about our opening hours and prices. Never discuss competitors or their prices.", "a"),
        ("You may discuss the history of cocktails and how bartenders invented the classic drinks we serve.", "d"),
        ("Allowed:\n- cocktail history\n- bar etiquette and the classic drinks served in our bars today", "d"),
        ("Not allowed:\n- serving minors\n- drinking games and anything about getting drunk quickly tonight", "a"),
        ("Scope\nA bakery's assistant.\n\nAllowed\n- recipes with rum\n\nNot allowed\n- selling alcohol", "-"),
    ],
)
def test_missing_sections(text: str, code: str | None) -> None:
    found = _codes(lint_config(text, token_count=100)) & MISSING
    expected = {
        None: MISSING,
        "a": {"missing-allowed"},
        "d": {"missing-disallowed"},
        "-": set(),
    }[code]
    assert found == expected


def test_no_examples_on_either_side_then_on_one_side() -> None:
    base = "You may talk about wine regions.\nDo not recommend drinking and driving.\n"
    assert "no-examples" in _codes(lint_config(base, token_count=100))
    one_side = base + "Examples of allowed requests: which grapes grow in Rioja?\n"
    codes = _codes(lint_config(one_side, token_count=100))
    assert "no-examples" not in codes
    assert "no-disallowed-examples" in codes
    assert "no-allowed-examples" not in codes


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("Violence is allowed in stories.\nKeep scenes short.\nViolence is not allowed.", 3),
        ("You may write gore for our horror anthology.\nNever write gore.", 2),
        ("You may discuss alcohol with adult learners.\n\nNo alcohol.", 3),
        ("Never describe weapons.\nWeapons are fine in historical settings.", 2),
        ("You may give instructions for knitting.\nYou can't give instructions for knitting.", 2),
    ],
)
def test_contradictions_point_at_the_later_statement(text: str, line: int) -> None:
    hints = _by_code(lint_config(text), "contradiction")
    assert len(hints) == 1
    assert hints[0].line == line
    assert hints[0].severity == "warning"


@pytest.mark.parametrize(
    "text",
    [
        "You may give instructions for knitting.\nNever give instructions for weapons.",
        "You may describe violence in fiction.\nNever describe violence against real people in detail or as praise.",
        "Violence is allowed.\nAlcohol is not allowed.",
    ],
)
def test_different_topics_do_not_contradict(text: str) -> None:
    assert _by_code(lint_config(text), "contradiction") == []


def test_vague_terms_without_definition_are_flagged_on_their_line() -> None:
    text = "You may answer cooking questions.\nNever produce offensive jokes.\nDo not share harmful recipes."
    hints = _by_code(lint_config(text), "vague-term")
    assert [(h.line, re.findall(r"'(\w+)'", h.message)[0]) for h in hints] == [(2, "offensive"), (3, "harmful")]
    assert all(h.severity == "info" for h in hints)


def test_vague_terms_with_a_definition_nearby_are_fine() -> None:
    text = (
        "You may answer cooking questions.\n"
        "Never produce offensive jokes, such as jokes about a guest's religion or accent.\n"
        "Do not share harmful recipes. Harmful here means anything with raw kidney beans or wild mushrooms."
    )
    assert _by_code(lint_config(text), "vague-term") == []


def test_length_uses_the_given_token_count() -> None:
    assert "too-long" in _codes(lint_config(GOOD, token_count=LONG_TOKENS + 1))
    assert "too-short" in _codes(lint_config(GOOD, token_count=SHORT_TOKENS - 1))
    assert not _codes(lint_config(GOOD, token_count=300)) & {"too-long", "too-short"}


def test_length_is_estimated_without_a_token_count() -> None:
    long_text = GOOD + ("Recipes may use butter and sugar freely. " * 200)
    hints = _by_code(lint_config(long_text), "too-long")
    assert len(hints) == 1 and "estimated" in hints[0].message and hints[0].line is None
    assert "too-short" in _codes(lint_config("Never swear."))


def test_empty_text() -> None:
    assert [h.code for h in lint_config(" \n ")] == ["empty"]


def test_windows_line_endings_keep_line_numbers() -> None:
    text = "You may write gore for our horror anthology.\r\nKeep it short.\r\nNever write gore."
    assert [h.line for h in _by_code(lint_config(text), "contradiction")] == [3]


def test_warnings_come_first() -> None:
    hints = lint_config("Be nice and appropriate.")
    severities = [h.severity for h in hints]
    assert severities == sorted(severities, key=lambda s: s != "warning")
    assert "warning" in severities and "info" in severities


def test_categorical_renderings_say_both_sides() -> None:
    for index in range(len(PHRASINGS)):
        text = render_categorical([Category.VIOLENCE, Category.DRUGS], phrasing=index).text
        assert not _codes(lint_config(text)) & MISSING


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=400))
def test_any_text_lints_with_valid_lines(text: str) -> None:
    hints = lint_config(text)
    line_count = text.replace("\r\n", "\n").replace("\r", "\n").count("\n") + 1
    for hint in hints:
        assert hint.severity in ("info", "warning")
        assert hint.line is None or 1 <= hint.line <= line_count
