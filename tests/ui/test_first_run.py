"""The first run: examples in the library, a Start here panel that follows the session and then goes away."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QLabel
from pytestqt.qtbot import QtBot

from studio.core.examples import EXAMPLE_TAG
from studio.core.inference.fake import FakeBackend
from studio.core.templates import new_config
from studio.ui.context import AppContext
from studio.ui.first_run import STEPS, StartHerePanel, add_examples_once
from studio.ui.main_window import MainWindow
from studio.ui.window_layout import scrollable

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")


def _window(qtbot: QtBot, ctx: AppContext) -> MainWindow:
    window = MainWindow(ctx)
    qtbot.addWidget(window)
    window.show()
    return window


def test_first_start_fills_the_library_with_marked_examples_once(qtbot: QtBot, ctx: AppContext) -> None:
    assert add_examples_once(ctx) == 6
    assert add_examples_once(ctx) == 0
    window = _window(qtbot, ctx)
    model = window.library.model
    assert model.rowCount() == 6
    for row in range(model.rowCount()):
        assert model.data(model.index(row, 0)).startswith("Example: ")
        assert "An example to try" in model.data(model.index(row, 0), role=3)  # ToolTipRole
    assert window.start_here_dock.isVisible()


def test_examples_can_be_deleted_and_brought_back(qtbot: QtBot, ctx: AppContext) -> None:
    add_examples_once(ctx)
    window = _window(qtbot, ctx)
    window.open_config_id("example-film-production")
    assert window.delete_config("example-film-production", confirm=False)
    assert window.editor.config is None and window.library.model.rowCount() == 5
    assert add_examples_once(ctx) == 0  # a deleted example stays deleted across starts
    added = window.restore_examples()
    assert [c.id for c in added] == ["example-film-production"] and EXAMPLE_TAG in added[0].tags
    assert window.library.model.rowCount() == 6


def test_a_checked_config_cannot_be_deleted(qtbot: QtBot, ctx: AppContext, fake_backend: FakeBackend) -> None:
    add_examples_once(ctx)
    window = _window(qtbot, ctx)
    window.open_config_id("example-language-learning")
    window.check.limit_spin.setValue(1)
    with qtbot.waitSignal(window.check.run_finished, timeout=20000):
        assert window.check_open_config()
    assert not window.delete_config("example-language-learning", confirm=False)
    assert "check runs" in window.statusBar().currentMessage()
    assert ctx.store.configs.exists("example-language-learning")


def test_start_here_marks_steps_and_disappears_when_all_are_done(qtbot: QtBot, ctx: AppContext) -> None:
    window = _window(qtbot, ctx)
    panel = window.start_here
    assert window.start_here_dock.isVisible() and len(panel.marks) == len(STEPS)
    for step in STEPS[:-1]:
        panel.mark_done(step.key)
    assert window.start_here_dock.isVisible() and panel.marks[STEPS[0].key].text() == "✓"
    panel.mark_done(STEPS[-1].key)
    assert not window.start_here_dock.isVisible()
    window.close()
    again = _window(qtbot, ctx)
    assert not again.start_here_dock.isVisible()  # used once: it stays away on the next start
    again.start_here_action.trigger()
    assert again.start_here_dock.isVisible() and again.start_here.marks[STEPS[0].key].text() == "○"


def test_hiding_start_here_is_remembered(qtbot: QtBot, ctx: AppContext) -> None:
    window = _window(qtbot, ctx)
    window.start_here.hide_button.click()
    assert not window.start_here_dock.isVisible()
    window.close()
    assert not _window(qtbot, ctx).start_here_dock.isVisible()


def test_start_here_reads_fully_in_a_narrow_dock(qtbot: QtBot, ctx: AppContext) -> None:
    """At the library column's default width (about 260 pixels) no step name, button or the intro is cut off or
    needs scrolling sideways: names wrap, buttons sit under them."""
    panel = StartHerePanel(ctx, {step.key: lambda: None for step in STEPS})
    area = scrollable(panel)
    qtbot.addWidget(area)
    area.resize(260, 700)
    area.show()
    qtbot.wait(20)
    assert panel.width() <= area.viewport().width()
    assert not area.horizontalScrollBar().isVisible()
    for widget in [*panel.findChildren(QLabel), *panel.buttons.values(), panel.hide_button]:
        right = widget.mapTo(panel, widget.rect().topRight()).x()
        assert right <= panel.width(), widget.text()
        assert widget.width() >= widget.minimumSizeHint().width(), widget.text()


def test_start_here_steps_say_what_must_come_first(qtbot: QtBot, ctx: AppContext, fake_backend: FakeBackend) -> None:
    window = _window(qtbot, ctx)
    buttons = window.start_here.buttons
    assert buttons["template"].isEnabled() and buttons["probe"].isEnabled()
    assert not buttons["check"].isEnabled() and "Open a config" in buttons["check"].toolTip()
    assert not buttons["review"].isEnabled() and "Run a check first" in buttons["review"].toolTip()
    assert not buttons["submit"].isEnabled() and "Open a config" in buttons["submit"].toolTip()
    window.open_new_config(new_config("language-learning"))
    assert buttons["check"].isEnabled()
    assert not buttons["submit"].isEnabled() and "Save the config first" in buttons["submit"].toolTip()
    window.check.limit_spin.setValue(1)
    with qtbot.waitSignal(window.check.run_finished, timeout=20000):
        assert window.check_open_config()
    assert buttons["review"].isEnabled() and buttons["submit"].isEnabled()
