"""The "Add endpoint…" dialog: register a model server (llama.cpp server, vLLM, Ollama, a hosted API) as a model.

Test asks the server, off the GUI thread, which models it serves and what it is, and fills the model list. An API
key typed here goes to the OS keyring only; the dialog never writes it anywhere else.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import StudioError
from studio.core.inference import endpoints
from studio.ui.context import AppContext
from studio.ui.workers import TaskRunner


def _server_report(url: str, model: str, key: str | None) -> dict[str, Any]:
    """What the server at ``url`` reports (runs on a worker thread)."""
    from studio.core.inference.openai_backend import OpenAIBackend, RetryPolicy

    backend = OpenAIBackend(endpoints.normalize_url(url), model or "-", key, 15.0, retry=RetryPolicy(attempts=2))
    try:
        return backend.server_report()
    finally:
        backend.close()


class EndpointDialog(QDialog):
    """Collects an endpoint's address, model id, key source and concurrency; registers it on OK."""

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Add endpoint")
        self._ctx = ctx
        self._tasks = TaskRunner(self)
        self.entry: endpoints.EndpointEntry | None = None

        self.name_edit = QLineEdit()
        self.name_edit.setAccessibleName("Endpoint name")
        self.url_edit = QLineEdit()
        self.url_edit.setPlaceholderText("http://gpu-box:8000/v1")
        self.url_edit.setAccessibleName("Server address")
        self.model_combo = QComboBox()
        self.model_combo.setEditable(True)
        self.model_combo.setAccessibleName("Model id")
        self.key_env_edit = QLineEdit()
        self.key_env_edit.setPlaceholderText("optional, e.g. OPENAI_API_KEY")
        self.key_env_edit.setAccessibleName("Environment variable with the API key")
        self.key_edit = QLineEdit()
        self.key_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.key_edit.setPlaceholderText("optional; stored in the OS keyring")
        self.key_edit.setAccessibleName("API key (kept in the OS keyring)")
        self.concurrency_spin = QSpinBox()
        self.concurrency_spin.setRange(1, endpoints.MAX_CONCURRENCY)
        self.concurrency_spin.setValue(endpoints.DEFAULT_CONCURRENCY)
        self.concurrency_spin.setAccessibleName("Requests in flight")
        self.test_button = QPushButton("Test")
        self.test_button.setAccessibleName("Ask the server which models it serves")
        self.test_button.clicked.connect(self.test)
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)

        form = QFormLayout()
        form.addRow("Name", self.name_edit)
        form.addRow("Address", self.url_edit)
        form.addRow("Model", self.model_combo)
        form.addRow("Key variable", self.key_env_edit)
        form.addRow("API key", self.key_edit)
        form.addRow("Requests at once", self.concurrency_spin)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.test_button)
        layout.addWidget(self.status_label)
        layout.addWidget(self.buttons)

    def _key(self) -> str | None:
        env = self.key_env_edit.text().strip()
        if env:
            import os

            return os.environ.get(env)
        return self.key_edit.text().strip() or None

    def test(self) -> None:
        """Ask the server off the GUI thread; the answer fills the model list."""
        url, model, key = self.url_edit.text(), self.model_combo.currentText().strip(), self._key()
        self.test_button.setEnabled(False)
        self.status_label.setText("Asking the server…")
        self._tasks.submit(lambda: _server_report(url, model, key), self._on_report, self._on_failed)

    def _on_report(self, report: Any) -> None:
        self.test_button.setEnabled(True)
        models = [str(m) for m in report.get("models", [])]
        current = self.model_combo.currentText().strip()
        self.model_combo.clear()
        self.model_combo.addItems(models)
        self.model_combo.setCurrentText(current or (models[0] if models else ""))
        self.status_label.setText(endpoints.server_summary(report).capitalize())

    def _on_failed(self, message: str) -> None:
        self.test_button.setEnabled(True)
        self.status_label.setText(f"No answer: {message}")

    def save(self) -> None:
        """Register the endpoint (and put a typed key in the keyring); stays open with the reason on failure."""
        store = self._ctx.store
        name = self.name_edit.text().strip()
        try:
            entry = endpoints.add_endpoint(
                store,
                name,
                self.url_edit.text(),
                self.model_combo.currentText(),
                api_key_env=self.key_env_edit.text().strip() or None,
                concurrency=self.concurrency_spin.value(),
            )
            key = self.key_edit.text().strip()
            if key and entry.api_key_env is None:
                try:
                    endpoints.store_api_key(store, entry.name, key)
                except StudioError:
                    endpoints.remove_endpoint(store, entry.name)
                    raise
        except StudioError as exc:
            self.status_label.setText(str(exc))
            return
        self.key_edit.clear()
        self.entry = endpoints.get_endpoint(store, entry.name)
        self.accept()

    def done(self, result: int) -> None:
        self._tasks.wait_all()
        super().done(result)
