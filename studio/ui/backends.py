"""Which model is loaded: loads a backend off the GUI thread and swaps it in when ready."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal

from studio.core.inference.base import Backend, BackendInfo
from studio.core.settings import InferenceSettings
from studio.ui.workers import TaskRunner

if TYPE_CHECKING:
    from studio.core.inference.endpoints import EndpointEntry

#: Builds a backend for a model file: (path, display name, sha256, inference settings) -> Backend.
BackendFactory = Callable[[Path, str, "str | None", InferenceSettings], Backend]


def llama_backend_factory(path: Path, name: str, sha256: str | None, settings: InferenceSettings) -> Backend:
    """The real backend: llama.cpp on the GGUF at ``path``, under the settings the app holds."""
    from studio.core.inference.opening import LoadOptions, open_file

    return open_file(path, name, sha256, LoadOptions(), settings)


class BackendManager(QObject):
    """Owns the current backend. ``load`` builds the next one on a worker thread; the old one is closed only after
    the new one is ready, so a failed load leaves the previous model usable."""

    loading = Signal(str)
    loaded = Signal(object)  # BackendInfo
    failed = Signal(str)

    def __init__(self, factory: BackendFactory = llama_backend_factory, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._factory = factory
        self._backend: Backend | None = None
        self._tasks = TaskRunner(self)

    @property
    def backend(self) -> Backend | None:
        return self._backend

    @property
    def info(self) -> BackendInfo | None:
        return self._backend.info if self._backend is not None else None

    @property
    def is_loading(self) -> bool:
        return self._tasks.busy

    def set_backend(self, backend: Backend) -> None:
        """Use an already built backend (tests, remote backends)."""
        self._swap(backend)

    def load(self, path: Path, name: str, sha256: str | None, settings: InferenceSettings) -> bool:
        """Start loading a model; False (and nothing happens) while another load is still running."""
        if self._tasks.busy:
            return False
        self._tasks.submit(
            lambda: self._factory(path, name, sha256, settings),
            self._on_built,
            lambda message: self.failed.emit(f"{path}: could not load the model: {message}"),
        )
        self.loading.emit(name)
        return True

    def load_endpoint(self, endpoint: EndpointEntry) -> bool:
        """Connect to a registered endpoint off the GUI thread, like :meth:`load`."""
        if self._tasks.busy:
            return False
        from studio.core.inference.endpoints import open_endpoint

        self._tasks.submit(
            lambda: open_endpoint(endpoint),
            self._on_built,
            lambda message: self.failed.emit(f"endpoint {endpoint.name}: {message}"),
        )
        self.loading.emit(endpoint.name)
        return True

    def count_tokens(self, text: str) -> int | None:
        backend = self._backend
        return backend.count_tokens(text) if backend is not None else None

    def shutdown(self) -> None:
        """Wait for a pending load and close every backend."""
        self._tasks.wait_all(deliver=True)
        if self._backend is not None:
            self._backend.close()
            self._backend = None

    def _on_built(self, backend: Any) -> None:
        self._swap(backend)

    def _swap(self, backend: Backend) -> None:
        old, self._backend = self._backend, backend
        if old is not None and old is not backend:
            old.close()
        self.loaded.emit(backend.info)
