"""Property: every command that reads a file or an id answers generated input with exit 0 or one clean line.

Files are generated YAML (nested structures, deep nesting, odd scalars), JSON, near-valid documents and raw bytes;
arguments are generated ids and version numbers. Any exception escaping ``main`` or a multi-line error fails.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from studio.cli.main import main

FILE_COMMANDS = [
    ["config", "validate"],
    ["config", "import"],
    ["suite", "validate"],
    ["suite", "import"],
    ["verify"],
    ["import-approved"],
    ["keys", "trust"],
    ["import-benchmark", "cosapien", "--dry-run"],
]
ID_COMMANDS = [
    ["config", "show"],
    ["config", "history"],
    ["config", "export"],
    ["review", "gate"],
    ["review", "submit"],
    ["export"],
    ["runs", "show"],
    ["audit", "log", "--subject"],
]

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.text(max_size=30),
    st.sampled_from(["cosa-studio/approved-config/v1", "free-form", "categorical", "support-bot", "allowed"]),
)
_keys = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["id", "title", "kind", "text", "format", "config", "statements", "probes", "signature"]),
)
_documents = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_keys, inner, max_size=5)),
    max_leaves=20,
)


def _deep(levels: int) -> str:
    return "format: cosa-studio/approved-config/v1\nconfig: " + "[" * levels + "]" * levels + "\n"


_file_bytes = st.one_of(
    _documents.map(lambda d: yaml.safe_dump(d, allow_unicode=True).encode()),
    _documents.map(lambda d: json.dumps(d, default=str).encode()),
    st.integers(50, 600).map(lambda n: _deep(n).encode()),
    st.binary(max_size=200),
    st.text(max_size=200).map(str.encode),
)

_ids = st.one_of(
    st.text(max_size=20).filter(lambda s: not s.startswith("-")),
    st.sampled_from(["support-bot", "../../x", "a" * 200, "0", "\u00e9t\u00e9", "x y"]),
)

SETTINGS = settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture], derandomize=True
)


def _assert_clean(code: int, err: str) -> None:
    assert "Traceback" not in err, err
    if code != 0:
        # A batch import adds its summary ("nothing imported") after the one line naming the bad file.
        lines = [
            line
            for line in err.splitlines()
            if line.strip() and not line.startswith(("usage:", "studio: nothing imported"))
        ]
        assert len(lines) <= 1, err


@pytest.mark.parametrize("command", FILE_COMMANDS, ids=lambda c: " ".join(c))
@SETTINGS
@given(content=_file_bytes)
def test_reading_commands_take_any_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str], content: bytes
) -> None:
    path = tmp_path / "input.yaml"
    path.write_bytes(content)
    capsys.readouterr()
    code = main([*command, str(path)])
    _assert_clean(code, capsys.readouterr().err)


@pytest.mark.parametrize("command", ID_COMMANDS, ids=lambda c: " ".join(c))
@SETTINGS
@given(value=_ids, version=st.one_of(st.none(), st.integers(-5, 2**40)))
def test_reading_commands_take_any_id(
    capsys: pytest.CaptureFixture[str], command: list[str], value: str, version: int | None
) -> None:
    args = [*command, value]
    if version is not None and command[-1] in {"show", "export", "gate", "submit"} and command[0] != "runs":
        args += ["--version", str(version)]
    capsys.readouterr()
    try:
        code = main(args)
    except SystemExit as exc:  # argparse usage errors exit 2 with a usage line and one error line
        code = int(exc.code or 0)
        assert code == 2
    _assert_clean(code, capsys.readouterr().err)
