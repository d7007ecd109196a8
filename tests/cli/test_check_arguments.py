"""`studio check` checks every argument before it opens a document, the store or a model, and a SIGTERM (a CI job
cancelled, `kill`) leaves a cancelled, resumable run as Ctrl-C does, never one that stays `running`."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from studio.cli import check as check_cli
from studio.cli.main import main
from studio.core.errors import ExitCode
from studio.core.inference import fake
from studio.core.inference.fake import FakeBackend
from studio.core.paths import database_path
from studio.core.settings import settings_path
from tests.cli.interrupting import candidate_interrupted_at
from tests.cli.test_check import _documents


@pytest.fixture
def no_models(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if the command gets as far as opening a model."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a model was opened before the arguments were checked")

    monkeypatch.setattr(check_cli, "open_models", refuse)


def _refused(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == ExitCode.INPUT
    err = capsys.readouterr().err.strip()
    assert err.startswith("studio: error: ") and "\n" not in err and "Traceback" not in err
    return err


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--min-score", "5"], "--min-score: must be a number from -1 to 1"),
        (["--min-score", "1.01"], "--min-score: must be a number from -1 to 1"),
        (["--min-score", "nan"], "--min-score: must be a number from -1 to 1"),
        (["--min-valid-rate", "7"], "--min-valid-rate: must be a number from 0 to 1"),
        (["--min-valid-rate", "-0.1"], "--min-valid-rate: must be a number from 0 to 1"),
        (["--max-tokens", "-5"], "--max-tokens: must be at least 1, got -5"),
        (["--max-tokens", "0"], "--max-tokens: must be at least 1, got 0"),
        (["--judge-max-tokens", "0"], "--judge-max-tokens: must be at least 1"),
        (["--temperature", "nan"], "--temperature: must be a number from 0 to 2"),
        (["--temperature", "inf"], "--temperature: must be a number from 0 to 2"),
        (["--temperature", "-1"], "--temperature: must be a number from 0 to 2"),
        (["--seed", "-1"], "--seed: must be at least 0"),
        (["--seed", str(2**40)], "--seed: must be at most"),
        (["--sample", "0"], "--sample: must be at least 1"),
        (["--threads", "0"], "--threads: must be at least 1"),
        (["--n-ctx", "5"], "--n-ctx: must be at least 256"),
        (["--gpu", "99999999999999999999"], "--gpu: must be at most"),
        (["--label", "two\nlines"], "--label: must be one line"),
    ],
)
def test_bad_numbers_are_refused_before_any_model_is_opened(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_models: None, extra: list[str], expected: str
) -> None:
    config, suite = _documents(tmp_path)
    err = _refused(capsys, ["check", "--backend", "fake", "--config", str(config), "--suite", str(suite), *extra])
    assert expected in err


def test_the_whole_score_range_is_accepted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config, suite = _documents(tmp_path)
    argv = ["check", "--backend", "fake", "--config", str(config), "--suite", str(suite)]
    assert main([*argv, "--min-score", "-1", "--min-valid-rate", "0", "--temperature", "2"]) == ExitCode.OK
    assert main([*argv, "--min-score", "1", "--min-valid-rate", "1", "--gpu", "0"]) != ExitCode.INPUT
    assert "studio: error" not in capsys.readouterr().err


def test_bad_output_paths_are_refused_before_any_model_is_opened(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_models: None
) -> None:
    config, suite = _documents(tmp_path)
    argv = ["check", "--backend", "fake", "--config", str(config), "--suite", str(suite)]
    folder = tmp_path / "folder"
    folder.mkdir()
    err = _refused(capsys, [*argv, "--junit", str(folder)])
    assert f"{folder} (--junit): is a directory" in err
    err = _refused(capsys, [*argv, "--json", str(tmp_path / "missing" / "run.json")])
    assert "(--json): the folder" in err and "does not exist" in err
    err = _refused(capsys, [*argv, "--json", str(folder)])
    assert "(--json)" in err
    err = _refused(capsys, [*argv, "--junit", str(config)])
    assert f"{config} (--junit): is also an input" in err
    err = _refused(capsys, [*argv, "--junit", str(database_path())])
    assert "(--junit): is also an input" in err
    same = tmp_path / "report.json"
    err = _refused(capsys, [*argv, "--json", str(same), "--junit", str(same)])
    assert "(--junit): is also the --json file" in err
    err = _refused(capsys, [*argv, "--json", str(tmp_path / "run.txt")])
    assert "(--json): name the export file .json or .csv" in err
    assert not same.exists() and config.read_text(encoding="utf-8").startswith("format:")


def test_resume_with_a_new_config_is_refused(capsys: pytest.CaptureFixture[str], no_models: None) -> None:
    err = _refused(capsys, ["check", "--backend", "fake", "--resume", "run-x", "--config", "game"])
    assert "--resume: a resumed run keeps its own configs and suite; drop --config" in err


def test_a_damaged_settings_file_stops_the_check_before_it_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_models: None
) -> None:
    config, suite = _documents(tmp_path)
    settings_path().write_text("gate:\n  min_score: 7\n", encoding="utf-8")
    err = _refused(capsys, ["check", "--backend", "fake", "--config", str(config), "--suite", str(suite)])
    assert f"{settings_path()}:2" in err


# -- SIGTERM -----------------------------------------------------------------------------------------------------


def _send_sigterm() -> None:
    os.kill(os.getpid(), signal.SIGTERM)


@pytest.fixture
def sigterm_recorded() -> Iterator[list[int]]:
    """A SIGTERM handler that only records the signal, standing for the default one (which would end pytest):
    a check that does not handle SIGTERM itself runs on to the end. It must be in place again afterwards."""
    received: list[int] = []

    def record(signum: int, frame: FrameType | None) -> None:
        received.append(signum)

    previous = signal.signal(signal.SIGTERM, record)
    try:
        yield received
        assert signal.getsignal(signal.SIGTERM) is record, "the check did not restore the SIGTERM handler"
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run_status(run_id: str) -> str:
    from studio.core.store.db import open_database
    from studio.core.store.runs import RunStore

    db = open_database(database_path())
    try:
        return RunStore(db).get_run(run_id).status.value
    finally:
        db.close()


def _resume_argv(err: str) -> list[str]:
    hint = err.strip().splitlines()[-1]
    assert hint.startswith("cancelled; the finished items are kept. Resume with: studio check --resume run-")
    return hint.split("Resume with: studio ", 1)[1].split()


def test_sigterm_during_generation_cancels_the_run_like_ctrl_c(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    sigterm_recorded: list[int],
) -> None:
    config, suite = _documents(tmp_path)
    candidate_interrupted_at(monkeypatch, 3, _send_sigterm)
    code = main(["check", "--backend", "fake", "--config", str(config), "--suite", str(suite)])
    err = capsys.readouterr().err
    assert code == ExitCode.CANCELLED
    assert sigterm_recorded == []  # the check's own handler took it
    resume = _resume_argv(err)
    assert _run_status(resume[2]) == "cancelled"
    monkeypatch.setattr(fake, "FakeBackend", FakeBackend)
    assert main([*resume, "--backend", "fake"]) == ExitCode.OK
    assert _run_status(resume[2]) == "finished"


def test_sigterm_between_two_events_cancels_the_run(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    sigterm_recorded: list[int],
) -> None:
    """The signal arrives while the command shows progress, outside the runner: the run is still marked."""
    config, suite = _documents(tmp_path)
    shown = check_cli.TerminalProgress.__call__

    def show_then_terminate(self: check_cli.TerminalProgress, event: Any) -> None:
        shown(self, event)
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(check_cli.TerminalProgress, "__call__", show_then_terminate)
    code = main(["check", "--backend", "fake", "--config", str(config), "--suite", str(suite)])
    assert code == ExitCode.CANCELLED
    resume = _resume_argv(capsys.readouterr().err)
    assert _run_status(resume[2]) == "cancelled"
