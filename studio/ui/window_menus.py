"""The window's actions, its menus and its toolbar: every command the window offers, where it is listed and which
key reaches it. Mixed into :class:`studio.ui.main_window.MainWindow`, whose panes and commands the actions call."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu, QToolBar

if TYPE_CHECKING:
    from studio.ui.context import AppContext
    from studio.ui.editor import ConfigEditor
    from studio.ui.probe import ProbePane


class WindowMenus:
    """Builds the actions (``*_action`` attributes), the menu bar and the main toolbar of the window (a
    ``QMainWindow``)."""

    ctx: AppContext
    editor: ConfigEditor
    probe: ProbePane
    view_menu: QMenu
    recent_menu: QMenu

    def _action(
        self,
        text: str,
        slot: object,
        shortcut: QKeySequence | QKeySequence.StandardKey | str | None = None,
        tip: str = "",
    ) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        if tip:
            action.setStatusTip(tip)
            action.setToolTip(tip)
        action.triggered.connect(slot)
        return action

    def _build_actions(self) -> None:
        keys = QKeySequence.StandardKey
        self.new_action = self._action("&New from template…", self.new_from_template, keys.New, "New config")
        self.open_action = self._action("&Open…", self.open_file_dialog, keys.Open, "Import a config file")
        self.save_action = self._action("&Save", self.save, keys.Save, "Save a new version of the config")
        self.export_action = self._action("&Export as…", self.export_dialog, keys.SaveAs, "Write the config to a file")
        self.quit_action = self._action("&Quit", self.close, keys.Quit)
        self.undo_action = self._action("&Undo", self.editor.text_edit.undo, keys.Undo)
        self.redo_action = self._action("&Redo", self.editor.text_edit.redo, keys.Redo)
        self.undo_action.setEnabled(False)
        self.redo_action.setEnabled(False)
        self.editor.text_edit.undoAvailable.connect(self.undo_action.setEnabled)
        self.editor.text_edit.redoAvailable.connect(self.redo_action.setEnabled)
        self.find_action = self._action("&Find…", self.editor.show_find, keys.Find)
        self.preferences_action = self._action("&Preferences…", self.show_preferences, keys.Preferences)
        if self.preferences_action.shortcut().isEmpty():
            self.preferences_action.setShortcut(QKeySequence("Ctrl+,"))
        self.history_action = self._action("Version &history…", self.show_history, "Ctrl+H")
        self.models_action = self._action("&Model manager", self.show_models, "Ctrl+M")
        self.check_action = self._action("&Check…", self.show_check, None, "Check configs on a probe suite")
        self.check_open_action = self._action(
            "Check &this config", self.check_open_config, "Ctrl+Shift+K", "Run the open config's own suite now"
        )
        self.side_by_side_action = self._action(
            "&Side by side…", self.show_side_by_side, "Ctrl+Shift+B", "One probe, two configs or models, live"
        )
        self.compare_action = self._action("C&ompare…", self.show_compare, None, "Compare two configs or models")
        self.run_history_action = self._action("Run hi&story", self.show_run_history, None, "Runs of the config")
        self.train_action = self._action("&Train…", self.show_train, None, "Train a model on marked exchanges")
        self.approval_action = self._action("Review and &approval…", self.show_approval, None, "Approve or export")
        self.draft_probes_action = self._action(
            "&Draft probes…", self.show_probe_drafts, None, "Draft probes for the config with a model"
        )
        # Ctrl+Enter (send) and Esc (stop) are shortcuts of the probe pane itself, so they work wherever it is docked.
        self.send_action = self._action("&Send probe", self.probe.send, None, "Send the prompt (Ctrl+Enter)")
        self.stop_action = self._action("S&top", self.probe.stop, None, "Stop the reply (Esc)")
        self.regenerate_action = self._action("&Regenerate", self.probe.regenerate, "Ctrl+R")
        self.stop_action.setEnabled(False)
        self.start_here_action = self._action("&Start here", self.show_start_here, None, "The first steps, again")
        self.examples_action = self._action(
            "Add the &example configs", self.restore_examples, None, "Put the example configs back in the library"
        )
        self.glossary_action = self._action(
            "&Glossary", lambda: self.show_glossary(), QKeySequence.StandardKey.HelpContents, "Words explained"
        )

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.addAction(self.new_action)
        file_menu.addAction(self.open_action)
        self.recent_menu = QMenu("Open &recent", self)
        file_menu.addMenu(self.recent_menu)
        file_menu.addSeparator()
        file_menu.addAction(self.save_action)
        file_menu.addAction(self.export_action)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)
        edit_menu = bar.addMenu("&Edit")
        edit_menu.addAction(self.undo_action)
        edit_menu.addAction(self.redo_action)
        edit_menu.addSeparator()
        edit_menu.addAction(self.find_action)
        edit_menu.addSeparator()
        edit_menu.addAction(self.preferences_action)
        config_menu = bar.addMenu("&Config")
        config_menu.addAction(self.history_action)
        config_menu.addAction(self.approval_action)
        config_menu.addAction(self.draft_probes_action)
        evaluate_menu = bar.addMenu("E&valuate")
        for action in (
            self.check_open_action,
            self.check_action,
            self.side_by_side_action,
            self.compare_action,
            self.run_history_action,
        ):
            evaluate_menu.addAction(action)
        probe_menu = bar.addMenu("&Probe")
        probe_menu.addAction(self.send_action)
        probe_menu.addAction(self.stop_action)
        probe_menu.addAction(self.regenerate_action)
        models_menu = bar.addMenu("&Models")
        models_menu.addAction(self.models_action)
        models_menu.addAction(self.train_action)
        bar.addMenu(self.view_menu)
        self.help_menu = bar.addMenu("&Help")
        self.help_menu.addAction(self.start_here_action)
        self.help_menu.addAction(self.glossary_action)
        self.help_menu.addSeparator()
        self.help_menu.addAction(self.examples_action)

    def _build_toolbar(self) -> None:
        toolbar = QToolBar("Main toolbar", self)
        toolbar.setObjectName("mainToolbar")
        toolbar.setAccessibleName("Main toolbar")
        self.addToolBar(toolbar)
        for action in (self.new_action, self.open_action, self.save_action):
            toolbar.addAction(action)
        toolbar.addSeparator()
        toolbar.addAction(self.undo_action)
        toolbar.addAction(self.redo_action)
        toolbar.addSeparator()
        for action in (self.send_action, self.stop_action, self.regenerate_action):
            toolbar.addAction(action)
        toolbar.addSeparator()
        toolbar.addAction(self.models_action)

    def _update_recent_menu(self) -> None:
        self.recent_menu.clear()
        recent = self.ctx.recent_files()
        for entry in recent:
            action = self.recent_menu.addAction(entry)
            action.triggered.connect(lambda _checked=False, p=entry: self.open_file(Path(p)))
        self.recent_menu.setEnabled(bool(recent))
