"""One list of the models a pane can run, and one way to open the chosen one: the model loaded in the window, a
registered GGUF file, or a registered OpenAI-compatible endpoint. The Check pane, probe drafting and Side by side
all offer the same choices through this module."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from PySide6.QtWidgets import QComboBox

from studio.core.inference.base import Backend
from studio.core.inference.endpoints import find_endpoint, list_endpoints, open_endpoint
from studio.ui.backends import BackendFactory
from studio.ui.context import AppContext

LOADED_MODEL = ""  # choice data of "the model loaded in the window"

#: Opens the chosen backend on a worker thread; True when the caller owns it and must close it.
Opener = Callable[[], tuple[Backend, bool]]


def add_model_choices(combo: QComboBox, ctx: AppContext, *, offer_unloaded: bool = False) -> None:
    """Append the loaded model (when there is one, or always with ``offer_unloaded``), then every registered file
    and endpoint other than the loaded one. The caller clears the combo and keeps its own extra choices."""
    loaded = ctx.backends.info
    if loaded is not None:
        combo.addItem(f"Loaded model: {loaded.name}", LOADED_MODEL)
    elif offer_unloaded:
        combo.addItem("The loaded model", LOADED_MODEL)
    loaded_name = loaded.name if loaded is not None else None
    for entry in ctx.registry.list():
        if entry.name != loaded_name:
            combo.addItem(entry.name, entry.name)
    for endpoint in list_endpoints(ctx.store):
        if endpoint.name != loaded_name:
            combo.addItem(f"{endpoint.name} (endpoint: {endpoint.model_id})", endpoint.name)


def model_opener(ctx: AppContext, choice: str, factory: BackendFactory) -> Opener:
    """Resolve ``choice`` now (on the calling thread) and return the call that opens it (run it on a worker)."""
    if choice == LOADED_MODEL:
        loaded = ctx.backends.backend
        if loaded is None:
            raise RuntimeError("no model is loaded")
        return lambda: (loaded, False)
    endpoint = find_endpoint(ctx.store, choice)
    if endpoint is not None:
        return lambda: (open_endpoint(endpoint), True)
    entry = ctx.registry.get(choice)
    settings = ctx.settings.inference
    return lambda: (factory(entry.path, entry.name, entry.sha256, settings), True)


def choice_for_name(ctx: AppContext, name: str) -> str | None:
    """The choice that opens the model recorded as ``name`` (the loaded model first, then the registered files and
    endpoints), or None when none of them has that name: how a stored run finds its models again."""
    loaded = ctx.backends.info
    if loaded is not None and loaded.name == name:
        return LOADED_MODEL
    if any(entry.name == name for entry in ctx.registry.list()):
        return name
    if find_endpoint(ctx.store, name) is not None:
        return name
    return None


@contextlib.contextmanager
def opened(*openers: Opener) -> Iterator[list[Backend]]:
    """Open every backend (on the worker thread that uses them) and close, on the way out, the ones opened here;
    the window's loaded model stays loaded. A failure part-way closes what was already opened."""
    owned: list[Backend] = []
    backends: list[Backend] = []
    try:
        for opener in openers:
            backend, owns = opener()
            backends.append(backend)
            if owns:
                owned.append(backend)
        yield backends
    finally:
        for backend in reversed(owned):
            backend.close()
