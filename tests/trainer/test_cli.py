"""The ``studio-train`` command line: light imports, JSON-lines progress, one-line errors with exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from studio.core.errors import ExitCode
from studio.trainer.cli import main


def _events(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines()]


def test_importing_the_trainer_does_not_import_the_training_stack() -> None:
    code = (
        "import sys, studio.trainer.cli, studio.trainer.train, studio.trainer.export, studio.trainer.evaluate\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'trl', 'peft', 'accelerate', 'PySide6') "
        "if m in sys.modules)\n"
        "print(','.join(heavy))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == ""


def test_synthesize_with_the_fake_backend(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "pairs.jsonl"
    code = main(["synthesize", "--fake", "--out", str(out), "--limit-prompts", "5", "--responses", "4"])
    captured = capsys.readouterr()
    assert code == 0
    events = _events(captured.out)
    assert events[0]["event"] == "start" and events[-1]["event"] == "done"
    assert events[-1]["pairs"] == len(out.read_text().splitlines())
    assert {e["event"] for e in events} <= {"start", "progress", "done", "log"}


def test_bad_pairs_file_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "pairs.jsonl"
    data.write_text('{"prompt": "p", "chosen": "c"}\n')
    code = main(["dpo", "--base", "x.gguf", "--data", str(data), "--output", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert code == ExitCode.INPUT
    assert captured.err == f"studio-train: error: {data}:1: field 'rejected' must be a non-empty string\n"
    assert _events(captured.out)[-1] == {
        "event": "error",
        "t": _events(captured.out)[-1]["t"],
        "message": f"{data}:1: field 'rejected' must be a non-empty string",
        "exit_code": 3,
    }


def test_missing_job_fields_are_reported(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sft", "--base", "x.gguf"]) == ExitCode.INPUT
    assert "data is required" in capsys.readouterr().err


def test_import_writes_pairs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "in.jsonl"
    row = {"system_prompt": "s", "prompt": "p", "chosen_response": "c", "rejected_response": "r"}
    source.write_text(json.dumps(row) + "\n")
    out = tmp_path / "pairs.jsonl"
    assert main(["import", str(source), "--out", str(out)]) == 0
    (written,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert (written["system"], written["chosen"], written["id"]) == ("s", "c", "import-000000")
    assert _events(capsys.readouterr().out)[-1]["pairs"] == 1


def test_unknown_quantisation_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["export", str(tmp_path), "--out", str(tmp_path / "o"), "--name", "n", "--quant", "q3"])
    assert code == ExitCode.INPUT
    assert "unknown quantisation 'q3'" in capsys.readouterr().err


def test_progress_lines_and_silenced_workers() -> None:
    import io

    from studio.trainer.progress import Progress

    stream = io.StringIO()
    progress = Progress(stream)
    progress.progress("generate", 0, 4)
    progress.progress("generate", 2, 4)
    first, second = _events(stream.getvalue())
    assert (first["event"], first["done"], first["eta_s"]) == ("progress", 0, None)
    assert second["eta_s"] is not None and second["eta_s"] >= 0
    quiet = io.StringIO()
    Progress(quiet, enabled=False).emit("done", command="x")
    assert quiet.getvalue() == ""


def test_prompt_category_labeler_with_written_refusals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "pairs.jsonl"
    argv = ["synthesize", "--fake", "--out", str(out), "--limit-prompts", "2", "--responses", "2"]
    assert main([*argv, "--labeler", "prompt-categories", "--written-refusals"]) == 0
    events = _events(capsys.readouterr().out)
    assert events[0]["labeler"] == "prompt-categories"
    # Two fake replies per prompt, each paired with the prompt's written refusal under every training config.
    assert events[-1]["responses"] == 6 and events[-1]["pairs"] == len(out.read_text().splitlines()) > 0


def test_prompt_category_labeler_refuses_a_judge(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["synthesize", "--fake", "--out", str(tmp_path / "p.jsonl"), "--labeler", "prompt-categories"]
    assert main([*argv, "--addressed-by", "judge"]) == ExitCode.INPUT
    assert capsys.readouterr().err == (
        "studio-train: error: <input> (--addressed-by): the prompt-categories labeler uses refusal markers\n"
    )
    assert not (tmp_path / "p.jsonl").exists()
