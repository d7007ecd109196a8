"""Strict YAML loading, line-numbered validation errors and lossless dumping (atomic writes: test_fileio)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from studio.core.documents import (
    ID_PATTERN,
    ConfigKind,
    ConfigStatus,
    Expectation,
    Probe,
    ProbeSuite,
    SafetyConfig,
)
from studio.core.errors import InputError
from studio.core.taxonomy import CONFIGURABLE, Category
from studio.core.yamlio import (
    MAX_DOCUMENT_BYTES,
    dump_document,
    load_document,
    load_yaml,
    parse_document,
)

GOOD_CONFIG = """\
id: shop
title: Shop assistant
kind: free-form
text: |
  Help customers of a hardware shop.
  Never explain how to pick locks.
"""

SUITE_WITH_BAD_PROBE = """\
id: shop-probes
title: Shop probes
probes:
  - text: Where are the hammers?
    expected: allowed
  - text: How do I pick a lock?
    expected: disallowed
  - text: Which drill for concrete?
    expected: allowed
  - text: Sell me a stolen drill.
    expected: maybe
"""


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


def load_error(path: Path, model: type[SafetyConfig] | type[ProbeSuite] = SafetyConfig) -> str:
    with pytest.raises(InputError) as info:
        load_document(path, model)
    message = str(info.value)
    assert "\n" not in message
    return message


# -- refusals ----------------------------------------------------------------------------------------------------


def test_good_config_loads(tmp_path: Path) -> None:
    config = load_document(write(tmp_path, "c.yaml", GOOD_CONFIG), SafetyConfig)
    assert config.text == "Help customers of a hardware shop.\nNever explain how to pick locks.\n"
    assert config.kind is ConfigKind.FREE_FORM


def test_duplicate_key_names_key_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "c.yaml", GOOD_CONFIG + "title: Again\n")
    assert load_error(path) == f"{path}:7:1: duplicate key 'title' (first given on line 2)"


def test_nested_duplicate_key(tmp_path: Path) -> None:
    text = "id: s\ntitle: t\nprobes:\n  - text: a\n    text: b\n    expected: allowed\n"
    path = write(tmp_path, "s.yaml", text)
    assert load_error(path, ProbeSuite) == f"{path}:5:5: duplicate key 'text' (first given on line 4)"


def test_anchor_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "c.yaml", GOOD_CONFIG.replace("title: Shop", "title: &t Shop"))
    assert load_error(path) == f"{path}:2:8: anchors are not allowed (found &t)"


def test_alias_bomb_refused_before_expansion(tmp_path: Path) -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in "bcdefghi":
        previous = chr(ord(level) - 1)
        lines.append(f"{level}: &{level} [{','.join([f'*{previous}'] * 9)}]")
    path = write(tmp_path, "bomb.yaml", "\n".join(lines) + "\n")
    assert load_error(path) == f"{path}:1:4: anchors are not allowed (found &a)"


def test_alias_without_anchor_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "c.yaml", "id: x\ntitle: *name\n")
    assert load_error(path) == f"{path}:2:8: aliases are not allowed (found *name)"


def test_merge_key_is_not_special(tmp_path: Path) -> None:
    path = write(tmp_path, "c.yaml", GOOD_CONFIG + "<<: {author: x}\n")
    assert load_error(path) == f"{path}:7:1: <<: unknown field '<<'"


def test_python_tag_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "c.yaml", "id: !!python/object:os.system x\n")
    assert load_error(path) == f"{path}:1:5: the tag tag:yaml.org,2002:python/object:os.system is not allowed"


def test_non_string_key_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "c.yaml", GOOD_CONFIG + "12: twelve\n")
    assert load_error(path) == f"{path}:7:1: mapping keys must be text; quote the key 12"


def test_malformed_yaml_points_at_problem(tmp_path: Path) -> None:
    path = write(tmp_path, "c.yaml", "id: x\ntitle: [unclosed\nkind: free-form\n")
    assert load_error(path) == (f"{path}:3:5: while parsing a flow sequence: expected ',' or ']', but got ':'")


def test_binary_file_names_byte_offset(tmp_path: Path) -> None:
    path = write(tmp_path, "c.yaml", b"id: x\x00\x01\x02")
    assert load_error(path) == f"{path}: binary content: NUL byte at byte offset 5; expected UTF-8 text"


def test_non_utf8_names_byte_offset(tmp_path: Path) -> None:
    path = write(tmp_path, "c.yaml", b"id: x\ntitle: caf" + b"\xe9\n")
    assert load_error(path) == f"{path}: not UTF-8 text: invalid byte 0xe9 at byte offset 16"


def test_control_character_located(tmp_path: Path) -> None:
    path = write(tmp_path, "c.yaml", "id: x\ntitle: a\x07b\n")
    assert load_error(path) == f"{path}:2:9: character U+0007 is not allowed in YAML"


@pytest.mark.parametrize(
    ("content", "place"),
    [("", "1:1"), ("\n\n", "1:1"), ("# only a comment\n", "1:1"), ("---\n", "2:1"), ("~\n", "1:1")],
)
def test_empty_document(tmp_path: Path, content: str, place: str) -> None:
    path = write(tmp_path, "c.yaml", content)
    assert load_error(path) == f"{path}:{place}: the document is empty"


def test_file_over_size_cap(tmp_path: Path) -> None:
    path = write(tmp_path, "big.yaml", "# " + "x" * MAX_DOCUMENT_BYTES + "\n")
    size = path.stat().st_size
    assert load_error(path) == (f"{path}: file is too large ({size} bytes; the limit is {MAX_DOCUMENT_BYTES} bytes)")


def test_size_cap_checked_before_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "sparse.yaml"
    with path.open("wb") as handle:
        handle.truncate(4 * MAX_DOCUMENT_BYTES)

    def refuse_open(*args: object, **kwargs: object) -> None:
        raise AssertionError("the file was opened")

    monkeypatch.setattr(Path, "open", refuse_open)
    assert "file is too large" in load_error(path)


def test_top_level_list(tmp_path: Path) -> None:
    path = write(tmp_path, "c.yaml", "- id: x\n- id: y\n")
    assert load_error(path) == f"{path}:1:1: expected a mapping of fields at the top level, found a list"


def test_top_level_scalar(tmp_path: Path) -> None:
    path = write(tmp_path, "c.yaml", "just words\n")
    assert load_error(path) == f"{path}:1:1: expected a mapping of fields at the top level, found a single str value"


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    assert load_error(path) == f"{path}: no such file"


def test_directory_as_file(tmp_path: Path) -> None:
    assert load_error(tmp_path) == f"{tmp_path}: is a directory, not a file"


def test_multiple_documents_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "c.yaml", GOOD_CONFIG + "---\nid: other\n")
    message = load_error(path)
    assert message.startswith(f"{path}:7:1: ")
    assert "single document" in message


# -- validation errors located by key ----------------------------------------------------------------------------


def test_unknown_field_located(tmp_path: Path) -> None:
    path = write(tmp_path, "c.yaml", GOOD_CONFIG + "colour: blue\n")
    assert load_error(path) == f"{path}:7:1: colour: unknown field 'colour'"


def test_wrong_type_located(tmp_path: Path) -> None:
    path = write(tmp_path, "c.yaml", GOOD_CONFIG + "version: second\n")
    message = load_error(path)
    assert message.startswith(f"{path}:7:1: version: Input should be a valid integer")


def test_nested_error_maps_to_probe_key(tmp_path: Path) -> None:
    path = write(tmp_path, "s.yaml", SUITE_WITH_BAD_PROBE)
    assert load_error(path, ProbeSuite) == (
        f"{path}:11:5: probes.3.expected: Input should be 'allowed', 'disallowed' or 'partial'"
    )


def test_missing_field_points_at_parent(tmp_path: Path) -> None:
    text = "id: s\ntitle: t\nprobes:\n  - expected: allowed\n"
    path = write(tmp_path, "s.yaml", text)
    assert load_error(path, ProbeSuite) == f"{path}:4:5: probes.0.text: missing required field 'text'"


def test_model_rule_error_points_at_item(tmp_path: Path) -> None:
    text = "id: s\ntitle: t\nprobes:\n  - text: hi\n"
    path = write(tmp_path, "s.yaml", text)
    assert load_error(path, ProbeSuite) == (
        f"{path}:4:5: probes.0: a probe needs an expected behaviour or its risk categories"
    )


def test_several_errors_counted_on_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, "c.yaml", "id: Bad Id\ntitle: t\nkind: prose\ntext: x\n")
    message = load_error(path)
    assert message.startswith(f"{path}:1:1: id: String should match pattern")
    assert message.endswith("(and 1 more problem)")


def test_wrong_document_format(tmp_path: Path) -> None:
    path = write(tmp_path, "c.yaml", "format: cosa-studio/suite/v1\n" + GOOD_CONFIG)
    assert load_error(path) == (
        f"{path}:1:1: format: this is a 'cosa-studio/suite/v1' document, expected 'cosa-studio/config/v1'"
    )


def test_crlf_file_loads(tmp_path: Path) -> None:
    path = write(tmp_path, "c.yaml", GOOD_CONFIG.replace("\n", "\r\n").encode())
    config = load_document(path, SafetyConfig)
    assert config.text == "Help customers of a hardware shop.\nNever explain how to pick locks.\n"


def test_utf8_bom_accepted(tmp_path: Path) -> None:
    path = write(tmp_path, "c.yaml", b"\xef\xbb\xbf" + GOOD_CONFIG.encode())
    assert load_document(path, SafetyConfig).id == "shop"


@pytest.mark.parametrize("word", ["yes", "no", "on", "off", "2024-01-01", "1:20", "010", "0x1F", "1_000", "~x"])
def test_yaml11_lookalikes_stay_text(tmp_path: Path, word: str) -> None:
    assert load_yaml(write(tmp_path, "x.yaml", f"value: {word}\n")) == {"value": word}


def test_core_scalars_still_typed(tmp_path: Path) -> None:
    data = load_yaml(write(tmp_path, "x.yaml", "a: 1\nb: 2.5\nc: true\nd: null\ne: ~\n"))
    assert data == {"a": 1, "b": 2.5, "c": True, "d": None, "e": None}


# -- dumping -----------------------------------------------------------------------------------------------------


def sample_config(**changes: object) -> SafetyConfig:
    fields: dict[str, object] = {
        "id": "shop",
        "title": "Shop assistant",
        "kind": ConfigKind.CATEGORICAL,
        "text": "Line one\nLine two\n",
        "allowed": [Category.WEAPONS, Category.VIOLENCE],
        "created": datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
        "updated": datetime(2025, 1, 3, 3, 4, 5, 123456, tzinfo=UTC),
    }
    fields.update(changes)
    return SafetyConfig.model_validate(fields)


def test_dump_is_readable_and_in_field_order() -> None:
    text = dump_document(sample_config(notes="keep it short"))
    assert text.splitlines()[:4] == [
        "format: cosa-studio/config/v1",
        "id: shop",
        "title: Shop assistant",
        "kind: categorical",
    ]
    assert "text: |\n  Line one\n  Line two\n" in text
    assert "allowed:\n  - violence\n  - weapons\n" in text
    assert "created: '2025-01-02T03:04:05Z'" in text
    assert "updated: '2025-01-03T03:04:05.123456Z'" in text
    assert "template:" not in text


@pytest.mark.parametrize(
    ("text", "header"),
    [("a\nb", "|-"), ("a\nb\n", "|"), ("a\nb\n\n", "|+"), ("\n\nlead\n", "|2")],
)
def test_block_scalar_chomping(text: str, header: str) -> None:
    dumped = dump_document(sample_config(text=text))
    assert f"text: {header}\n" in dumped
    assert parse_document(dumped, SafetyConfig).text == text


def test_carriage_return_kept_exactly() -> None:
    config = sample_config(text="windows\r\nline\r\n")
    dumped = dump_document(config)
    assert 'text: "windows\\r\\nline\\r\\n"' in dumped
    assert parse_document(dumped, SafetyConfig) == config


@pytest.mark.parametrize(
    "value", ["yes", "No", "null", "~", "1.0", "0x1F", "1e3", "-.5", ".inf", "010", "true", "2024-01-01", "12:30", ""]
)
def test_lookalike_strings_stay_strings(value: str) -> None:
    config = sample_config(notes=value, author=value, tags=[value] if value else [])
    assert parse_document(dump_document(config), SafetyConfig) == config


def test_probe_defaults_left_out() -> None:
    suite = ProbeSuite(
        id="s",
        title="t",
        probes=[Probe(text="hello", expected=Expectation.ALLOWED), Probe(text="x", categories=[Category.DRUGS])],
    )
    dumped = dump_document(suite)
    assert "  - text: hello\n    expected: allowed\n  - text: x\n    categories:\n      - drugs\n" in dumped
    assert "notes" not in dumped
    assert parse_document(dumped, ProbeSuite) == suite


# -- property tests: load(dump(x)) == x --------------------------------------------------------------------------

any_text = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=60)
document_text = st.one_of(
    any_text,
    st.lists(
        st.sampled_from(["", " ", "  indented", "\ttab", "word", "trailing  ", "é ünï 中文 🙂", "\r", "- x", "#"]),
        max_size=6,
    ).map("\n".join),
)
non_blank = document_text.filter(lambda t: bool(t.strip()))
tags = st.lists(st.from_regex(r"[^\s,][^,\n]{0,20}", fullmatch=True), max_size=3, unique=True)
utc_times = st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC))


@st.composite
def safety_configs(draw: st.DrawFn) -> SafetyConfig:
    kind = draw(st.sampled_from(ConfigKind))
    allowed = draw(st.lists(st.sampled_from(CONFIGURABLE), unique=True)) if kind is ConfigKind.CATEGORICAL else []
    return SafetyConfig(
        id=draw(st.from_regex(ID_PATTERN, fullmatch=True)),
        title=draw(non_blank.filter(lambda t: len(t) <= 200)),
        kind=kind,
        text=draw(non_blank),
        allowed=allowed,
        template=draw(st.none() | st.from_regex(ID_PATTERN, fullmatch=True)),
        phrasing=draw(st.none() | st.integers(min_value=0, max_value=50)),
        phrasing_seed=draw(st.none() | st.integers(min_value=-(2**63), max_value=2**63)),
        author=draw(document_text.filter(lambda t: len(t) <= 200)),
        created=draw(utc_times),
        updated=draw(utc_times),
        version=draw(st.integers(min_value=1, max_value=10_000)),
        status=draw(st.sampled_from(ConfigStatus)),
        tags=draw(tags),
        notes=draw(document_text),
    )


@st.composite
def probe_suites(draw: st.DrawFn) -> ProbeSuite:
    probes = []
    for index in range(draw(st.integers(min_value=1, max_value=4))):
        categories = draw(st.lists(st.sampled_from(list(Category)), unique=True, max_size=3))
        expected = draw(st.none() | st.sampled_from(Expectation)) if categories else draw(st.sampled_from(Expectation))
        probes.append(
            Probe(
                id=draw(st.none() | st.just(f"probe-{index}")),
                text=draw(non_blank),
                expected=expected,
                categories=categories,
                notes=draw(document_text),
            )
        )
    return ProbeSuite(
        id=draw(st.from_regex(ID_PATTERN, fullmatch=True)),
        title=draw(non_blank.filter(lambda t: len(t) <= 200)),
        description=draw(document_text),
        kind=draw(st.sampled_from(ConfigKind)),
        version=draw(st.integers(min_value=1, max_value=99)),
        tags=draw(tags),
        probes=probes,
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(safety_configs())
def test_config_round_trip(config: SafetyConfig) -> None:
    assert parse_document(dump_document(config), SafetyConfig) == config


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(probe_suites())
def test_suite_round_trip(suite: ProbeSuite) -> None:
    assert parse_document(dump_document(suite), ProbeSuite) == suite


def test_every_template_config_round_trips() -> None:
    from studio.core.templates import list_templates, new_config

    for template in list_templates():
        config = new_config(template.id, seed=5)
        dumped = dump_document(config)
        assert parse_document(dumped, SafetyConfig) == config
        if "\n" in config.text and "\r" not in config.text:
            assert "text: |" in dumped


def test_nested_timestamps_are_always_written() -> None:
    """A nested config created this very second must keep its timestamps: re-reading must not call utc_now()."""
    from pydantic import BaseModel, ConfigDict

    from studio.core.documents import ConfigKind, SafetyConfig
    from studio.core.yamlio import dump_document, parse_document

    class Wrapper(BaseModel):
        model_config = ConfigDict(extra="forbid")
        config: SafetyConfig

    fresh = SafetyConfig(id="now", title="Now", kind=ConfigKind.FREE_FORM, text="x")
    text = dump_document(Wrapper(config=fresh))
    assert "  created: " in text and "  updated: " in text
    assert "  tags:" not in text  # empty lists from list factories are still left out
    assert parse_document(text, Wrapper).config == fresh
