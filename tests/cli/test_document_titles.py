"""A config or suite title is one line: given on the command line or in an imported file, a title with a line
break or a control character is refused, so that `config list` keeps one config per row."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.cli.main import main
from studio.core.documents import title_problem
from studio.core.errors import ExitCode


@pytest.mark.parametrize("title", ["a\nb", "a\r\nb", "a\rb", "a\u2028b", "a\x85b", "a\x1b[31mb", "\n"])
def test_title_problem(title: str) -> None:
    assert title_problem(title) is not None


@pytest.mark.parametrize("title", ["A title", "Ünïcode – with dashes", "x" * 200])
def test_one_line_titles_are_fine(title: str) -> None:
    assert title_problem(title) is None


def test_config_edit_refuses_a_title_of_two_lines(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "new", "--template", "game-studio", "--id", "game"]) == ExitCode.OK
    capsys.readouterr()
    assert main(["config", "edit", "game", "--set-title", "a\nb"]) == ExitCode.INPUT
    err = capsys.readouterr().err.strip()
    assert err == "studio: error: --set-title: a title must be one line (it has a line break)"
    assert main(["config", "history", "game"]) == ExitCode.OK
    assert len(capsys.readouterr().out.strip().splitlines()) == 2  # header and version 1: nothing was saved
    assert main(["config", "edit", "game", "--set-title", "Game studio, reviewed"]) == ExitCode.OK
    capsys.readouterr()
    assert main(["config", "list"]) == ExitCode.OK
    assert "Game studio, reviewed" in capsys.readouterr().out


def test_config_new_refuses_a_title_of_two_lines(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["config", "new", "--template", "game-studio", "--id", "game", "--title", "a\nb"])
    assert code == ExitCode.INPUT
    assert "--title: a title must be one line" in capsys.readouterr().err
    assert main(["config", "list"]) == ExitCode.OK
    assert "no configs" in capsys.readouterr().err


def test_imported_documents_with_a_title_of_two_lines_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "id: two-lines\ntitle: |-\n  first\n  second\nkind: free-form\ntext: Be kind.\n", encoding="utf-8"
    )
    assert main(["config", "validate", str(config)]) == ExitCode.INPUT
    assert f"{config}: title: a title must be one line" in capsys.readouterr().err
    assert main(["config", "import", str(config)]) == ExitCode.INPUT
    assert "nothing imported" in capsys.readouterr().err
    suite = tmp_path / "suite.yaml"
    suite.write_text('id: s\ntitle: "a\\nb"\nprobes:\n  - text: Hello?\n    expected: allowed\n', encoding="utf-8")
    assert main(["suite", "import", str(suite)]) == ExitCode.INPUT
    assert f"{suite}: title: a title must be one line" in capsys.readouterr().err
