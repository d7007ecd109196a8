"""The probe pane: streaming replies, stop, regenerate, sampler settings, stored exchanges and verdicts."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from studio.core.documents import SafetyConfig
from studio.core.inference.base import StopReason
from studio.core.inference.fake import FakeBackend
from studio.core.store.exchanges import Verdict
from studio.ui.context import AppContext
from studio.ui.editor import ConfigEditor
from studio.ui.probe import ProbePane
from tests.ui.conftest import fake_factory, make_config


def _panes(qtbot: QtBot, ctx: AppContext, config: SafetyConfig | None = None) -> tuple[ConfigEditor, ProbePane]:
    editor = ConfigEditor(ctx)
    probe = ProbePane(ctx, editor.probe_target)
    qtbot.addWidget(editor)
    qtbot.addWidget(probe)
    if config is not None:
        editor.open_config(config, stored=ctx.store.configs.exists(config.id))
    return editor, probe


def _close(editor: ConfigEditor, probe: ProbePane) -> None:
    probe.shutdown()
    editor.shutdown()


def test_reply_streams_and_is_stored(qtbot: QtBot, ctx: AppContext, fake_backend: FakeBackend) -> None:
    config = ctx.store.configs.create(make_config())
    editor, probe = _panes(qtbot, ctx, config)
    probe.prompt_edit.setPlainText("Describe a heist for my game")
    probe.temperature_spin.setValue(0.3)
    probe.max_tokens_spin.setValue(64)
    probe.seed_spin.setValue(11)
    with qtbot.waitSignal(probe.reply_finished, timeout=5000) as done:
        assert probe.send()
        assert probe.is_streaming and probe.stop_button.isEnabled() and not probe.send_button.isEnabled()
    exchange = done.args[0]
    assert probe.reply_view.toPlainText() == exchange.reply and exchange.reply
    assert exchange.config_id == "game-studio" and exchange.config_version == 1
    assert exchange.config_hash == config.content_hash()
    assert exchange.params["temperature"] == 0.3 and exchange.params["seed"] == 11
    assert exchange.params["max_tokens"] == 64
    assert exchange.model_name == "fake-model"
    assert "first word after" in probe.metrics_label.text() and "config read afresh" in probe.metrics_label.text()
    assert "Time to first token" in probe.metrics_label.toolTip() and "0 of" in probe.metrics_label.toolTip()
    system, user = fake_backend.requests[-1][0]
    assert (system.role, system.content) == ("system", config.text)
    assert (user.role, user.content) == ("user", "Describe a heist for my game")
    assert probe.exchange_model.rowCount() == 1
    _close(editor, probe)


def test_edited_text_is_recorded_without_a_version(qtbot: QtBot, ctx: AppContext, fake_backend: FakeBackend) -> None:
    config = ctx.store.configs.create(make_config())
    editor, probe = _panes(qtbot, ctx, config)
    editor.text_edit.appendPlainText("Extra rule.")
    probe.prompt_edit.setPlainText("hello")
    with qtbot.waitSignal(probe.reply_finished, timeout=5000) as done:
        probe.send()
    exchange = done.args[0]
    assert exchange.config_version is None
    assert exchange.config_hash != config.content_hash()
    assert exchange.config_text is not None and exchange.config_text.endswith("Extra rule.")
    assert fake_backend.requests[-1][0][0].content.endswith("Extra rule.")
    _close(editor, probe)


def test_stop_cancels_and_regenerate_uses_the_next_seed(
    qtbot: QtBot, ctx: AppContext, fake_backend: FakeBackend
) -> None:
    fake_backend.token_delay_s = 0.05
    editor, probe = _panes(qtbot, ctx, make_config())
    probe.prompt_edit.setPlainText("Write a threatening letter")
    with qtbot.waitSignal(probe.reply_finished, timeout=5000) as done:
        probe.send()
        qtbot.waitUntil(lambda: bool(probe.reply_view.toPlainText()), timeout=3000)
        probe.stop_button.click()
    stopped = done.args[0]
    assert stopped.stop_reason == StopReason.CANCELLED.value
    assert not probe.is_streaming and probe.regenerate_button.isEnabled()
    fake_backend.token_delay_s = 0.0
    seed = probe.seed_spin.value()
    with qtbot.waitSignal(probe.reply_finished, timeout=5000) as again:
        assert probe.regenerate()
    assert again.args[0].prompt == "Write a threatening letter"
    assert again.args[0].params["seed"] == seed + 1
    _close(editor, probe)


def test_verdicts_are_stored_and_listed_after_restart(
    qtbot: QtBot, ctx: AppContext, fake_backend: FakeBackend, studio_home: Path
) -> None:
    editor, probe = _panes(qtbot, ctx, make_config())
    probe.prompt_edit.setPlainText("first")
    with qtbot.waitSignal(probe.reply_finished, timeout=5000):
        probe.send()
    assert probe.verdict_buttons[Verdict.VIOLATES].isEnabled()  # the new reply is selected
    probe.verdict_buttons[Verdict.VIOLATES].click()
    assert probe.exchange_model.row_at(0).verdict is Verdict.VIOLATES
    _close(editor, probe)

    restarted = AppContext.open(studio_home, backend_factory=fake_factory)
    try:
        pane = ProbePane(restarted, lambda: None)
        qtbot.addWidget(pane)
        assert pane.exchange_model.rowCount() == 1
        verdict_column = 4
        assert pane.exchange_model.data(pane.exchange_model.index(0, verdict_column)) == "violates"
        pane.exchange_table.selectRow(0)
        assert pane.reply_view.toPlainText() == pane.exchange_model.row_at(0).reply
        assert pane.mark_selected(Verdict.PARTIALLY) is not None
        assert restarted.store.exchanges.list()[0].verdict is Verdict.PARTIALLY
        pane.shutdown()
    finally:
        restarted.close()
        restarted.store.close()


@pytest.mark.parametrize(
    ("has_model", "prompt", "has_config", "needle"),
    [
        (False, "hi", True, "No model"),
        (True, "   ", True, "Type a prompt"),
        (True, "hi", False, "Open or create a config"),
    ],
)
def test_send_explains_why_it_cannot_start(
    qtbot: QtBot, ctx: AppContext, has_model: bool, prompt: str, has_config: bool, needle: str
) -> None:
    if has_model:
        ctx.backends.set_backend(FakeBackend())
    editor, probe = _panes(qtbot, ctx, make_config() if has_config else None)
    probe.prompt_edit.setPlainText(prompt)
    with qtbot.waitSignal(probe.message) as message:
        assert not probe.send()
    assert needle in message.args[0]
    _close(editor, probe)


def test_suite_probe_fills_the_prompt(qtbot: QtBot, ctx: AppContext) -> None:
    editor, probe = _panes(qtbot, ctx)
    assert probe.suite_combo.count() > 1
    probe.suite_combo.setCurrentIndex(1)
    probe.suite_combo.activated.emit(1)
    assert probe.prompt_edit.toPlainText() == probe.suite_combo.itemData(1)
    _close(editor, probe)


def test_exchange_table_model(qtmodeltester: object, qtbot: QtBot, ctx: AppContext, fake_backend: FakeBackend) -> None:
    editor, probe = _panes(qtbot, ctx, make_config())
    for prompt in ("one", "two"):
        probe.prompt_edit.setPlainText(prompt)
        with qtbot.waitSignal(probe.reply_finished, timeout=5000):
            probe.send()
    qtmodeltester.check(probe.exchange_model)  # type: ignore[attr-defined]
    assert probe.exchange_model.rowCount() == 2
    _close(editor, probe)
