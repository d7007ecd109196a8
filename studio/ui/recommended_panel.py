"""Recommended models in the model manager: what each needs, whether it fits this machine, and getting it.

A GGUF model is downloaded on a worker thread (resumable, cancellable, as the Hub box does). A safetensors model is
converted by ``studio-train convert-hub`` in a subprocess, whose JSON-lines progress drives the progress bar; the
trainer registers the result itself, in the same database, only after the converted model answered a probe.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QTimer, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from studio.core.inference.base import CancelToken
from studio.core.inference.recommended import Fit, Verdict, gb
from studio.core.inference.registry import ModelRegistry
from studio.ui.context import AppContext
from studio.ui.table_models import RowTableModel
from studio.ui.tables import row_table
from studio.ui.workers import DEFAULT_TRAINER, TaskRunner, TrainerProcess

PROGRESS_POLL_MS = 100
STAGE_NAMES = {"download": "Downloading", "convert": "Converting to GGUF", "quantize": "Quantising", "probe": "Probing"}


class FitTableModel(RowTableModel[Fit]):
    """One row per recommended model and quantisation, with this machine's verdict."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(
            [
                ("Model", lambda f: f.model.title),
                ("Quant", lambda f: f.quant.upper()),
                ("Use", lambda f: ", ".join(f.model.uses)),
                ("Source", lambda f: "GGUF" if f.model.source == "gguf" else "converted here"),
                ("File", lambda f: gb(f.file_bytes)),
                ("Memory", lambda f: gb(f.memory_bytes)),
                ("Disk", lambda f: gb(f.disk_bytes)),
                ("Fits this machine", lambda f: f.verdict.value),
                ("Why", lambda f: f.reason),
            ],
            parent,
        )


class _Bytes:
    """Bytes done/total written by the download thread, read by the GUI timer."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.value = (0, 0)

    def update(self, done: int, total: int) -> None:
        with self._lock:
            self.value = (done, total)

    def read(self) -> tuple[int, int]:
        with self._lock:
            return self.value


def _download_gguf(registry: ModelRegistry, repo: str, quant: str, progress: _Bytes, cancel: CancelToken) -> object:
    from studio.core.inference.hub import download, gguf_for_quant, list_files
    from studio.core.inference.recommended import require_disk
    from studio.core.paths import models_dir

    wanted = gguf_for_quant(repo, list_files(repo), quant)
    require_disk(models_dir(), wanted.size, f"downloading {wanted.path}")
    return download(repo, wanted.path, progress=progress.update, cancel=cancel, registry=registry)


class RecommendedPanel(QGroupBox):
    """The recommended list with a verdict per row; "Get" downloads or converts the selected one."""

    message = Signal(str)
    finished = Signal(object)  # the registered model name, or None when nothing was registered

    def __init__(
        self, ctx: AppContext, parent: QWidget | None = None, *, trainer: Sequence[str] = DEFAULT_TRAINER
    ) -> None:
        super().__init__("Recommended models (memory assumes a 4096-token context)", parent)
        self._ctx = ctx
        self.trainer = tuple(trainer)
        self._tasks = TaskRunner(self)
        self.process = TrainerProcess(self.trainer, ctx.home, self)
        self.process.line.connect(self.handle_line)
        self.process.ended.connect(self._on_process_ended)
        self.process.failed_to_start.connect(
            lambda: self._finish(f"Could not start the trainer ({self.trainer[0]})", None)
        )
        self._cancel: CancelToken | None = None
        self._bytes = _Bytes()
        self.last_event: dict[str, Any] = {}
        self._assessed = False

        self.model = FitTableModel(self)
        self.table = row_table(self.model, "Recommended models")
        self.table.selectionModel().selectionChanged.connect(self._update_buttons)
        self.machine_label = QLabel("Checking this machine…")
        self.machine_label.setAccessibleName("This machine")
        self.keep_f16 = QCheckBox("Keep the f16 file of a conversion")
        self.get_button = QPushButton("Get")
        self.get_button.setAccessibleName("Get the selected recommended model")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setAccessibleName("Cancel getting the model")
        self.progress_bar = QProgressBar()
        self.progress_bar.setAccessibleName("Progress of getting the model")
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setFormat("Nothing running")
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self.get_button.clicked.connect(self.get_selected)
        self.cancel_button.clicked.connect(self.cancel)
        row = QHBoxLayout()
        row.addWidget(self.keep_f16)
        row.addStretch(1)
        row.addWidget(self.get_button)
        row.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.machine_label)
        layout.addWidget(self.table, 1)
        layout.addLayout(row)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.status_label)

        self._poll = QTimer(self)
        self._poll.setInterval(PROGRESS_POLL_MS)
        self._poll.timeout.connect(self._on_bytes_tick)
        self._update_buttons()

    # -- the list ---------------------------------------------------------------------------------------------

    def showEvent(self, event: QShowEvent) -> None:
        """Assess the machine the first time the list is seen, not when the window is built."""
        super().showEvent(event)
        if not self._assessed:
            self._assessed = True
            self.refresh()

    def refresh(self) -> None:
        """Assess every recommended model against this machine on a worker (it asks llama.cpp for devices)."""

        def assess() -> tuple[str, list[Fit]]:
            from studio.core.inference.recommended import assess_all, load_recommended, this_machine

            machine = this_machine()
            gpus = ", ".join(f"{a.name} {gb(a.free_bytes)} free" for a in machine.accelerators) or "none"
            text = (
                f"This machine: {gb(machine.ram_total_bytes)} RAM ({gb(machine.ram_available_bytes)} available), "
                f"{gb(machine.disk_free_bytes)} free disk for models, accelerator: {gpus}"
            )
            return text, assess_all(load_recommended(), machine)

        self._tasks.submit(assess, self._on_assessed, self._on_assess_failed)

    def _on_assessed(self, result: tuple[str, list[Fit]]) -> None:
        text, fits = result
        self.machine_label.setText(text)
        self.model.set_rows(fits)
        self._update_buttons()

    def _on_assess_failed(self, message: str) -> None:
        self.machine_label.setText(f"Cannot check this machine: {message}")

    def selected(self) -> Fit | None:
        rows = self.table.selectionModel().selectedRows()
        return self.model.row_at(rows[0].row()) if rows else None

    def select(self, model_id: str, quant: str) -> None:
        for row, fit in enumerate(self.model.rows()):
            if fit.model.id == model_id and fit.quant == quant:
                self.table.selectRow(row)
                return

    @property
    def running(self) -> bool:
        return self.process.running or self._cancel is not None

    # -- getting a model --------------------------------------------------------------------------------------

    def get_selected(self) -> bool:
        fit = self.selected()
        if fit is None or self.running:
            return False
        if fit.verdict == Verdict.TOO_BIG:
            self.message.emit(f"{fit.model.title} {fit.quant.upper()} is too big for this machine: {fit.reason}")
            return False
        self.last_event = {}
        if fit.model.source == "gguf":
            self._start_download(fit)
        else:
            self._start_conversion(fit)
        self._update_buttons()
        return True

    def _start_download(self, fit: Fit) -> None:
        self._cancel = CancelToken()
        self._bytes = _Bytes()
        cancel, progress = self._cancel, self._bytes
        repo, quant = fit.model.repo, fit.quant
        self.progress_bar.setRange(0, 0)
        self.status_label.setText(f"Downloading {fit.model.title} {quant.upper()}…")
        self._poll.start()
        self._tasks.submit(
            lambda: self._ctx.with_own_registry(
                lambda registry: _download_gguf(registry, repo, quant, progress, cancel)
            ),
            self._on_downloaded,
            self._on_failed,
        )

    def _start_conversion(self, fit: Fit) -> None:
        self.progress_bar.setRange(0, 0)
        self.status_label.setText(f"Getting {fit.model.title} {fit.quant.upper()} (download, convert, quantise)…")
        args = ["convert-hub", fit.model.repo, "--quant", fit.quant]
        if self.keep_f16.isChecked():
            args.append("--keep-f16")
        self.process.start(args)

    def cancel(self) -> None:
        if self._cancel is not None:
            self._cancel.cancel()
        if self.process.running:
            self.status_label.setText("Cancelling…")
            self.process.stop()

    def shutdown(self) -> None:
        """Stop whatever runs and wait for it (window closing)."""
        if self._cancel is not None:
            self._cancel.cancel()
        self._tasks.wait_all()
        self.process.shutdown()
        self._poll.stop()

    # -- trainer output ---------------------------------------------------------------------------------------

    def handle_line(self, line: str) -> None:
        """Apply one JSON-lines event of the trainer; anything else is ignored (its stderr is not read)."""
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            return
        if not isinstance(event, dict):
            return
        kind = event.get("event")
        if kind == "progress":
            self._show_stage(str(event.get("stage", "")), event.get("done"), event.get("total"))
        elif kind == "log":
            self.status_label.setText(str(event.get("message", "")))
        elif kind in ("done", "error"):
            self.last_event = event

    def _show_stage(self, stage: str, done: Any, total: Any) -> None:
        name = STAGE_NAMES.get(stage, stage)
        if not (isinstance(done, int) and isinstance(total, int)) or total <= 0:
            return
        if stage == "download":
            self.progress_bar.setRange(0, 1000)
            self.progress_bar.setValue(int(1000 * done / total))
            self.progress_bar.setFormat(f"{name}: {gb(done)} of {gb(total)} (%p%)")
        elif done < total:
            self.progress_bar.setRange(0, 0)
            self.progress_bar.setFormat(f"{name}…")
            self.status_label.setText(f"{name}…")

    def _on_process_ended(self, exit_code: int, _normal_exit: bool, cancelled: bool) -> None:
        event = self.last_event
        if cancelled:
            self._finish("Cancelled; get it again to resume", None)
        elif exit_code == 0 and event.get("event") == "done":
            name = event.get("registered")
            self._finish(f"Registered {name} ({event.get('path')})", name)
        else:
            self._finish(f"Failed: {event.get('message') or f'the trainer exited with code {exit_code}'}", None)

    # -- download results -------------------------------------------------------------------------------------

    def _on_bytes_tick(self) -> None:
        done, total = self._bytes.read()
        if total > 0:
            self._show_stage("download", done, total)

    def _on_downloaded(self, path: object) -> None:
        self._on_bytes_tick()
        self._cancel = None
        self._poll.stop()
        entry = self._ctx.registry.find_by_path(Path(str(path)))
        self._finish(f"Downloaded {path}", entry.name if entry else None)

    def _on_failed(self, message: str) -> None:
        cancelled = self._cancel is not None and self._cancel.cancelled
        self._cancel = None
        self._poll.stop()
        self._finish("Cancelled; get it again to resume" if cancelled else f"Failed: {message}", None)

    def _finish(self, text: str, name: object) -> None:
        if self.progress_bar.maximum() == 0:
            self.progress_bar.setRange(0, 1000)
        self.progress_bar.setFormat(text if len(text) < 60 else "Finished" if name else "Stopped")
        self.status_label.setText(text)
        self.message.emit(text)
        self._update_buttons()
        self.finished.emit(name)

    def _update_buttons(self) -> None:
        fit = self.selected()
        self.get_button.setEnabled(fit is not None and not self.running and fit.verdict != Verdict.TOO_BIG)
        self.get_button.setToolTip(fit.reason if fit is not None else "Select a model")
        self.cancel_button.setEnabled(self.running)
