"""`studio import-benchmark SOURCE`: a mistyped local path is "no such file", never a Hub download, even when it
has the owner/name shape of a Hub dataset id; a bare file without a split name is refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from studio.cli import benchmark
from studio.cli.main import main
from studio.core.errors import ExitCode
from studio.core.inference import hub


@pytest.fixture
def no_hub(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record (and refuse) every Hub download the command would start."""
    asked: list[str] = []

    def download(repo_id: str, *args: Any, **kwargs: Any) -> list[Path]:
        asked.append(repo_id)
        raise AssertionError(f"{repo_id} was looked up on the Hub")

    monkeypatch.setattr(hub, "download_dataset", download)
    return asked


@pytest.mark.parametrize(
    "source", ["data/Violence.jsonl", "data/Violence.csv", "data/train.parquet", "./data/x", "../data/x", "/no/x"]
)
def test_a_missing_file_is_never_taken_for_a_hub_dataset(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    no_hub: list[str],
    source: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["import-benchmark", "cosalign-test", source, "--dry-run"]) == ExitCode.INPUT
    err = capsys.readouterr().err.strip()
    assert err.endswith(": no such file") and "\n" not in err and "Hub" not in err
    assert no_hub == []


def test_a_missing_file_in_an_existing_folder_is_no_such_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], no_hub: list[str]
) -> None:
    (tmp_path / "data").mkdir()
    monkeypatch.chdir(tmp_path)
    assert main(["import-benchmark", "cosalign-test", "data/Violence", "--dry-run"]) == ExitCode.INPUT
    assert "data/Violence: no such file" in capsys.readouterr().err
    assert main(["import-benchmark", "cosalign-test", "data", "--dry-run"]) == ExitCode.INPUT
    assert "data: is a directory" in capsys.readouterr().err
    assert no_hub == []


def test_every_local_source_is_checked_before_anything_is_fetched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], no_hub: list[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    argv = ["import-benchmark", "cosapien", "microsoft/CoSApien", "data/Violence.jsonl", "--dry-run"]
    assert main(argv) == ExitCode.INPUT
    assert "data/Violence.jsonl: no such file" in capsys.readouterr().err
    assert no_hub == []


def test_a_hub_dataset_id_is_still_one() -> None:
    for source in ("microsoft/CoSApien", "tiny-org/CoSApien-mini", "org/data.v2"):
        assert not benchmark.looks_like_path(source), source
    for source in ("data/Violence.jsonl", "./x", "../x", "/x/y", "~/x", "a\\b"):
        assert benchmark.looks_like_path(source), source


def test_a_bare_file_without_a_split_name_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [{"prompt": "Describe a sword fight.", "situation": "situation 1"}]
    (tmp_path / "nosplit.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert main(["import-benchmark", "cosalign-test", "nosplit.jsonl", "--dry-run"]) == ExitCode.INPUT
    err = capsys.readouterr().err
    assert "nosplit.jsonl:1: no split name" in err
    assert main(["import-benchmark", "cosalign-test", "nosplit.jsonl", "--split", "safe", "--dry-run"]) == 0
    assert "cosalign-safe" in capsys.readouterr().out
