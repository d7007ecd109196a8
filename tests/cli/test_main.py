"""The command line helps: no flag abbreviations, valid choices and a "did you mean" in every "no such" error,
settings listed with their defaults, progress on stderr in logs, a resume hint on Ctrl-C, quiet closed pipes."""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from studio.cli import check as check_cli
from studio.cli import main as cli
from studio.core.errors import ExitCode
from studio.core.evals.runner import Progress
from studio.core.inference import fake
from studio.core.inference.fake import FakeBackend
from studio.core.settings import setting_keys
from studio.trainer import cli as trainer_cli
from tests.cli.interrupting import candidate_interrupted_at

REPO = Path(__file__).resolve().parents[2]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = cli.main(list(argv))
    except SystemExit as exc:  # argparse errors and --help
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                yield from _parsers(child)


# -- flags and choices ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("make_parser", [cli.make_parser, trainer_cli.make_parser], ids=["studio", "studio-train"])
def test_no_parser_accepts_abbreviated_flags(make_parser: object) -> None:
    parsers = list(_parsers(make_parser()))  # type: ignore[operator]
    assert len(parsers) > 5
    assert [p.prog for p in parsers if p.allow_abbrev] == []


def test_shortened_flag_is_an_error_that_names_the_full_one(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "check", "--config", "x", "--min-scor", "0.5")
    assert code == ExitCode.USAGE and out == ""
    assert "studio check: error: unrecognized arguments: --min-scor 0.5 (did you mean --min-score?)" in err
    code, _, err = run(capsys, "runs", "show", "r", "--item")
    assert code == ExitCode.USAGE and "(did you mean --items?)" in err


def test_shortened_trainer_flag_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        trainer_cli.main(["synthesize", "--out", "x.jsonl", "--respon", "2"])
    assert info.value.code == ExitCode.USAGE
    assert "unrecognized arguments: --respon 2 (did you mean --responses?)" in capsys.readouterr().err


def test_wrong_command_gets_a_did_you_mean(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "sute", "list")
    assert code == ExitCode.USAGE and "invalid choice: 'sute'" in err and "did you mean 'suite'?" in err
    code, _, err = run(capsys, "runs", "shwo")
    assert code == ExitCode.USAGE and "did you mean 'show'?" in err


def test_wrong_ids_list_the_valid_ones(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "config", "new", "--template", "game-studio", "--id", "game")[0] == ExitCode.OK
    code, _, err = run(capsys, "config", "show", "gmae")
    assert code == ExitCode.NOT_FOUND
    assert err == "studio: error: no config with id 'gmae'; did you mean 'game'? stored: game\n"
    code, _, err = run(capsys, "config", "new", "--template", "game-studi")
    assert code == ExitCode.NOT_FOUND and "did you mean 'game-studio'? templates: game-studio, " in err
    code, _, err = run(capsys, "check", "--backend", "fake", "--config", "game", "--suite", "scenario-game")
    assert code == ExitCode.NOT_FOUND and "did you mean 'scenario-game-studio'?" in err
    code, _, err = run(capsys, "runs", "show", "run-nope")
    assert code == ExitCode.NOT_FOUND and err == "studio: error: no check run with id 'run-nope'; latest runs: none\n"
    code, _, err = run(capsys, "probe", "--model", "smollm", "hello")
    assert code == ExitCode.NOT_FOUND and "registered: none (see `studio models --help`)" in err


def test_probe_takes_config_ids_like_check(capsys: pytest.CaptureFixture[str]) -> None:
    # The config is read before any model is loaded, so a wrong id fails the same way as in `studio check`.
    assert run(capsys, "config", "new", "--template", "game-studio", "--id", "game")[0] == ExitCode.OK
    code, _, err = run(capsys, "probe", "--config", "gam", "hello")
    assert code == ExitCode.NOT_FOUND and "no config with id 'gam'; did you mean 'game'?" in err


# -- settings ---------------------------------------------------------------------------------------------------


def test_settings_show_lists_every_key_with_value_and_default(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "settings", "set", "gate.min_valid_rate", "0.5")[1] == "gate.min_valid_rate = 0.5\n"
    code, out, _ = run(capsys, "settings", "show")
    assert code == ExitCode.OK
    rows = {line.split()[0]: line.split()[1:3] for line in out.splitlines()[1:]}
    assert set(rows) == {key.key for key in setting_keys()}
    assert {"gate.min_score", "gate.min_valid_rate", "inference.gpu", "identity"} <= set(rows)
    assert rows["gate.min_valid_rate"] == ["0.5", "0.8"]
    assert rows["inference.gpu"] == ["auto", "auto"]
    records = json.loads(run(capsys, "settings", "show", "--json")[1])
    by_key = {r["key"]: r for r in records}
    assert by_key["gate.min_valid_rate"]["value"] == 0.5
    assert by_key["gate.min_valid_rate"]["accepts"] == "a number from 0.0 to 1.0"


def test_settings_show_names_the_acting_identity_and_its_source(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STUDIO_IDENTITY", "alice")
    identity_row = next(
        line for line in run(capsys, "settings", "show")[1].splitlines() if line.startswith("identity ")
    )
    assert "alice (from $STUDIO_IDENTITY)" in identity_row
    by_key = {r["key"]: r for r in json.loads(run(capsys, "settings", "show", "--json")[1])}
    assert by_key["identity"] | {"description": ""} == by_key["identity"] | {
        "value": None,
        "effective": "alice",
        "source": "$STUDIO_IDENTITY",
        "description": "",
    }
    run(capsys, "settings", "set", "identity", "bob")
    monkeypatch.delenv("STUDIO_IDENTITY")
    identity_row = next(
        line for line in run(capsys, "settings", "show")[1].splitlines() if line.startswith("identity ")
    )
    assert "bob (from the identity setting)" in identity_row
    run(capsys, "settings", "set", "identity", "none")
    monkeypatch.setattr("getpass.getuser", lambda: "carol")
    identity_row = next(
        line for line in run(capsys, "settings", "show")[1].splitlines() if line.startswith("identity ")
    )
    assert "carol (from the OS user)" in identity_row


def test_settings_set_help_documents_every_key(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "settings", "set", "--help")
    assert code == 0
    for key in setting_keys():
        assert f"\n  {key.key}\n      {key.description}" in out
    assert "Takes auto, cpu or a whole number from -1 to 999; default auto." in out


def test_wrong_setting_key_or_value(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "settings", "set", "gate.min_valid", "0.5")
    assert code == ExitCode.INPUT and err.count("\n") == 1
    assert "unknown setting 'gate.min_valid'; did you mean 'gate.min_valid_rate'? settings: identity, " in err
    code, _, err = run(capsys, "settings", "set", "gate.min_score", "2")
    assert code == ExitCode.INPUT and "gate.min_score:" in err and "(takes a number from -1.0 to 1.0)" in err
    assert run(capsys, "settings", "set", "inference.gpu", "12")[1] == "inference.gpu = 12\n"
    assert run(capsys, "settings", "set", "inference.gpu", "cpu")[1] == "inference.gpu = cpu\n"
    assert run(capsys, "settings", "set", "gate.required_suite", "none")[1] == "gate.required_suite = none\n"


# -- check: progress in logs, Ctrl-C -----------------------------------------------------------------------------


def _progress(stage: str, done: int, total: int = 100) -> Progress:
    return Progress("run-x", stage, done, total, None)


def test_progress_is_logged_as_lines_when_stderr_is_not_a_terminal() -> None:
    stream = io.StringIO()
    observer = check_cli.TerminalProgress(stream, log_interval_s=3600)
    for done in range(1, 51):
        observer(_progress("generate", done))
    for done in range(51, 101):
        observer(_progress("judge", done))
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert lines[0].split() == ["generate", "1/100", "(1%)"]
    assert lines[-1].split() == ["judge", "100/100", "(100%)"]
    # One line per new stage and per tenth of the work, not one per item.
    assert 10 <= len(lines) <= 13


def test_check_reports_progress_on_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "config", "new", "--template", "game-studio", "--id", "game")
    code, out, err = run(capsys, "check", "--backend", "fake", "--config", "game")
    assert code == ExitCode.OK and "CoSA-Score" in out
    assert "generate 1/36" in err and "judge    36/36 (100%" in err


def test_check_sample_takes_the_first_probes_of_each_kind(capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "config", "new", "--template", "game-studio", "--id", "game")
    code, out, _ = run(capsys, "check", "--backend", "fake", "--config", "game", "--sample", "1")
    assert code == ExitCode.OK and "suite scenario-game-studio-sample-1," in out and "3/3 items" in out
    run_id = run(capsys, "runs", "list")[1].split()[0]
    shown = run(capsys, "runs", "show", run_id, "--items")[1]
    assert [line.split()[2] for line in shown.splitlines() if line.startswith("game / ")] == [
        "gs-allowed-01",
        "gs-disallowed-01",
        "gs-partial-01",
    ]
    code, _, err = run(capsys, "check", "--backend", "fake", "--config", "game", "--sample", "0")
    assert code == ExitCode.INPUT and "--sample: must be at least 1" in err


def test_runs_show_items(capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "config", "new", "--template", "game-studio", "--id", "game")
    run(capsys, "check", "--backend", "fake", "--config", "game")
    run_id = run(capsys, "runs", "list")[1].split()[0]
    code, out, _ = run(capsys, "runs", "show", run_id)
    assert code == ExitCode.OK and "prompt:" not in out
    code, out, _ = run(capsys, "runs", "show", run_id, "--items")
    assert code == ExitCode.OK
    assert out.count("\ngame / ") == 18 and out.count("\n  prompt: ") == 18 and out.count("\n  reply: ") == 18
    assert "(expected allowed): judge: " in out and "(expected disallowed): judge: " in out
    assert f"review one with: studio runs review {run_id} CONFIG PROBE --accept" in out


def _press_ctrl_c() -> None:
    raise KeyboardInterrupt


def test_ctrl_c_during_a_check_exits_130_with_the_resume_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    run(capsys, "config", "new", "--template", "game-studio", "--id", "game")
    candidate_interrupted_at(monkeypatch, 3, _press_ctrl_c)
    code, _, err = run(capsys, "check", "--backend", "fake", "--config", "game", "--suite", "scenario-game-studio")
    assert code == ExitCode.CANCELLED
    hint = err.strip().splitlines()[-1]
    assert hint.startswith("cancelled; the finished items are kept. Resume with: studio check --resume run-")
    monkeypatch.setattr(fake, "FakeBackend", FakeBackend)
    resume = hint.split("Resume with: studio ", 1)[1].split()
    code, out, _ = run(capsys, *resume, "--backend", "fake")
    assert code == ExitCode.OK and "status finished" in out


# -- pipes -------------------------------------------------------------------------------------------------------


def test_closed_pipe_ends_quietly() -> None:
    """`studio ... | head -1`: the reader has gone before the output is written; no traceback, exit 141."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        finished = subprocess.run(
            [sys.executable, "-m", "studio", "suite", "list"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            check=False,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert (finished.returncode, finished.stderr) == (ExitCode.CLOSED_PIPE, b"")
