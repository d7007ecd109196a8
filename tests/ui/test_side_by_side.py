"""Live side by side in the window: draft against last approved, two configs, two models; marks and exchanges."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from studio.core.documents import ConfigStatus
from studio.core.inference.fake import FakeBackend
from studio.core.store.exchanges import Verdict
from studio.ui.context import AppContext
from studio.ui.editor import ConfigEditor
from studio.ui.main_window import MainWindow
from studio.ui.side_by_side import DRAFT, TWO_CONFIGS, TWO_MODELS, SideBySidePane
from tests.ui.conftest import fake_factory, make_config

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")


def _pane(qtbot: QtBot, ctx: AppContext) -> tuple[ConfigEditor, SideBySidePane]:
    editor = ConfigEditor(ctx)
    pane = SideBySidePane(ctx, editor.probe_target, backend_factory=fake_factory)
    qtbot.addWidget(editor)
    qtbot.addWidget(pane)
    return editor, pane


def _approved_then_edited(ctx: AppContext) -> None:
    first = ctx.store.configs.create(make_config(text="Dark fiction is fine. No real recipes."))
    ctx.store.configs.set_status(first.id, first.version, ConfigStatus.APPROVED)
    ctx.store.configs.save(make_config(text="Dark fiction is fine. No real recipes. No slurs."))


def test_draft_against_last_approved_streams_both_sides(
    qtbot: QtBot, ctx: AppContext, fake_backend: FakeBackend
) -> None:
    _approved_then_edited(ctx)
    editor, pane = _pane(qtbot, ctx)
    editor.open_config(ctx.store.configs.latest("game-studio"), stored=True)
    editor.text_edit.appendPlainText("Keep it short.")
    pane.refresh()
    assert pane.sides[0].config_combo.currentData() == DRAFT
    assert pane.sides[1].config_combo.currentData() == "game-studio@1"  # the approved one, not the latest v2
    diff = pane.diff_view.toPlainText()
    assert "No slurs." in diff and "Keep it short." in diff
    assert not pane.send_button.isEnabled() and "Type a probe" in pane.send_button.toolTip()
    pane.prompt_edit.setPlainText("Write a threat\nDescribe a wound")
    with qtbot.waitSignal(pane.streaming_changed, timeout=10000, check_params_cb=lambda on: not on):
        assert pane.send()
    systems = [request[0][0].content for request in fake_backend.requests]
    assert systems[0] == editor.text_edit.toPlainText() and systems[1] == ctx.store.configs.get("game-studio", 1).text
    assert len(systems) == 4
    for side in pane.sides:
        text = side.reply_view.toPlainText()
        assert "▶ Write a threat" in text and "▶ Describe a wound" in text
        assert "first word after" in side.timing.text()
    stored = ctx.store.exchanges.list()
    assert len(stored) == 4
    assert {(e.config_version, e.prompt) for e in stored} >= {(1, "Describe a wound"), (None, "Describe a wound")}
    marked = pane.mark(1, Verdict.VIOLATES)
    assert marked is not None and marked.config_version == 1 and marked.prompt == "Describe a wound"
    assert ctx.store.exchanges.get(marked.id).verdict is Verdict.VIOLATES
    pane.shutdown()
    editor.shutdown()


def test_two_configs_and_two_models(qtbot: QtBot, ctx: AppContext, fake_backend: FakeBackend, tmp_path: Path) -> None:
    from tests.ui.test_models_pane import _gguf

    ctx.store.configs.create(make_config("game-studio", text="Game rules."))
    ctx.store.configs.create(make_config("publisher", text="Publisher rules."))
    ctx.registry.add(_gguf(tmp_path, "second-model.gguf", ctx=2048))
    editor, pane = _pane(qtbot, ctx)
    editor.open_config(ctx.store.configs.latest("game-studio"), stored=True)
    pane.mode_combo.setCurrentIndex(TWO_CONFIGS)
    assert pane.sides[1].config_combo.currentData() == "publisher@1"
    pane.mode_combo.setCurrentIndex(TWO_MODELS)
    assert pane.sides[1].config_combo.currentData() == DRAFT
    assert pane.sides[1].model_combo.currentData() == "second-model"
    pane.prompt_edit.setPlainText("hello")
    with qtbot.waitSignal(pane.streaming_changed, timeout=10000, check_params_cb=lambda on: not on):
        assert pane.send()
    models = sorted(e.model_name for e in ctx.store.exchanges.list())
    assert models == ["fake-model", "second-model"]
    assert len(fake_backend.requests) == 1  # side B ran on its own backend
    pane.shutdown()
    editor.shutdown()


def test_side_by_side_from_the_window(qtbot: QtBot, ctx: AppContext, fake_backend: FakeBackend) -> None:
    _approved_then_edited(ctx)
    window = MainWindow(ctx)
    qtbot.addWidget(window)
    window.show()
    window.open_config_id("game-studio")
    window.probe.prompt_edit.setPlainText("Write a threat")
    window.side_by_side_action.trigger()
    assert window.side_by_side_dock.isVisible()
    assert window.side_by_side.prompt_edit.toPlainText() == "Write a threat"
    assert window.side_by_side.sides[1].config_combo.currentData() == "game-studio@1"
    with qtbot.waitSignal(window.side_by_side.streaming_changed, timeout=10000, check_params_cb=lambda on: not on):
        assert window.side_by_side.send()
    assert window.probe.exchange_model.rowCount() == 2
    window.close()
