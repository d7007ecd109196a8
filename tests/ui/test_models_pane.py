"""The model manager: registry table, default, loading through the backend manager, Hub download with cancel."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from studio.core.inference.registry import ModelEntry
from studio.core.paths import models_dir
from studio.ui.context import AppContext
from studio.ui.models_pane import ModelManagerPane
from tests.core.hub_standin import HubStandin, point_library_at
from tests.core.test_gguf import STRING, UINT32, build_gguf


def _gguf(folder: Path, name: str, arch: str = "llama", ctx: int = 2048) -> Path:
    meta = [("general.architecture", STRING, arch), (f"{arch}.context_length", UINT32, ctx)]
    meta.append(("general.file_type", UINT32, 15))
    path = folder / name
    path.write_bytes(build_gguf(meta))
    return path


def _pane(qtbot: QtBot, ctx: AppContext) -> ModelManagerPane:
    pane = ModelManagerPane(ctx)
    qtbot.addWidget(pane)
    return pane


def _add(qtbot: QtBot, pane: ModelManagerPane, path: Path) -> ModelEntry:
    with qtbot.waitSignal(pane.added, timeout=5000) as added:
        pane.add_file(path)
    entry = added.args[0]
    assert isinstance(entry, ModelEntry)
    return entry


def test_registry_table_and_default(qtbot: QtBot, ctx: AppContext, tmp_path: Path, qtmodeltester: object) -> None:
    pane = _pane(qtbot, ctx)
    _add(qtbot, pane, _gguf(tmp_path, "tiny-a.gguf"))
    second = _add(qtbot, pane, _gguf(tmp_path, "tiny-b.gguf", arch="qwen2", ctx=4096))
    qtmodeltester.check(pane.model)  # type: ignore[attr-defined]
    assert pane.model.rowCount() == 2
    headers = [pane.model.headerData(c, Qt.Orientation.Horizontal) for c in range(pane.model.columnCount())]
    assert headers[:7] == ["Name", "Architecture", "Quant", "Size", "Context", "SHA-256", "Source"]
    assert headers[7:] == ["Model id", "At once", "API key"]  # filled for endpoints
    row = [pane.model.data(pane.model.index(1, c)) for c in range(pane.model.columnCount())]
    assert row[0] == "tiny-b" and row[1] == "qwen2" and row[4] == "4096"
    assert row[5] == second.sha256[:12] and row[6] == "disk"
    assert pane.model.data(pane.model.index(0, 0)) == "tiny-a  (default)"
    pane.select_name("tiny-b")
    pane.default_button.click()
    assert ctx.registry.default().name == "tiny-b"
    assert pane.model.data(pane.model.index(1, 0)) == "tiny-b  (default)"
    pane.select_name("tiny-a")
    pane.remove_button.click()
    assert [m.name for m in ctx.registry.list()] == ["tiny-b"]
    pane.shutdown()


def test_broken_file_gives_a_message(qtbot: QtBot, ctx: AppContext, tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"not a gguf at all")
    pane = _pane(qtbot, ctx)
    with qtbot.waitSignal(pane.message, timeout=5000) as message:
        pane.add_file(broken)
    assert str(broken) in message.args[0]
    assert pane.model.rowCount() == 0
    pane.shutdown()


def test_loading_the_selected_model_swaps_the_backend(qtbot: QtBot, ctx: AppContext, tmp_path: Path) -> None:
    pane = _pane(qtbot, ctx)
    _add(qtbot, pane, _gguf(tmp_path, "tiny-a.gguf"))
    pane.select_name("tiny-a")
    pane.context_spin.setValue(1024)
    assert ctx.settings.inference.max_context == 1024
    with qtbot.waitSignal(ctx.backends.loaded, timeout=3000) as loaded:
        pane.load_button.click()
    assert loaded.args[0].name == "tiny-a" and loaded.args[0].context_length == 1024
    assert "Loaded: tiny-a" in pane.current_label.text()
    pane.gpu_combo.setCurrentIndex(pane.gpu_combo.findData("layers"))
    pane.gpu_layers_spin.setValue(12)
    assert ctx.settings.inference.gpu == 12
    pane.shutdown()


@pytest.mark.network_local
def test_download_progress_cancel_resume_and_register(
    qtbot: QtBot, ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real download from the stand-in Hub into the temporary home's model store and database."""
    meta = [("general.architecture", STRING, "llama"), ("llama.context_length", UINT32, 512)]
    data = build_gguf(meta, [("w", [262144, 3], 0)])  # about 3 MiB: many chunks to cancel between
    with HubStandin() as standin:
        standin.add_file("someone/tiny-GGUF", "model-q4.gguf", data)
        standin.chunk_delay_s = 0.05
        point_library_at(monkeypatch, standin.endpoint)
        pane = _pane(qtbot, ctx)
        pane.repo_edit.setText("someone/tiny-GGUF")
        pane.list_button.click()
        qtbot.waitUntil(lambda: pane.file_combo.count() == 1, timeout=5000)
        assert pane.file_combo.itemData(0) == "model-q4.gguf"
        pane.download_button.click()
        assert pane.cancel_button.isEnabled() and not pane.download_button.isEnabled()
        qtbot.waitUntil(lambda: 0 < pane.progress_bar.value() < 1000, timeout=5000)
        with qtbot.waitSignal(pane.message, timeout=5000) as message:
            pane.cancel_button.click()
        assert "cancelled" in message.args[0]
        part = models_dir() / "model-q4.gguf.part"
        assert 0 < part.stat().st_size < len(data)
        standin.chunk_delay_s = 0.0
        pane.download_button.click()
        qtbot.waitUntil(lambda: "Downloaded" in pane.progress_label.text(), timeout=5000)
        pane.shutdown()
    assert pane.progress_bar.value() == 1000
    assert (models_dir() / "model-q4.gguf").read_bytes() == data
    assert any(r.range is not None for r in standin.requests if r.path.startswith("/cdn/"))  # resumed
    entry = ctx.registry.find_by_path(models_dir() / "model-q4.gguf")
    assert entry is not None and entry.source == "hub:someone/tiny-GGUF/model-q4.gguf"
    assert pane.model.rowCount() == 1


def test_a_second_load_waits_for_the_first(qtbot: QtBot, tmp_path: Path) -> None:
    import time

    from studio.core.inference.base import Backend
    from studio.core.inference.fake import FakeBackend
    from studio.core.settings import InferenceSettings
    from studio.ui.backends import BackendManager

    def slow_factory(path: Path, name: str, sha256: str | None, settings: InferenceSettings) -> Backend:
        time.sleep(0.2)
        return FakeBackend(name=name)

    manager = BackendManager(slow_factory)
    settings = InferenceSettings()
    with qtbot.waitSignal(manager.loaded, timeout=3000) as loaded:
        assert manager.load(tmp_path / "a.gguf", "a", None, settings)
        assert not manager.load(tmp_path / "b.gguf", "b", None, settings)
    assert loaded.args[0].name == "a"
    assert manager.load(tmp_path / "b.gguf", "b", None, settings)
    manager.shutdown()
    assert manager.backend is None
