"""bench.bench_audit at a tiny size: it prints a figure per log size with its ratio, finds the log intact, and
refuses bad arguments with a usage error."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import bench_audit


def test_prints_a_figure_per_log_size(
    studio_home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tempfile.mkdtemp", lambda prefix="": str(studio_home))
    assert bench_audit.main(["--rows", "3,8", "--writes", "2"]) == 0
    out = capsys.readouterr().out
    for rows in (3, 8):
        assert f"{rows:7d} rows: a save " in out
    assert out.count("x); `audit verify`") == 2
    assert "problem" not in out


@pytest.mark.parametrize("argv", [["--rows", "a"], ["--rows", "0"], ["--writes", "0"], ["--writes", "101"]])
def test_bad_arguments_are_a_usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        bench_audit.main(argv)
    assert stop.value.code == 2
    assert "error:" in capsys.readouterr().err
