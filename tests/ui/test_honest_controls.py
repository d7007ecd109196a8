"""Every message visible, every control honest: room for messages, disabled controls that say why, a window that
stays on its screen, the check that matches the open config, plain words with a glossary behind them."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QByteArray
from pytestqt.qtbot import QtBot

from studio.core.inference.fake import FakeBackend
from studio.core.templates import new_config
from studio.ui.context import AppContext
from studio.ui.glossary import ENTRIES, GlossaryDialog, tip
from studio.ui.main_window import MainWindow
from tests.ui.conftest import make_config

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")


def _window(qtbot: QtBot, ctx: AppContext) -> MainWindow:
    window = MainWindow(ctx)
    qtbot.addWidget(window)
    window.show()
    return window


def test_status_messages_have_room_beside_the_permanent_fields(qtbot: QtBot, ctx: AppContext) -> None:
    ctx.backends.set_backend(FakeBackend(name="a-model-with-a-rather-long-name-q4_k_m", token_delay_s=0.001))
    window = _window(qtbot, ctx)
    window.open_new_config(make_config())
    window.probe.prompt_edit.setPlainText("hello")
    with qtbot.waitSignal(window.probe.reply_finished, timeout=5000):
        window.probe.send()
    qtbot.wait(10)
    bar = window.statusBar()
    fields = [window.model_status, window.device_status, window.context_status, window.cache_status]
    leftmost = min(field.geometry().x() for field in fields if field.isVisible())
    assert leftmost >= bar.width() * 0.45, "the permanent fields leave too little of the bar for messages"


def test_send_is_disabled_without_a_config_and_says_why(
    qtbot: QtBot, ctx: AppContext, fake_backend: FakeBackend
) -> None:
    window = _window(qtbot, ctx)
    window.probe.prompt_edit.setPlainText("hello")
    assert not window.probe.send_button.isEnabled() and not window.send_action.isEnabled()
    assert "Open or create a config" in window.probe.send_button.toolTip()
    assert "Open or create a config" in window.send_action.toolTip()
    window.probe.send()  # the keyboard shortcut still reaches send(): its refusal is shown
    assert "Open or create a config" in window.statusBar().currentMessage()
    window.open_new_config(make_config())
    assert window.probe.send_button.isEnabled() and window.send_action.isEnabled()
    window.probe.prompt_edit.clear()
    assert not window.probe.send_button.isEnabled()
    assert "Type a prompt" in window.probe.send_button.toolTip()


def test_opening_the_check_pane_keeps_the_window_on_its_screen(qtbot: QtBot, ctx: AppContext) -> None:
    window = _window(qtbot, ctx)
    available = window.screen().availableGeometry()
    for show in (window.show_check, window.show_compare, window.show_train, window.show_models):
        show()
        qtbot.wait(10)
        assert window.width() <= available.width() and window.height() <= available.height(), show.__name__


def test_check_pane_picks_the_suite_of_the_open_config(
    qtbot: QtBot, ctx: AppContext, fake_backend: FakeBackend
) -> None:
    window = _window(qtbot, ctx)
    stored = ctx.store.configs.create(new_config("game-studio"))
    window.open_config_id(stored.id)
    window.show_check()
    assert window.check.suite_combo.currentData() == "scenario-game-studio"
    assert window.check.checked_config_ids() == [stored.id]
    assert window.check.run_button.isEnabled()
    categorical = ctx.store.configs.create(new_config("categorical", allowed=["violence"], seed=1))
    window.open_config_id(categorical.id)
    window.show_check()
    assert window.check.suite_combo.currentData() == "categorical-violence"
    assert window.check.chosen_suite() is not None
    window.check.select_configs([])
    assert not window.check.run_button.isEnabled()
    assert "Tick at least one config" in window.check.run_button.toolTip()


def test_layout_is_saved_per_screen(qtbot: QtBot, ctx: AppContext) -> None:
    window = _window(qtbot, ctx)
    key = window.layout_key()
    window.save_layout()
    assert isinstance(ctx.ui_settings.value(f"{key}/geometry"), QByteArray)
    assert ctx.ui_settings.value("layouts/other_screen_3840x2160/geometry") is None
    assert f"{window.screen().availableGeometry().width()}x" in key


def test_glossary_explains_the_words_a_policy_author_meets(qtbot: QtBot, ctx: AppContext) -> None:
    window = _window(qtbot, ctx)
    dialog = window.show_glossary("Valid rate")
    assert isinstance(dialog, GlossaryDialog)
    text = dialog.browser.toPlainText()
    for term in ("CoSA-Score", "Valid rate", "Cascade", "Kappa (κ)", "Gate"):
        assert term in text
    assert len({e.term for e in ENTRIES}) == len(ENTRIES)
    assert tip("valid rate").startswith("Valid rate: ")
    assert window.check.headline.toolTip().count("Glossary") == 2
    dialog.close()


def test_the_first_check_is_one_click_away(qtbot: QtBot, ctx: AppContext, fake_backend: FakeBackend) -> None:
    window = _window(qtbot, ctx)
    assert not window.check_open_config()
    assert "Open or create a config" in window.statusBar().currentMessage()
    window.open_new_config(new_config("language-learning"))
    window.check.limit_spin.setValue(2)  # kept across refreshes: two probes keep the test short
    with qtbot.waitSignal(window.check.run_finished, timeout=20000) as finished:
        assert window.check_open_config()
    record = window.check.runs.get_run(finished.args[0])
    assert record.suite_id == "scenario-language-learning"
    assert window.check_dock.isVisible()
    assert ctx.store.configs.exists("language-learning-app-for-adults")
