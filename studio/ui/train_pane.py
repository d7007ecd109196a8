"""The Train pane: hand marked exchanges or a pairs file to ``studio-train`` and watch it work.

The trainer runs as a subprocess (QProcess), never in this process: the GUI does not import torch. It reads the
trainer's JSON-lines progress (see :mod:`studio.trainer.progress`), draws the loss curve, can cancel (terminate,
then kill), and registers the exported GGUF in the model registry when the last stage is done.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import StudioError
from studio.ui.availability import offer
from studio.ui.charts import LineChart
from studio.ui.context import AppContext
from studio.ui.workers import DEFAULT_TRAINER, TrainerProcess

DATA_EXCHANGES = "exchanges"
DATA_FILE = "file"


@dataclass(frozen=True)
class Stage:
    """One trainer command of the pipeline."""

    name: str
    args: tuple[str, ...]


@dataclass(frozen=True)
class JobFields:
    """What the form says: data, base model, stage and the few knobs worth turning."""

    data: str  # DATA_EXCHANGES or DATA_FILE
    data_file: Path | None
    config_id: str | None
    base: Path
    method_stage: str  # "dpo" or "sft"
    steps: int
    learning_rate: float
    lora_rank: int
    name: str


def pipeline(job: JobFields, work: Path) -> list[Stage]:
    """The trainer commands for a job: import the exchanges (when chosen), train, export to GGUF and register."""
    stages: list[Stage] = []
    data = job.data_file
    if job.data == DATA_EXCHANGES:
        data = work / "pairs.jsonl"
        args = ["import", "--exchanges", "--out", str(data)]
        if job.config_id:
            args += ["--config-id", job.config_id]
        stages.append(Stage("import", tuple(args)))
    if data is None:
        raise ValueError("choose a pairs file")
    stages.append(
        Stage(
            job.method_stage,
            (
                job.method_stage,
                "--base",
                str(job.base),
                "--data",
                str(data),
                "--output",
                str(work / "trained"),
                "--method",
                "lora",
                "--max-steps",
                str(job.steps),
                "--learning-rate",
                f"{job.learning_rate:g}",
                "--lora-r",
                str(job.lora_rank),
            ),
        )
    )
    stages.append(Stage("export", ("export", str(work / "trained"), "--out", str(work / "gguf"), "--name", job.name)))
    return stages


def produced_gguf(done: dict[str, Any]) -> tuple[Path | None, bool]:
    """The GGUF a final ``done`` line names, and whether the trainer already registered it."""
    if done.get("gguf"):
        return Path(str(done["gguf"])), bool(done.get("registered"))
    files = done.get("files")
    if isinstance(files, dict) and files:
        chosen = files.get("q8_0") or files.get("f16") or next(iter(files.values()))
        return Path(str(chosen)), bool(done.get("registered"))
    return None, False


class TrainPane(QWidget):
    """Launch, follow, cancel and collect a training job."""

    message = Signal(str)
    running_changed = Signal(bool)
    model_registered = Signal(str)
    finished = Signal(str)  # "done", "cancelled" or "failed"

    def __init__(
        self, ctx: AppContext, trainer: Sequence[str] = DEFAULT_TRAINER, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.trainer = tuple(trainer)
        self.process = TrainerProcess(self.trainer, ctx.home, self)
        self.process.line.connect(self.handle_line)
        self.process.error_text.connect(self._on_stderr)
        self.process.ended.connect(self._on_process_ended)
        self.process.failed_to_start.connect(self._on_failed_to_start)
        self.process.killed.connect(lambda: self._log("The trainer did not stop in time; killing it"))
        self.stages: list[Stage] = []
        self.stage_index = 0
        self.work_dir: Path | None = None
        self.last_done: dict[str, Any] = {}
        self.last_error = ""
        self._stderr_tail = ""
        self.losses: list[float] = []
        self.state = "idle"

        self.data_combo = QComboBox()
        self.data_combo.setAccessibleName("Training data")
        self.data_combo.addItem("Marked exchanges (follows / violates marks from the Probe pane)", DATA_EXCHANGES)
        self.data_combo.addItem("Preference pairs file (JSONL)", DATA_FILE)
        self.data_combo.currentIndexChanged.connect(lambda _i: self._update_data_widgets())
        self.file_edit = QLineEdit()
        self.file_edit.setPlaceholderText("pairs.jsonl from studio-train synthesize or import")
        self.file_edit.setAccessibleName("Pairs file")
        self.browse_button = QPushButton("Browse…")
        self.browse_button.clicked.connect(self._browse)
        file_row = QHBoxLayout()
        file_row.addWidget(self.file_edit, 1)
        file_row.addWidget(self.browse_button)
        self.config_combo = QComboBox()
        self.config_combo.setAccessibleName("Exchanges of config")
        self.base_combo = QComboBox()
        self.base_combo.setAccessibleName("Base model")
        self.stage_combo = QComboBox()
        self.stage_combo.setAccessibleName("Training method")
        self.stage_combo.addItem("DPO on preference pairs (LoRA)", "dpo")
        self.stage_combo.addItem("SFT on chosen replies (LoRA)", "sft")
        self.steps_spin = QSpinBox()
        self.steps_spin.setRange(1, 1_000_000)
        self.steps_spin.setValue(50)
        self.steps_spin.setAccessibleName("Steps")
        self.lr_spin = QDoubleSpinBox()
        self.lr_spin.setDecimals(7)
        self.lr_spin.setRange(1e-7, 1e-2)
        self.lr_spin.setSingleStep(1e-5)
        self.lr_spin.setValue(5e-5)
        self.lr_spin.setAccessibleName("Learning rate")
        self.rank_spin = QSpinBox()
        self.rank_spin.setRange(1, 256)
        self.rank_spin.setValue(16)
        self.rank_spin.setAccessibleName("LoRA rank")
        self.name_edit = QLineEdit()
        self.name_edit.setAccessibleName("Name of the trained model")
        self.name_edit.setText("cosalign-lora")

        form = QFormLayout()
        form.addRow("Data:", self.data_combo)
        form.addRow("Pairs file:", file_row)
        form.addRow("Exchanges of:", self.config_combo)
        form.addRow("Base model:", self.base_combo)
        form.addRow("Method:", self.stage_combo)
        form.addRow("Steps:", self.steps_spin)
        form.addRow("Learning rate:", self.lr_spin)
        form.addRow("LoRA rank:", self.rank_spin)
        form.addRow("Model name:", self.name_edit)

        self.start_button = QPushButton("Start training")
        self.start_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.progress_bar = QProgressBar()
        self.progress_bar.setAccessibleName("Training progress")
        self.status_label = QLabel("Idle")
        self.status_label.setAccessibleName("Training status")
        controls = QHBoxLayout()
        controls.addWidget(self.start_button)
        controls.addWidget(self.cancel_button)
        controls.addWidget(self.progress_bar, 1)
        setup = QGroupBox("Training job")
        setup_layout = QVBoxLayout(setup)
        setup_layout.addLayout(form)
        setup_layout.addLayout(controls)
        setup_layout.addWidget(self.status_label)

        self.loss_chart = LineChart("Training loss per step")
        self.loss_chart.setAccessibleName("Loss curve")
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setAccessibleName("Trainer log")
        self.log_view.setMaximumBlockCount(2000)
        output = QSplitter()
        output.addWidget(self.loss_chart)
        output.addWidget(self.log_view)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(setup)
        layout.addWidget(output, 1)
        self.refresh()

    # -- form ------------------------------------------------------------------------------------------------

    def refresh(self) -> None:
        base = self.base_combo.currentData()
        self.base_combo.clear()
        for entry in self.ctx.registry.list():
            self.base_combo.addItem(f"{entry.name} ({entry.architecture})", str(entry.path))
        index = self.base_combo.findData(base)
        if index >= 0:
            self.base_combo.setCurrentIndex(index)
        config = self.config_combo.currentData()
        self.config_combo.clear()
        self.config_combo.addItem("every config", None)
        for stored in self.ctx.store.configs.list():
            self.config_combo.addItem(stored.id, stored.id)
        index = self.config_combo.findData(config)
        if index >= 0:
            self.config_combo.setCurrentIndex(index)
        self._update_data_widgets()
        self._update_buttons()

    def _update_data_widgets(self) -> None:
        from_file = self.data_combo.currentData() == DATA_FILE
        self.file_edit.setEnabled(from_file)
        self.browse_button.setEnabled(from_file)
        self.config_combo.setEnabled(not from_file)

    def _browse(self) -> None:
        path, _filter = QFileDialog.getOpenFileName(self, "Preference pairs", "", "JSON lines (*.jsonl)")
        if path:
            self.file_edit.setText(path)

    def job(self) -> JobFields:
        """The job the form describes; ValueError with a message for the user when it is incomplete."""
        data = str(self.data_combo.currentData())
        data_file: Path | None = None
        if data == DATA_FILE:
            text = self.file_edit.text().strip()
            if not text:
                raise ValueError("choose a pairs file")
            data_file = Path(text)
            if not data_file.is_file():
                raise ValueError(f"{data_file}: no such file")
        base = self.base_combo.currentData()
        if base is None:
            raise ValueError("register a base model first (Models pane)")
        name = self.name_edit.text().strip()
        if not name:
            raise ValueError("give the trained model a name")
        return JobFields(
            data=data,
            data_file=data_file,
            config_id=self.config_combo.currentData(),
            base=Path(str(base)),
            method_stage=str(self.stage_combo.currentData()),
            steps=self.steps_spin.value(),
            learning_rate=self.lr_spin.value(),
            lora_rank=self.rank_spin.value(),
            name=name,
        )

    # -- running ---------------------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.process.running

    def start(self) -> bool:
        if self.running:
            return False
        try:
            job = self.job()
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
            self.work_dir = self.ctx.home / "training" / f"{job.name}-{stamp}"
            self.stages = pipeline(job, self.work_dir)
        except ValueError as exc:
            self.message.emit(f"Cannot start training: {exc}")
            return False
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.stage_index = 0
        self.losses = []
        self.loss_chart.set_values([])
        self.log_view.clear()
        self.last_done = {}
        self.last_error = ""
        self._stderr_tail = ""
        self._set_state("running")
        self._launch(self.stages[0])
        return True

    def _launch(self, stage: Stage) -> None:
        self.progress_bar.setRange(0, 0)
        self.status_label.setText(f"Stage {self.stage_index + 1}/{len(self.stages)}: {stage.name}…")
        self._log(f"$ studio-train {' '.join(stage.args)}")
        self.process.start(stage.args, self.work_dir)

    def cancel(self) -> None:
        """Ask the trainer to stop (SIGTERM); it is killed if it is still running a few seconds later."""
        if self.running:
            self.status_label.setText("Cancelling…")
            self.process.stop()

    def shutdown(self) -> None:
        """Stop a running trainer and wait for it (window closing)."""
        self.process.shutdown()

    # -- trainer output --------------------------------------------------------------------------------------

    def _on_stderr(self, text: str) -> None:
        for line in text.splitlines():
            if line.strip():
                self._stderr_tail = line.strip()
                self._log(line)

    def handle_line(self, line: str) -> None:
        """Apply one line of trainer output; lines that are not JSON objects go to the log as they are."""
        line = line.strip()
        if not line:
            return
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            self._log(line)
            return
        if not isinstance(event, dict):
            self._log(line)
            return
        kind = event.get("event")
        if kind == "step":
            self._on_step(event)
        elif kind == "progress":
            self._show_progress(event.get("stage", ""), event.get("done"), event.get("total"), event.get("eta_s"))
        elif kind == "log":
            self._log(str(event.get("message", "")))
        elif kind == "checkpoint":
            self._log(f"checkpoint at step {event.get('step')}: {event.get('path')}")
        elif kind == "done":
            self.last_done = event
            self._log(f"{event.get('command', 'stage')} done")
        elif kind == "error":
            self.last_error = str(event.get("message", "the trainer failed"))
            self._log(f"error: {self.last_error}")

    def _on_step(self, event: dict[str, Any]) -> None:
        loss = event.get("loss")
        if isinstance(loss, int | float):
            self.losses.append(float(loss))
            self.loss_chart.append(float(loss))
        self._show_progress(event.get("stage", "train"), event.get("step"), event.get("total"), event.get("eta_s"))
        extra = ""
        if isinstance(event.get("reward_margin"), int | float):
            extra = f", reward margin {event['reward_margin']:.3f}"
        if isinstance(loss, int | float):
            self.status_label.setText(f"{self.status_label.text().split(' — ')[0]} — loss {loss:.4f}{extra}")

    def _show_progress(self, stage: str, done: Any, total: Any, eta: Any) -> None:
        if isinstance(done, int) and isinstance(total, int) and total > 0:
            self.progress_bar.setRange(0, total)
            self.progress_bar.setValue(min(done, total))
            left = f", about {int(eta)} s left" if isinstance(eta, int | float) else ""
            self.progress_bar.setFormat(f"{stage}: %v / %m{left}")

    def _on_failed_to_start(self) -> None:
        self.last_error = f"could not start the trainer ({self.trainer[0]})"
        self._finish("failed")

    def _on_process_ended(self, exit_code: int, normal_exit: bool, stopped: bool) -> None:
        if stopped:
            self._finish("cancelled")
            return
        if not normal_exit or exit_code != 0:
            self.last_error = self.last_error or self._stderr_tail or f"the trainer exited with code {exit_code}"
            self._finish("failed")
            return
        self.stage_index += 1
        if self.stage_index < len(self.stages):
            self._launch(self.stages[self.stage_index])
            return
        self._register_result()

    def _register_result(self) -> None:
        path, already = produced_gguf(self.last_done)
        if path is None:
            self.last_error = "the trainer finished without naming a GGUF file"
            self._finish("failed")
            return
        try:
            entry = self.ctx.registry.find_by_path(path.resolve()) if already else None
            if entry is None:
                entry = self.ctx.registry.add(path)
        except StudioError as exc:
            self.last_error = str(exc)
            self._finish("failed")
            return
        self._log(f"Registered {entry.name}: {entry.path}")
        self.refresh()
        self.model_registered.emit(entry.name)
        self._finish("done", f"Trained and registered {entry.name}")

    def _finish(self, state: str, text: str = "") -> None:
        self._set_state(state)
        if state == "failed":
            text = f"Training failed: {self.last_error}"
        elif state == "cancelled":
            text = "Training cancelled"
        self.status_label.setText(text)
        if self.progress_bar.maximum() == 0:
            self.progress_bar.setRange(0, 1)
        if state == "done":
            self.progress_bar.setFormat("done")
            self.progress_bar.setValue(self.progress_bar.maximum())
        self.message.emit(text)
        self.finished.emit(state)

    def _set_state(self, state: str) -> None:
        self.state = state
        self._update_buttons()
        self.running_changed.emit(state == "running")

    def _update_buttons(self) -> None:
        running = self.state == "running"
        offer(self.start_button, "Training is running: cancel it first" if running else None, "Start the trainer")
        offer(self.cancel_button, None if running else "Nothing is training", "Stop the trainer")

    def _log(self, text: str) -> None:
        self.log_view.appendPlainText(text)
