"""What the model manager does with a registered endpoint: test it, change how many requests it gets at once, store
its API key in the OS keyring, remove it.

Every action runs on a worker thread with its own database connection: the server may be slow to answer, and the OS
keyring may wait on a desktop prompt, and neither may freeze the window. A typed key goes to the keyring only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QInputDialog, QLineEdit, QPushButton, QWidget

from studio.core.inference import endpoints
from studio.core.inference.endpoints import EndpointEntry
from studio.ui.availability import offer
from studio.ui.context import AppContext
from studio.ui.workers import TaskRunner


class EndpointActions(QObject):
    """Buttons acting on the endpoint selected in the model manager (:meth:`select`)."""

    message = Signal(str)
    #: The registry changed (an endpoint's settings, key or existence); the table reloads.
    changed = Signal()

    def __init__(self, ctx: AppContext, parent: QWidget) -> None:
        super().__init__(parent)
        self._ctx = ctx
        self._parent = parent
        self._tasks = TaskRunner(self)
        self._entry: EndpointEntry | None = None
        self.test_button = QPushButton("Test")
        self.test_button.setAccessibleName("Ask the selected endpoint's server what it serves")
        self.concurrency_button = QPushButton("Requests at once…")
        self.concurrency_button.setAccessibleName("Change how many requests the selected endpoint gets at once")
        self.key_button = QPushButton("Set key…")
        self.key_button.setAccessibleName("Store the selected endpoint's API key in the OS keyring")
        self.test_button.clicked.connect(self.test)
        self.concurrency_button.clicked.connect(lambda: self.set_concurrency())
        self.key_button.clicked.connect(lambda: self.set_key())
        self.select(None)

    @property
    def buttons(self) -> tuple[QPushButton, ...]:
        return (self.test_button, self.concurrency_button, self.key_button)

    @property
    def busy(self) -> bool:
        return self._tasks.busy

    def select(self, entry: EndpointEntry | None) -> None:
        """Act on ``entry`` from now on (None: no endpoint is selected, the buttons say why they are off)."""
        self._entry = entry
        self._update_buttons()

    def test(self) -> None:
        """Ask the server what it is and serves; the answer comes as a message."""
        entry = self._entry
        if entry is None:
            return
        self.message.emit(f"Asking {entry.base_url}…")
        self._run(lambda: endpoints.ask_server(entry), lambda report: self._on_tested(entry, report))

    def set_concurrency(self, value: int | None = None) -> None:
        """Change the requests in flight (asked for in a small dialog when ``value`` is None)."""
        entry = self._entry
        if entry is None:
            return
        if value is None:
            value, ok = QInputDialog.getInt(
                self._parent,
                "Requests at once",
                f"Requests {entry.name} gets at once:",
                entry.concurrency,
                1,
                endpoints.MAX_CONCURRENCY,
            )
            if not ok:
                return
        chosen = value
        self._run(
            lambda: self._ctx.with_own_store(lambda store: endpoints.set_concurrency(store, entry.name, chosen)),
            lambda updated: self._done(f"{entry.name} now gets {updated.concurrency} requests at once"),
        )

    def set_key(self, key: str | None = None) -> None:
        """Store an API key in the OS keyring (asked for, hidden, when ``key`` is None)."""
        entry = self._entry
        if entry is None:
            return
        if key is None:
            key, ok = QInputDialog.getText(
                self._parent,
                "API key",
                f"API key of {entry.name} (kept in the OS keyring only):",
                QLineEdit.EchoMode.Password,
            )
            if not ok:
                return
        secret = key
        self._run(
            lambda: self._ctx.with_own_store(lambda store: endpoints.store_api_key(store, entry.name, secret)),
            lambda _none: self._done(f"Stored the API key of {entry.name} in the OS keyring"),
        )

    def remove(self) -> None:
        """Forget the endpoint (and its key in the keyring)."""
        entry = self._entry
        if entry is None:
            return
        self._run(
            lambda: self._ctx.with_own_store(lambda store: endpoints.remove_endpoint(store, entry.name)),
            lambda _none: self._done(f"Removed endpoint {entry.name}"),
        )

    def shutdown(self) -> None:
        self._tasks.wait_all()

    # -- internals --------------------------------------------------------------------------------------------

    def _run(self, work: Callable[[], Any], on_done: Callable[[Any], None]) -> None:
        self._tasks.submit(work, lambda value: self._finish(on_done, value), self._on_failed)
        self._update_buttons()

    def _finish(self, on_done: Callable[[Any], None], value: Any) -> None:
        on_done(value)
        self._update_buttons()

    def _on_tested(self, entry: EndpointEntry, report: dict[str, Any]) -> None:
        listed = "" if report.get("model_listed", True) else f" (it does not list {entry.model_id!r})"
        self.message.emit(f"{entry.name}: {endpoints.server_summary(report)}{listed}")

    def _done(self, text: str) -> None:
        self.message.emit(text)
        self.changed.emit()

    def _on_failed(self, message: str) -> None:
        self.message.emit(message)
        self._update_buttons()

    def _update_buttons(self) -> None:
        if self._entry is None:
            why_not: str | None = "Select an endpoint in the table"
        else:
            why_not = "Waiting for the last endpoint action to finish" if self._tasks.busy else None
        offer(self.test_button, why_not, "Ask the server what it is and which models it serves")
        offer(self.concurrency_button, why_not, "Change how many requests this endpoint gets at once")
        offer(self.key_button, why_not, "Store this endpoint's API key in the OS keyring (never on disk)")
