"""Template and config texts are paragraphs: a line break inside a paragraph shows up as a ragged edge wherever the
text is soft-wrapped (the editor, the template preview, an exported file), so only headings and list items may
start a new line without a blank line before them."""

from __future__ import annotations

import itertools
import re

import pytest

from studio.core.documents import SafetyConfig
from studio.core.taxonomy import CONFIGURABLE
from studio.core.templates import PHRASINGS, Template, list_templates, new_config, render_categorical
from studio.core.yamlio import dump_document, parse_document

_LINE_STARTERS = re.compile(r"(#+ |[-*] |\d+\. )")


def hard_breaks(text: str) -> list[str]:
    """Lines that continue the paragraph above them after a line break (each one a defect)."""
    found = []
    lines = text.split("\n")
    for previous, line in itertools.pairwise(lines):
        if not previous.strip() or not line.strip():
            continue
        if _LINE_STARTERS.match(line.lstrip()) or previous.lstrip().startswith("#"):
            continue
        found.append(line)
    return found


def test_the_checker_finds_a_break_inside_a_paragraph() -> None:
    assert hard_breaks("One sentence that goes on\nand on.\n\n## Head\nBody.\n- a\n- b\n") == ["and on."]
    assert hard_breaks("Intro:\n- item\n- item\n\n## Scope\nText.") == []


@pytest.mark.parametrize("template", list_templates(), ids=lambda t: t.id)
def test_templates_have_no_hard_breaks_inside_paragraphs(template: Template) -> None:
    assert hard_breaks(template.text) == []
    config = new_config(template.id)
    assert hard_breaks(config.text) == []


@pytest.mark.parametrize("phrasing", range(len(PHRASINGS)))
def test_rendered_categorical_configs_have_no_hard_breaks(phrasing: int) -> None:
    for allowed in ((), CONFIGURABLE[:1], CONFIGURABLE):
        assert hard_breaks(render_categorical(allowed, phrasing=phrasing).text) == []


def test_a_dumped_config_keeps_each_paragraph_on_one_line() -> None:
    config = new_config("game-studio")
    dumped = dump_document(config)
    reloaded = parse_document(dumped, SafetyConfig)
    assert reloaded.text == config.text
    first_paragraph = config.text.split("\n\n")[0]
    assert len(first_paragraph) > 200 and first_paragraph in dumped
