"""The probe pane streaming from the embedded SmolLM2 model through llama.cpp."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from studio.core.inference.base import StopReason
from studio.core.inference.embedded import SHA256
from studio.ui.context import AppContext
from studio.ui.editor import ConfigEditor
from studio.ui.probe import ProbePane
from tests.ui.conftest import make_config


@pytest.mark.real_model
def test_probe_streams_from_the_embedded_model(qtbot: QtBot, ctx: AppContext, embedded_model: Path) -> None:
    from studio.core.inference.llama_backend import LlamaCppBackend, LlamaSettings

    backend = LlamaCppBackend(
        embedded_model,
        LlamaSettings(gpu="cpu", max_context=512, n_threads=2),
        name="smollm2",
        model_sha256=SHA256,
    )
    ctx.backends.set_backend(backend)
    editor = ConfigEditor(ctx)
    probe = ProbePane(ctx, editor.probe_target)
    qtbot.addWidget(editor)
    qtbot.addWidget(probe)
    editor.open_config(make_config(text="You help a game studio write fiction. Keep answers short."), stored=False)
    probe.prompt_edit.setPlainText("Name one colour.")
    probe.max_tokens_spin.setValue(16)
    probe.temperature_spin.setValue(0.0)
    updates: list[str] = []
    probe._worker.text_arrived.connect(updates.append)
    with qtbot.waitSignal(probe.reply_finished, timeout=120_000) as done:
        assert probe.send()
    exchange = done.args[0]
    assert exchange.reply.strip()
    assert "".join(updates) == exchange.reply == probe.reply_view.toPlainText()
    assert exchange.model_sha256 == SHA256
    assert exchange.stop_reason in {StopReason.STOP.value, StopReason.LENGTH.value}
    assert 0 < exchange.completion_tokens <= 16
    assert exchange.ttft_s is not None and exchange.ttft_s > 0
    probe.shutdown()
    editor.shutdown()


@pytest.mark.real_model
def test_backend_manager_loads_the_embedded_model_off_the_gui_thread(qtbot: QtBot, embedded_model: Path) -> None:
    from studio.core.settings import InferenceSettings
    from studio.ui.backends import BackendManager, llama_backend_factory

    manager = BackendManager(llama_backend_factory)
    with qtbot.waitSignal(manager.loaded, timeout=120_000) as loaded:
        manager.load(embedded_model, "smollm2", SHA256, InferenceSettings(gpu="cpu", max_context=512))
        assert manager.is_loading and manager.backend is None
    info = loaded.args[0]
    assert info.name == "smollm2" and info.context_length == 512 and info.gpu_layers == 0
    assert info.model_sha256 == SHA256
    count = manager.count_tokens("Keep answers short.")
    assert count is not None and 0 < count < 10
    manager.shutdown()
    assert manager.backend is None
