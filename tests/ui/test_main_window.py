"""The main window: docks and their persisted layout, menus and shortcuts, files, status bar, clean shutdown."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from pytestqt.qtbot import QtBot

from studio.core.errors import BackendError
from studio.core.inference.base import Backend
from studio.core.inference.fake import FakeBackend
from studio.core.settings import InferenceSettings
from studio.core.store.exchanges import Verdict
from studio.core.templates import new_config
from studio.core.yamlio import dump_document
from studio.ui.backends import BackendManager
from studio.ui.context import AppContext
from studio.ui.main_window import MainWindow
from tests.ui.conftest import fake_factory, make_config

# The offscreen platform plugin cannot resize native windows to their size hints and says so when a main window
# with docks is shown; that message says nothing about the studio.
pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")


def _window(qtbot: QtBot, ctx: AppContext) -> MainWindow:
    window = MainWindow(ctx)
    qtbot.addWidget(window)
    window.show()
    return window


def test_standard_shortcuts_and_accessible_names(qtbot: QtBot, ctx: AppContext) -> None:
    window = _window(qtbot, ctx)
    keys = QKeySequence.StandardKey
    assert window.new_action.shortcut() == QKeySequence(keys.New)
    assert window.open_action.shortcut() == QKeySequence(keys.Open)
    assert window.save_action.shortcut() == QKeySequence(keys.Save)
    assert window.undo_action.shortcut() == QKeySequence(keys.Undo)
    assert window.find_action.shortcut() == QKeySequence(keys.Find)
    assert window.quit_action.shortcut() == QKeySequence(keys.Quit)
    assert not window.preferences_action.shortcut().isEmpty()
    for widget in (window.editor.text_edit, window.probe.prompt_edit, window.library.table, window.models.table):
        assert widget.accessibleName()
    window.close()


def test_status_bar_shows_the_loaded_model(qtbot: QtBot, ctx: AppContext) -> None:
    window = _window(qtbot, ctx)
    ctx.backends.set_backend(FakeBackend(name="tiny", context_length=1024))
    assert window.model_status.text() == "Model: tiny"
    assert window.device_status.text() == "| Device: CPU"
    assert window.context_status.text() == "| Context: 1024 tokens"
    window.close()


def test_dock_layout_persists(qtbot: QtBot, ctx: AppContext, studio_home: Path) -> None:
    window = _window(qtbot, ctx)
    assert window.models_dock.isHidden()
    assert [a.text() for a in window.view_menu.actions()] == ["Library", "Probe", "Models", "Start here"]
    window.library_dock.hide()
    window.show_models()
    window.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, window.probe_dock)
    window.close()
    assert (studio_home / "ui.ini").is_file()

    again = AppContext.open(studio_home, backend_factory=fake_factory)
    try:
        reopened = _window(qtbot, again)
        assert reopened.library_dock.isHidden()
        assert not reopened.models_dock.isHidden()
        assert reopened.dockWidgetArea(reopened.probe_dock) == Qt.DockWidgetArea.LeftDockWidgetArea
        reopened.close()
    finally:
        again.store.close()


def test_closing_during_generation_cancels_and_joins(qtbot: QtBot, ctx: AppContext) -> None:
    backend = FakeBackend(token_delay_s=0.2)
    ctx.backends.set_backend(backend)
    window = _window(qtbot, ctx)
    window.open_new_config(make_config())
    window.probe.prompt_edit.setPlainText("a long story please")
    assert window.probe.send()
    assert window.stop_action.isEnabled()
    window.close()
    assert not window.probe.is_streaming
    assert ctx.backends.backend is None  # closed with the window
    # the autouse fixture fails this test if any thread is still running


def test_open_import_recent_and_export(qtbot: QtBot, ctx: AppContext, tmp_path: Path) -> None:
    source = tmp_path / "policy.yaml"
    source.write_text(dump_document(make_config("imported", "Policy text from a file.")))
    window = _window(qtbot, ctx)
    config = window.open_file(source)
    assert config is not None and config.id == "imported"
    assert window.editor.config is not None and window.editor.config.id == "imported"
    assert ctx.recent_files() == [str(source)]
    assert [a.text() for a in window.recent_menu.actions()] == [str(source)]
    window.editor.text_edit.appendPlainText("An added line.")
    target = tmp_path / "out.yaml"
    assert window.export_to(target)
    assert "An added line." in target.read_text()
    assert ctx.recent_files()[0] == str(target)
    window.close()


def test_bad_file_gives_a_one_line_message(qtbot: QtBot, ctx: AppContext, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("format: cosa-studio/config/v1\nid: Bad Id\ntitle: x\nkind: free-form\ntext: hi\n")
    window = _window(qtbot, ctx)
    assert window.open_file(bad) is None
    message = window.statusBar().currentMessage()
    assert message.startswith(str(bad)) and "\n" not in message
    assert ctx.store.configs.list() == []
    window.close()


def test_new_config_save_and_library_refresh(qtbot: QtBot, ctx: AppContext) -> None:
    window = _window(qtbot, ctx)
    window.open_new_config(new_config("game-studio", config_id="my-game"))
    assert window.isWindowModified()
    saved = window.save()
    assert saved is not None
    assert [c.id for c in window.library.model.rows()] == ["my-game"]
    assert not window.isWindowModified()
    window.editor.close_config()
    window.library.table.activated.emit(window.library.model.index(0, 0))
    assert window.editor.config is not None and window.editor.config.id == "my-game"
    history = window.show_history()
    assert history is not None
    history.close()
    window.close()


def _failing_factory(path: Path, name: str, sha256: str | None, settings: InferenceSettings) -> Backend:
    raise BackendError(f"{path}: unknown model architecture 'mystery'")


def test_model_load_failure_is_a_message(qtbot: QtBot, ctx: AppContext, tmp_path: Path) -> None:
    ctx.backends = BackendManager(_failing_factory)
    window = _window(qtbot, ctx)
    with qtbot.waitSignal(ctx.backends.failed, timeout=3000):
        ctx.backends.load(tmp_path / "m.gguf", "m", None, ctx.settings.inference)
    assert window.load_error is not None and "unknown model architecture 'mystery'" in window.load_error
    assert window.model_status.text() == "No model loaded"
    assert not window.probe.send_button.isEnabled()
    window.close()


def test_full_probe_session_in_the_window(qtbot: QtBot, ctx: AppContext) -> None:
    ctx.backends.set_backend(FakeBackend(token_delay_s=0.005))
    window = _window(qtbot, ctx)
    window.open_new_config(make_config())
    window.save()
    window.probe.prompt_edit.setPlainText("hello there")
    with qtbot.waitSignal(window.probe.reply_finished, timeout=5000) as done:
        window.send_action.trigger()
    assert done.args[0].config_version == 1
    window.probe.verdict_buttons[Verdict.FOLLOWS].click()
    assert ctx.store.exchanges.list()[0].verdict is Verdict.FOLLOWS
    assert "Last reply: config read afresh" in window.cache_status.text()
    assert "Last reply: 0/" in window.cache_status.toolTip()
    window.close()


def test_default_model_loads_at_start(qtbot: QtBot, ctx: AppContext, tmp_path: Path) -> None:
    from tests.ui.test_models_pane import _gguf

    entry = ctx.registry.add(_gguf(tmp_path, "tiny-default.gguf", ctx=2048))
    window = _window(qtbot, ctx)
    with qtbot.waitSignal(ctx.backends.loaded, timeout=5000) as loaded:
        window.load_default_model()
    assert loaded.args[0].name == entry.name
    assert window.model_status.text() == f"Model: {entry.name}"
    window.close()


def test_start_gui_opens_the_window(qtbot: QtBot, studio_home: Path, tmp_path: Path) -> None:
    from studio.ui.app import start_gui

    source = tmp_path / "policy.yaml"
    source.write_text(dump_document(make_config("from-argv", "Text given on the command line.")))
    started = start_gui(["--no-model", str(source)])
    assert not isinstance(started, int)
    _app, window = started
    qtbot.addWidget(window)
    assert window.isVisible()
    assert window.editor.config is not None and window.editor.config.id == "from-argv"
    window.close()
    window.ctx.store.close()


def test_start_gui_refuses_a_newer_database(qtbot: QtBot, studio_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite_utils
    from PySide6.QtWidgets import QMessageBox

    from studio.core.errors import ExitCode
    from studio.ui.app import start_gui

    db = sqlite_utils.Database(studio_home / "studio.db")
    db["_migrations"].insert({"name": "9999_from_the_future", "applied_utc": "2030-01-01"}, pk="name")
    db.close()
    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "critical", lambda _parent, _title, text: shown.append(text))
    assert start_gui(["--no-model"]) == int(ExitCode.STATE)
    assert shown and "newer CoSA Studio" in shown[0]


def test_app_icon_comes_from_the_resources(qapp: object) -> None:
    from studio.ui.app import _app_icon

    icon = _app_icon()
    assert not icon.isNull()
    assert len(icon.availableSizes()) >= 4


def test_gui_start_skips_pandas_and_numpy_but_allows_them_later() -> None:
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from studio.ui.app import _import_sqlite_utils_lean\n"
        "_import_sqlite_utils_lean()\n"
        "import sqlite_utils.db as d\n"
        "print(d.np is None, d.pd is None, 'numpy' in sys.modules, 'pandas' in sys.modules)\n"
        "import numpy\n"
        "print(numpy.zeros(2).sum() == 0)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.split() == ["True", "True", "False", "False", "True"]


def test_keyboard_send_and_stop_in_the_window(qtbot: QtBot, ctx: AppContext) -> None:
    ctx.backends.set_backend(FakeBackend(token_delay_s=0.05))
    window = _window(qtbot, ctx)
    with qtbot.waitActive(window):
        window.activateWindow()
    window.open_new_config(make_config())
    window.probe.prompt_edit.setPlainText("a story")
    window.probe.prompt_edit.setFocus()
    with qtbot.waitSignal(window.probe.reply_finished, timeout=5000) as done:
        qtbot.keyClick(window.probe.prompt_edit, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
        qtbot.waitUntil(lambda: bool(window.probe.reply_view.toPlainText()), timeout=3000)
        qtbot.keyClick(window.probe.prompt_edit, Qt.Key.Key_Escape)
    assert done.args[0].stop_reason == "cancelled"
    window.close()


def test_unsaved_text_from_a_crash_is_offered_at_start(qtbot: QtBot, ctx: AppContext, studio_home: Path) -> None:
    window = _window(qtbot, ctx)
    window.open_new_config(make_config("crashy", "Text typed before the crash."))
    window.editor.autosave()
    # Simulate a crash: the window goes away without saving and without closing the context.
    window.editor.shutdown()
    window.probe.shutdown()
    again = AppContext.open(studio_home, backend_factory=fake_factory)
    try:
        reopened = _window(qtbot, again)
        assert not reopened.editor.recovery_bar.isHidden()
        reopened.editor.restore_button.click()
        assert reopened.editor.config is not None and reopened.editor.config.id == "crashy"
        assert reopened.editor.text_edit.toPlainText() == "Text typed before the crash."
        assert reopened.save() is not None
        assert again.store.drafts.list() == []
        reopened.close()
    finally:
        again.store.close()
    window.close()
