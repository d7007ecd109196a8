from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from studio.ui.context import AppContext
from studio.ui.train_pane import DATA_EXCHANGES, DATA_FILE, JobFields, TrainPane, pipeline, produced_gguf
from tests.core.test_gguf import STRING, UINT32, build_gguf

PROCESS_TIMEOUT_MS = 30_000

#: A stand-in for ``studio-train``: prints JSON lines like the real one and writes the files it names.
FAKE_TRAINER = r"""
import json, os, sys, time
command = sys.argv[1]
args = sys.argv[2:]
def emit(event, **fields):
    print(json.dumps({"event": event, "t": 0.0, **fields}), flush=True)
def flag(name):
    return args[args.index(name) + 1]
emit("start", command=command)
if command == "import":
    with open(flag("--out"), "w") as handle:
        handle.write('{"prompt": "p", "chosen": "a", "rejected": "b"}\n')
    emit("done", command="import", pairs=1, out_path=flag("--out"))
elif command in ("dpo", "sft"):
    steps = int(flag("--max-steps"))
    delay = float(os.environ.get("FAKE_STEP_DELAY", "0"))
    for step in range(1, steps + 1):
        time.sleep(delay)
        emit("step", stage=command, step=step, total=steps, epoch=0.1 * step, loss=1.0 / step,
             reward_margin=0.1 * step, eta_s=float(steps - step))
    print("some plain text from a library", flush=True)
    emit("done", command=command, model=flag("--output") + "/model", steps=steps)
elif command == "export":
    if os.environ.get("FAKE_EXPORT_FAIL"):
        print("studio-train: error: conversion failed", file=sys.stderr, flush=True)
        emit("error", message="conversion failed", exit_code=6)
        sys.exit(6)
    target = os.path.join(flag("--out"), flag("--name") + "-q8_0.gguf")
    os.makedirs(flag("--out"), exist_ok=True)
    with open(os.environ["FAKE_GGUF_SOURCE"], "rb") as source, open(target, "wb") as handle:
        handle.write(source.read())
    emit("done", command="export", gguf=target)
"""


@pytest.fixture
def trainer_script(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    script = tmp_path / "fake_trainer.py"
    script.write_text(FAKE_TRAINER, encoding="utf-8")
    gguf = tmp_path / "source.gguf"
    meta = [("general.architecture", STRING, "llama"), ("llama.context_length", UINT32, 2048)]
    gguf.write_bytes(build_gguf(meta))
    monkeypatch.setenv("FAKE_GGUF_SOURCE", str(gguf))
    return script


@pytest.fixture
def base_model(ctx: AppContext, tmp_path: Path) -> str:
    path = tmp_path / "base.gguf"
    path.write_bytes(build_gguf([("general.architecture", STRING, "llama"), ("llama.context_length", UINT32, 512)]))
    return ctx.registry.add(path).name


def _pane(qtbot: QtBot, ctx: AppContext, script: Path) -> TrainPane:
    pane = TrainPane(ctx, trainer=(sys.executable, str(script)))
    qtbot.addWidget(pane)
    return pane


def test_training_runs_the_pipeline_draws_loss_and_registers_the_model(
    qtbot: QtBot, ctx: AppContext, trainer_script: Path, base_model: str
) -> None:
    pane = _pane(qtbot, ctx, trainer_script)
    pane.steps_spin.setValue(5)
    pane.rank_spin.setValue(4)
    pane.name_edit.setText("tuned")
    with qtbot.waitSignal(pane.finished, timeout=PROCESS_TIMEOUT_MS) as finished:
        assert pane.start()
        assert not pane.start()  # one job at a time
    assert finished.args == ["done"], pane.last_error
    assert [s.name for s in pane.stages] == ["import", "dpo", "export"]
    assert pane.losses == [1.0, 0.5, 1 / 3, 0.25, 0.2]
    assert pane.loss_chart.values() == pane.losses
    assert pane.progress_bar.value() == pane.progress_bar.maximum()
    assert "some plain text from a library" in pane.log_view.toPlainText()
    assert {m.name for m in ctx.registry.list()} == {base_model, "tuned-q8_0"}
    assert ctx.registry.get("tuned-q8_0").path.parent.parent == pane.work_dir
    assert pane.base_combo.count() == 2
    assert not pane.running and pane.start_button.isEnabled()


def test_cancel_terminates_the_trainer_and_registers_nothing(
    qtbot: QtBot,
    ctx: AppContext,
    trainer_script: Path,
    base_model: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FAKE_STEP_DELAY", "0.2")
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text('{"prompt": "p", "chosen": "a", "rejected": "b"}\n', encoding="utf-8")
    pane = _pane(qtbot, ctx, trainer_script)
    pane.data_combo.setCurrentIndex(pane.data_combo.findData(DATA_FILE))
    pane.file_edit.setText(str(pairs))
    pane.steps_spin.setValue(500)
    assert pane.start()
    assert [s.name for s in pane.stages] == ["dpo", "export"]
    qtbot.waitUntil(lambda: len(pane.losses) >= 1, timeout=PROCESS_TIMEOUT_MS)
    with qtbot.waitSignal(pane.finished, timeout=PROCESS_TIMEOUT_MS) as finished:
        pane.cancel()
    assert finished.args == ["cancelled"]
    assert len(pane.losses) < 500
    assert [m.name for m in ctx.registry.list()] == [base_model]
    assert pane.status_label.text() == "Training cancelled"


def test_a_failing_stage_reports_the_trainers_error(
    qtbot: QtBot,
    ctx: AppContext,
    trainer_script: Path,
    base_model: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FAKE_EXPORT_FAIL", "1")
    pane = _pane(qtbot, ctx, trainer_script)
    pane.steps_spin.setValue(2)
    with qtbot.waitSignal(pane.message, timeout=PROCESS_TIMEOUT_MS) as message:
        assert pane.start()
    assert pane.state == "failed"
    assert message.args[0] == "Training failed: conversion failed"
    assert [m.name for m in ctx.registry.list()] == [base_model]


def test_form_problems_are_one_line_messages(qtbot: QtBot, ctx: AppContext, trainer_script: Path) -> None:
    pane = _pane(qtbot, ctx, trainer_script)
    with qtbot.waitSignal(pane.message) as message:
        assert not pane.start()
    assert message.args[0] == "Cannot start training: register a base model first (Models pane)"


def test_pipeline_and_result_parsing(tmp_path: Path) -> None:
    job = JobFields(DATA_EXCHANGES, None, "game-studio", tmp_path / "b.gguf", "sft", 7, 1e-4, 8, "m")
    stages = pipeline(job, tmp_path)
    assert stages[0].args == (
        "import",
        "--exchanges",
        "--out",
        str(tmp_path / "pairs.jsonl"),
        "--config-id",
        "game-studio",
    )
    train = stages[1].args
    assert train[0] == "sft" and train[train.index("--max-steps") + 1] == "7"
    assert train[train.index("--lora-r") + 1] == "8" and train[train.index("--learning-rate") + 1] == "0.0001"
    assert stages[2].args[:2] == ("export", str(tmp_path / "trained"))

    assert produced_gguf({"event": "done", "gguf": "/x/m.gguf"}) == (Path("/x/m.gguf"), False)
    done = json.loads('{"event": "done", "files": {"f16": "/x/f16.gguf", "q8_0": "/x/q8.gguf"}, "registered": ["m"]}')
    assert produced_gguf(done) == (Path("/x/q8.gguf"), True)
    assert produced_gguf({"event": "done"}) == (None, False)
