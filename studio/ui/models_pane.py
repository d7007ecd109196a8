"""The model manager: registered GGUF models and endpoints, adding from disk, downloading from the Hub, recommended
models with a "fits this machine" verdict, GPU offload, switching."""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import StudioError
from studio.core.inference.base import CancelToken
from studio.core.inference.endpoints import EndpointEntry, list_endpoints
from studio.core.inference.registry import ModelEntry
from studio.ui.availability import offer
from studio.ui.context import AppContext
from studio.ui.endpoint_actions import EndpointActions
from studio.ui.recommended_panel import RecommendedPanel
from studio.ui.table_models import ModelTableModel, RegistryRow, human_size
from studio.ui.tables import row_table
from studio.ui.workers import TaskRunner

PROGRESS_POLL_MS = 100


class _DownloadProgress:
    """Bytes done/total written by the download thread, read by the GUI timer."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.done = 0
        self.total = 0

    def update(self, done: int, total: int) -> None:
        with self._lock:
            self.done, self.total = done, total

    def read(self) -> tuple[int, int]:
        with self._lock:
            return self.done, self.total


class ModelManagerPane(QWidget):
    """Registry table with actions; downloads resume from their ``.part`` file when started again."""

    message = Signal(str)
    added = Signal(object)  # ModelEntry

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._ctx = ctx
        self._tasks = TaskRunner(self)
        self._cancel: CancelToken | None = None
        self._progress = _DownloadProgress()

        self.model = ModelTableModel(self)
        self.table = row_table(self.model, "Registered models")
        self.table.selectionModel().selectionChanged.connect(self._update_buttons)
        self.table.activated.connect(lambda _index: self.load_selected())

        self.load_button = QPushButton("Load")
        self.load_button.setAccessibleName("Load the selected model")
        self.default_button = QPushButton("Set as default")
        self.default_button.setAccessibleName("Make the selected model the default")
        self.add_button = QPushButton("Add from disk…")
        self.add_button.setAccessibleName("Add a GGUF file from disk")
        self.remove_button = QPushButton("Remove")
        self.remove_button.setAccessibleName("Remove the selected model from the registry")
        self.endpoint_button = QPushButton("Add endpoint…")
        self.endpoint_button.setAccessibleName("Register a model server as a model")
        self.endpoint_button.clicked.connect(self.add_endpoint)
        self.endpoint_actions = EndpointActions(ctx, self)
        self.endpoint_actions.message.connect(self.message)
        self.endpoint_actions.changed.connect(self._on_endpoints_changed)
        self.load_button.clicked.connect(self.load_selected)
        self.default_button.clicked.connect(self.set_selected_default)
        self.add_button.clicked.connect(self._on_add_clicked)
        self.remove_button.clicked.connect(self.remove_selected)
        actions = QHBoxLayout()
        for button in (
            self.load_button,
            self.default_button,
            self.add_button,
            self.remove_button,
            self.endpoint_button,
            *self.endpoint_actions.buttons,
        ):
            actions.addWidget(button)
        actions.addStretch(1)

        self.gpu_combo = QComboBox()
        self.gpu_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.gpu_combo.setMinimumContentsLength(16)
        self.gpu_combo.setAccessibleName("GPU offload")
        self.gpu_combo.addItem("Automatic", "auto")
        self.gpu_combo.addItem("CPU only", "cpu")
        self.gpu_combo.addItem("Fixed layer count", "layers")
        self.gpu_layers_spin = QSpinBox()
        self.gpu_layers_spin.setRange(0, 999)
        self.gpu_layers_spin.setAccessibleName("GPU layers")
        self.context_spin = QSpinBox()
        self.context_spin.setRange(256, 131072)
        self.context_spin.setSingleStep(256)
        self.context_spin.setAccessibleName("Maximum context")
        self.reload_settings()
        self.gpu_combo.currentIndexChanged.connect(self._on_inference_settings_changed)
        self.gpu_layers_spin.valueChanged.connect(self._on_inference_settings_changed)
        self.context_spin.valueChanged.connect(self._on_inference_settings_changed)
        offload = QGroupBox("Loading (applies to the next load)")
        offload_form = QFormLayout(offload)
        offload_form.addRow("GPU offload", self.gpu_combo)
        offload_form.addRow("GPU layers", self.gpu_layers_spin)
        offload_form.addRow("Max context", self.context_spin)

        self.repo_edit = QLineEdit()
        self.repo_edit.setAccessibleName("Hub repository id")
        self.repo_edit.setPlaceholderText("owner/repository, e.g. HuggingFaceTB/SmolLM2-360M-Instruct-GGUF")
        self.list_button = QPushButton("List files")
        self.list_button.setAccessibleName("List GGUF files of the repository")
        self.file_combo = QComboBox()
        self.file_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.file_combo.setMinimumContentsLength(16)
        self.file_combo.setAccessibleName("GGUF file to download")
        self.download_button = QPushButton("Download")
        self.download_button.setAccessibleName("Download the chosen file")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setAccessibleName("Cancel the download")
        self.progress_bar = QProgressBar()
        self.progress_bar.setAccessibleName("Download progress")
        self.progress_bar.setTextVisible(True)
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat("No download running")
        self.progress_label = QLabel()
        self.list_button.clicked.connect(self.list_hub_files)
        self.download_button.clicked.connect(self.start_download)
        self.cancel_button.clicked.connect(self.cancel_download)
        hub = QGroupBox("Download from the Hugging Face Hub (an interrupted download resumes)")
        hub_layout = QVBoxLayout(hub)
        repo_row = QHBoxLayout()
        repo_row.addWidget(self.repo_edit, 1)
        repo_row.addWidget(self.list_button)
        file_row = QHBoxLayout()
        file_row.addWidget(self.file_combo, 1)
        file_row.addWidget(self.download_button)
        file_row.addWidget(self.cancel_button)
        hub_layout.addLayout(repo_row)
        hub_layout.addLayout(file_row)
        hub_layout.addWidget(self.progress_bar)
        hub_layout.addWidget(self.progress_label)

        self.current_label = QLabel()
        self.current_label.setAccessibleName("Loaded model")
        layout = QVBoxLayout(self)
        layout.addWidget(self.current_label)
        layout.addWidget(self.table, 1)
        layout.addLayout(actions)
        settings_row = QHBoxLayout()
        settings_row.addWidget(offload)
        settings_row.addWidget(hub, 2)
        layout.addLayout(settings_row)
        self.recommended = RecommendedPanel(ctx, self)
        self.recommended.message.connect(self.message)
        self.recommended.finished.connect(self._on_recommended_finished)
        layout.addWidget(self.recommended, 1)

        self._progress_timer = QTimer(self)
        self._progress_timer.setInterval(PROGRESS_POLL_MS)
        self._progress_timer.timeout.connect(self._on_progress_tick)
        ctx.backends.loaded.connect(self._on_backend_changed)
        ctx.backends.loading.connect(self._on_backend_changed)
        ctx.backends.failed.connect(self._on_backend_changed)
        self.refresh()

    # -- registry actions -------------------------------------------------------------------------------------

    def refresh(self) -> None:
        rows: list[RegistryRow] = [*self._ctx.registry.list(), *list_endpoints(self._ctx.store)]
        self.model.set_rows(rows)
        self._update_buttons()
        self._on_backend_changed(None)

    def selected(self) -> RegistryRow | None:
        rows = self.table.selectionModel().selectedRows()
        return self.model.row_at(rows[0].row()) if rows else None

    def select_name(self, name: str) -> None:
        for row, entry in enumerate(self.model.rows()):
            if entry.name == name:
                self.table.selectRow(row)
                return

    def add_endpoint(self) -> None:
        """Open the endpoint dialog; a registered endpoint is loaded as the current model."""
        from studio.ui.endpoint_dialog import EndpointDialog

        dialog = EndpointDialog(self._ctx, self)
        if dialog.exec() and dialog.entry is not None:
            self.message.emit(f"Registered endpoint {dialog.entry.name}")
            self.refresh()
            self.select_name(dialog.entry.name)
            self._ctx.backends.load_endpoint(dialog.entry)

    def load_selected(self) -> None:
        entry = self.selected()
        if entry is None:
            return
        if isinstance(entry, EndpointEntry):
            if not self._ctx.backends.load_endpoint(entry):
                self.message.emit("A model is already loading; wait for it to finish")
            return
        if not self._ctx.backends.load(entry.path, entry.name, entry.sha256, self._ctx.settings.inference):
            self.message.emit("A model is already loading; wait for it to finish")

    def set_selected_default(self) -> None:
        entry = self.selected()
        if not isinstance(entry, ModelEntry):
            return
        self._ctx.registry.set_default(entry.name)
        self.refresh()
        self.select_name(entry.name)

    def remove_selected(self) -> None:
        entry = self.selected()
        if entry is None:
            return
        if isinstance(entry, EndpointEntry):
            self.endpoint_actions.remove()
            return
        try:
            self._ctx.registry.remove(entry.name)
        except StudioError as exc:
            self.message.emit(str(exc))
        self.refresh()

    def add_file(self, path: Path) -> None:
        """Register a GGUF file; it is read and hashed on a worker thread, then ``added`` is emitted."""
        self.add_button.setEnabled(False)
        self.progress_label.setText(f"Reading and hashing {path.name}…")
        self._tasks.submit(
            lambda: self._ctx.with_own_registry(lambda registry: registry.add(path)),
            self._on_file_added,
            self._on_add_failed,
        )

    # -- Hub --------------------------------------------------------------------------------------------------

    def list_hub_files(self) -> None:
        repo = self.repo_edit.text().strip()
        if not repo:
            self.message.emit("Type a Hub repository id first")
            return
        from studio.core.inference.hub import list_gguf_files

        self.list_button.setEnabled(False)
        self.progress_label.setText(f"Listing {repo}…")
        self._tasks.submit(lambda: list_gguf_files(repo), self._on_files_listed, self._on_hub_error)

    def start_download(self) -> None:
        repo = self.repo_edit.text().strip()
        filename = self.file_combo.currentData()
        if not repo or not filename or self._cancel is not None:
            return
        from studio.core.inference.hub import download

        self._cancel = CancelToken()
        cancel = self._cancel
        self._progress = _DownloadProgress()
        progress = self._progress
        self.progress_bar.setRange(0, 0)
        self.progress_label.setText(f"Downloading {filename}…")
        self._progress_timer.start()
        self._tasks.submit(
            lambda: self._ctx.with_own_registry(
                lambda registry: download(
                    repo, str(filename), progress=progress.update, cancel=cancel, registry=registry
                )
            ),
            self._on_download_done,
            self._on_download_failed,
        )
        self._update_buttons()

    def cancel_download(self) -> None:
        if self._cancel is not None:
            self._cancel.cancel()

    def shutdown(self) -> None:
        self.recommended.shutdown()
        self.endpoint_actions.shutdown()
        self.cancel_download()
        self._tasks.wait_all()
        self._progress_timer.stop()
        self._cancel = None

    # -- internals --------------------------------------------------------------------------------------------

    def reload_settings(self) -> None:
        """Show the loading settings currently in the context."""
        inference = self._ctx.settings.inference
        widgets = (self.gpu_combo, self.gpu_layers_spin, self.context_spin)
        for widget in widgets:
            widget.blockSignals(True)
        if isinstance(inference.gpu, int):
            self.gpu_combo.setCurrentIndex(2)
            self.gpu_layers_spin.setValue(inference.gpu)
        else:
            self.gpu_combo.setCurrentIndex(0 if inference.gpu == "auto" else 1)
        self.gpu_layers_spin.setEnabled(isinstance(inference.gpu, int))
        self.context_spin.setValue(inference.max_context)
        for widget in widgets:
            widget.blockSignals(False)

    def _on_inference_settings_changed(self) -> None:
        choice = self.gpu_combo.currentData()
        inference = self._ctx.settings.inference
        inference.gpu = self.gpu_layers_spin.value() if choice == "layers" else choice
        inference.max_context = self.context_spin.value()
        self.gpu_layers_spin.setEnabled(choice == "layers")
        self._ctx.save_settings()

    def _on_file_added(self, entry: ModelEntry) -> None:
        self.add_button.setEnabled(True)
        self.progress_label.clear()
        self.refresh()
        self.select_name(entry.name)
        self.message.emit(f"Added {entry.name}")
        self.added.emit(entry)

    def _on_add_failed(self, message: str) -> None:
        self.add_button.setEnabled(True)
        self.progress_label.clear()
        self.message.emit(message)

    def _on_files_listed(self, files: list[object]) -> None:
        self.list_button.setEnabled(True)
        self.file_combo.clear()
        for hub_file in files:
            path = str(getattr(hub_file, "path", ""))
            size = int(getattr(hub_file, "size", 0) or 0)
            self.file_combo.addItem(f"{path} ({human_size(size)})", path)
        self.progress_label.setText(f"{len(files)} GGUF files")
        self._update_buttons()

    def _on_hub_error(self, message: str) -> None:
        self.list_button.setEnabled(True)
        self.progress_label.setText(message)
        self.message.emit(message)

    def _on_progress_tick(self) -> None:
        done, total = self._progress.read()
        if total > 0:
            self.progress_bar.setRange(0, 1000)
            self.progress_bar.setValue(int(1000 * done / total))
            self.progress_bar.setFormat(f"{human_size(done)} of {human_size(total)} (%p%)")

    def _on_download_done(self, path: object) -> None:
        self._finish_download()
        self.progress_label.setText(f"Downloaded {path}")
        self.refresh()

    def _on_download_failed(self, message: str) -> None:
        cancelled = self._cancel is not None and self._cancel.cancelled
        self._finish_download()
        text = "Download cancelled; start it again to resume" if cancelled else f"Download failed: {message}"
        self.progress_label.setText(text)
        self.message.emit(text)

    def _finish_download(self) -> None:
        self._cancel = None
        self._progress_timer.stop()
        self._on_progress_tick()
        if self.progress_bar.maximum() == 0:
            self.progress_bar.setRange(0, 1000)
        self._update_buttons()

    def _on_endpoints_changed(self) -> None:
        selected = self.selected()
        self.refresh()
        if selected is not None:
            self.select_name(selected.name)

    def _on_recommended_finished(self, name: object) -> None:
        self.refresh()
        if isinstance(name, str):
            self.select_name(name)

    def _on_backend_changed(self, _payload: object) -> None:
        backends = self._ctx.backends
        info = backends.info
        if backends.is_loading:
            self.current_label.setText("Loading a model…")
        elif info is None:
            self.current_label.setText("No model loaded")
        else:
            device = f"{info.device.upper()}, {info.gpu_layers} GPU layers" if info.gpu_layers else "CPU"
            self.current_label.setText(f"Loaded: {info.name} · {device} · context {info.context_length}")
        self._update_buttons()

    def _update_buttons(self) -> None:
        selected = self.selected()
        has_selection = selected is not None
        downloading = self._cancel is not None
        pick = None if has_selection else "Select a model in the list first"
        offer(
            self.load_button,
            "A model is loading" if self._ctx.backends.is_loading else pick,
            "Load the selected model for probes and checks",
        )
        offer(
            self.default_button,
            "The default model is a file; an endpoint is chosen per check"
            if isinstance(selected, EndpointEntry)
            else pick,
            "Load this model at every start",
        )
        self.endpoint_actions.select(selected if isinstance(selected, EndpointEntry) else None)
        offer(self.remove_button, pick, "Remove the selected entry from the registry")
        offer(
            self.download_button,
            "A download is running"
            if downloading
            else None
            if self.file_combo.count()
            else "List a repo's files first",
            "Download the chosen file into the model store",
        )
        offer(self.cancel_button, None if downloading else "Nothing is downloading", "Stop the download")

    def _on_add_clicked(self) -> None:
        path, _filter = QFileDialog.getOpenFileName(self, "Add a GGUF model", "", "GGUF models (*.gguf)")
        if path:
            self.add_file(Path(path))
