"""``studio probe``: streams the reply to stdout, timings to stderr, one-line errors with exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import studio.cli.main as cli
from studio.cli import probe as probe_commands
from studio.core.errors import ExitCode

CONFIG_YAML = """\
format: cosa-studio/config/v1
id: cooking-site
title: Cooking website
kind: free-form
text: |
  You work for a cooking website. Only talk about food and recipes, and keep answers short.
"""


@pytest.fixture(autouse=True)
def probe_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parse with the probe command alone, so these tests exercise only this module."""
    monkeypatch.setattr(cli, "COMMAND_MODULES", [probe_commands])


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.real_model
def test_streams_reply_and_prints_timings(
    embedded_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG_YAML, encoding="utf-8")
    base = ["probe", "--model", str(embedded_model), "--threads", "1", "--config", str(config), "--max-tokens", "16"]
    code, out, err = _run([*base, "What should I cook tonight?"], capsys)
    assert code == ExitCode.OK
    assert out.strip()
    assert "first word after" in err and "tok/s" in err and "prefix cache" in err

    code, json_out, _ = _run([*base, "--json", "What should I cook tonight?"], capsys)
    assert code == ExitCode.OK
    record = json.loads(json_out)
    assert record["text"] == out[:-1]  # the streamed text, without the final newline
    assert record["config_id"] == "cooking-site"
    assert record["completion_tokens"] <= 16
    assert record["cached_tokens"] > 0  # the config prefix was saved to disk by the first run


@pytest.mark.real_model
def test_config_text_and_schema(embedded_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    schema = tmp_path / "schema.json"
    schema.write_text(
        json.dumps({"type": "object", "properties": {"answer": {"type": "boolean"}}, "required": ["answer"]}),
        encoding="utf-8",
    )
    argv = [
        "probe",
        "--model",
        str(embedded_model),
        "--threads",
        "1",
        "--config-text",
        "Yes or no.",
        "--schema",
        str(schema),
    ]
    code, out, _ = _run([*argv, "--max-tokens", "24", "--json", "Is water wet?"], capsys)
    assert code == ExitCode.OK
    assert isinstance(json.loads(json.loads(out)["text"])["answer"], bool)


def test_missing_config_file_is_an_input_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.yaml"
    code, out, err = _run(["probe", "--config", str(missing), "hello"], capsys)
    assert code == ExitCode.INPUT
    assert out == ""
    assert str(missing) in err and len(err.strip().splitlines()) == 1


def test_invalid_schema_names_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    schema = tmp_path / "schema.json"
    schema.write_text('{\n  "type": "object",\n  oops\n}', encoding="utf-8")
    code, _, err = _run(["probe", "--config-text", "x", "--schema", str(schema), "hello"], capsys)
    assert code == ExitCode.INPUT
    assert f"{schema}:3:" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("kind", ["fifo", "missing", "binary"])
def test_a_schema_that_is_no_readable_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    import os

    schema = tmp_path / "schema.json"
    if kind == "fifo":
        os.mkfifo(schema)  # reading it would wait for a writer forever
    elif kind == "binary":
        schema.write_bytes(b"\x00\x01{}")
    code, _, err = _run(["probe", "--config-text", "x", "--schema", str(schema), "hello"], capsys)
    assert code == ExitCode.INPUT
    assert str(schema) in err and len(err.strip().splitlines()) == 1


def test_model_that_is_not_gguf_is_an_input_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"not a model at all" * 10)
    code, _, err = _run(["probe", "--model", str(fake), "hello"], capsys)
    assert code == ExitCode.INPUT
    assert str(fake) in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("argv", [["--gpu", "sometimes"], ["--config", "a.yaml", "--config-text", "b"]])
def test_bad_arguments_are_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["probe", *argv, "hello"])
    assert exited.value.code == ExitCode.USAGE
    capsys.readouterr()


def test_blank_prompt_is_rejected(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(["probe", "--config-text", "x", "   "], capsys)
    assert code == ExitCode.INPUT
    assert "prompt" in err
