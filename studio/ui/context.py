"""The application context handed to every pane: stores, registry, settings and the backend manager."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from PySide6.QtCore import QSettings

from studio.core.inference.registry import ModelEntry, ModelRegistry
from studio.core.settings import StudioSettings, load_settings, save_settings
from studio.core.store.store import Store
from studio.ui.backends import BackendFactory, BackendManager, llama_backend_factory

T = TypeVar("T")

DATABASE_FILE = "studio.db"
UI_SETTINGS_FILE = "ui.ini"
MAX_RECENT_FILES = 8


@dataclass
class AppContext:
    """Everything a pane needs, passed explicitly."""

    home: Path
    store: Store
    registry: ModelRegistry
    settings: StudioSettings
    ui_settings: QSettings
    backends: BackendManager

    @classmethod
    def open(cls, home: Path, backend_factory: BackendFactory = llama_backend_factory) -> AppContext:
        """Open the database under ``home`` and read the settings; loads no model."""
        store = Store.open(home / DATABASE_FILE)
        return cls(
            home=home,
            store=store,
            registry=ModelRegistry(store.models),
            settings=load_settings(home),
            ui_settings=QSettings(str(home / UI_SETTINGS_FILE), QSettings.Format.IniFormat),
            backends=BackendManager(backend_factory),
        )

    def with_own_store(self, work: Callable[[Store], T]) -> T:
        """Run ``work(store)`` on a store with its own database connection, so that slow work (hashing a large
        file, installing the embedded model, asking a server) can run on a worker thread."""
        with Store.open(self.store.path or self.home / DATABASE_FILE) as own:
            return work(own)

    def with_own_registry(self, work: Callable[[ModelRegistry], T]) -> T:
        """Run ``work(registry)`` on a registry with its own database connection (see :meth:`with_own_store`)."""
        return self.with_own_store(lambda own: work(ModelRegistry(own.models)))

    def resolve_default_model(self) -> ModelEntry:
        """The default :class:`ModelEntry`, installing the embedded model on first run (worker-thread safe)."""
        return self.with_own_registry(lambda registry: registry.default())

    def save_settings(self) -> None:
        save_settings(self.settings, self.home)

    def recent_files(self) -> list[str]:
        value: Any = self.ui_settings.value("recentFiles", [])
        if isinstance(value, str):
            return [value]
        return [str(v) for v in value or []]

    def add_recent_file(self, path: Path) -> None:
        entries = [str(path), *(p for p in self.recent_files() if p != str(path))]
        self.ui_settings.setValue("recentFiles", entries[:MAX_RECENT_FILES])

    def close(self) -> None:
        self.backends.shutdown()
        self.ui_settings.sync()
