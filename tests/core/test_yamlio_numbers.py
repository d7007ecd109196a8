"""Numbers and explicitly tagged scalars in YAML: anything Python cannot hold or convert is one InputError line
naming the file, line and column, never a traceback (Python refuses to turn text of over 4300 digits into an int)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from studio.cli.main import main
from studio.core.documents import SafetyConfig
from studio.core.errors import ExitCode, InputError
from studio.core.yamlio import MAX_NUMBER_CHARS, load_document, load_yaml, parse_yaml_node

CONFIG = "id: shop\ntitle: Shop\nkind: free-form\ntext: Help customers.\nversion: {version}\n"


def _error(text: str, tmp_path: Path) -> str:
    path = tmp_path / "doc.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_yaml(path)
    message = str(caught.value)
    assert "\n" not in message
    return message.removeprefix(f"{path}:")


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("9" * 5000, "an integer of 5000 characters is too long (the limit is 1000)"),
        ("-" + "1" * 4400, "an integer of 4401 characters is too long (the limit is 1000)"),
        ("!!int 0x" + "f" * 5000, "an integer of 5002 characters is too long (the limit is 1000)"),
        ("!!int " + "1:" * 600 + "1", "an integer of 1201 characters is too long (the limit is 1000)"),
        ("1" * 1001 + ".5", "a number of 1003 characters is too long (the limit is 1000)"),
        ("!!int abc", "'abc' is not an integer"),
        ("!!int ''", "'' is not an integer"),
        ("!!int 0b", "'0b' is not an integer"),
        ("!!float abc", "'abc' is not a number"),
        ("!!float '-'", "'-' is not a number"),
        ("!!bool maybe", "'maybe' is not true or false"),
        ("!!null nothing", "'nothing' is not null"),
        ("1e400", "'1e400' is out of range (beyond about 1.8e308); write infinity as .inf"),
        ("-2e999", "'-2e999' is out of range (beyond about 1.8e308); write infinity as .inf"),
        ("!!float inf", "'inf' is out of range (beyond about 1.8e308); write infinity as .inf"),
        ("!!float nan", "'nan' is not a number; write not-a-number as .nan"),
    ],
)
def test_numbers_python_cannot_hold_are_located_input_errors(tmp_path: Path, value: str, problem: str) -> None:
    assert _error(f"name: x\nlimits:\n  - 1\n  - {value}\n", tmp_path) == f"4:5: {problem}"


def test_numbers_within_the_limits_still_load() -> None:
    longest = "9" * MAX_NUMBER_CHARS
    data, _ = parse_yaml_node(
        f"a: {longest}\nb: !!int 0x1F\nc: 1.5e300\nd: .inf\ne: -.Inf\nf: .nan\ng: !!int 1_000\nh: !!bool yes\ni: !!null"
    )
    assert data["a"] == int(longest)
    assert (data["b"], data["c"], data["d"], data["e"], data["g"], data["h"], data["i"]) == (
        31,
        1.5e300,
        math.inf,
        -math.inf,
        1000,
        True,
        None,
    )
    assert math.isnan(data["f"])


def test_a_huge_version_in_a_document_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG.format(version="1" * 4500), encoding="utf-8")
    with pytest.raises(InputError, match=r":5:10: an integer of 4500 characters is too long"):
        load_document(path, SafetyConfig)


@pytest.mark.parametrize("command", [["config", "validate"], ["config", "import"], ["verify"]])
def test_commands_reading_a_huge_integer_exit_3_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG.format(version="7" * 5000), encoding="utf-8")
    assert main([*command, str(path)]) == ExitCode.INPUT
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert f"{path}:5:10: an integer of 5000 characters is too long (the limit is 1000)" in text
    assert "Traceback" not in text
    assert text.count("\n") <= 2
