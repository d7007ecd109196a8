"""The studio window: config library, editor, probe pane and model manager in dock widgets."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, Qt
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence, QResizeEvent, QShowEvent
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QFrame,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QScrollArea,
    QSizePolicy,
    QToolBar,
    QWidget,
)

from studio import __version__
from studio.core.documents import ConfigStatus, ProbeSuite, SafetyConfig
from studio.core.errors import StudioError
from studio.core.examples import add_examples
from studio.core.fileio import atomic_write_text
from studio.core.inference.base import BackendInfo
from studio.core.settings import current_identity
from studio.core.store.drafts import draft_key
from studio.core.store.exchanges import Exchange
from studio.core.yamlio import dump_document, load_document
from studio.ui.approval_dialog import ApprovalDialog
from studio.ui.availability import offer
from studio.ui.check.pane import CheckPane
from studio.ui.compare_pane import ComparePane
from studio.ui.context import AppContext
from studio.ui.drafts.dialog import ProbeDraftDialog
from studio.ui.editor import ConfigEditor
from studio.ui.first_run import StartHerePanel
from studio.ui.glossary import GlossaryDialog, tip
from studio.ui.history import HistoryDialog
from studio.ui.history_pane import HistoryPane
from studio.ui.library import LibraryPane
from studio.ui.models_pane import ModelManagerPane
from studio.ui.preferences import PreferencesDialog
from studio.ui.probe import ProbePane
from studio.ui.side_by_side import SideBySidePane
from studio.ui.template_dialog import TemplateDialog
from studio.ui.train_pane import TrainPane
from studio.ui.wording import cache_words
from studio.ui.workers import TaskRunner

STATE_VERSION = 1
#: Index of the "Items and review" tab of the Check pane.
REVIEW_TAB = 1
#: Share of the status bar each permanent field may take at most; the rest (over half) is for messages.
STATUS_MODEL_SHARE = 0.14
STATUS_DEVICE_SHARE = 0.09
STATUS_CACHE_SHARE = 0.14
CONFIG_FILE_FILTER = "Safety configs (*.yaml *.yml)"


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.1f} MiB"


def scrollable(widget: QWidget) -> QScrollArea:
    """``widget`` in a frameless scroll area that resizes it, so its minimum size never forces the window's."""
    area = QScrollArea()
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setWidgetResizable(True)
    area.setWidget(widget)
    return area


def pane_of(dock: QDockWidget) -> QWidget | None:
    """The pane shown by ``dock``, looking through the scroll area that :func:`scrollable` adds."""
    widget = dock.widget()
    return widget.widget() if isinstance(widget, QScrollArea) else widget


class MainWindow(QMainWindow):
    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self._tasks = TaskRunner(self)
        self.load_error: str | None = None
        self.setWindowTitle("CoSA Studio")
        self.setAccessibleName("CoSA Studio")
        self.resize(1400, 860)

        self.view_menu = QMenu("&View", self)
        self.editor = ConfigEditor(ctx)
        self.setCentralWidget(self.editor)
        self.library = LibraryPane(ctx)
        self.probe = ProbePane(ctx, self.editor.probe_target)
        self.models = ModelManagerPane(ctx)
        self.library_dock = self.add_dock("Library", "libraryDock", self.library, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.probe_dock = self.add_dock("Probe", "probeDock", self.probe, Qt.DockWidgetArea.RightDockWidgetArea)
        self.models_dock = self.add_dock("Models", "modelsDock", self.models, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.models_dock.hide()
        self.start_here = StartHerePanel(
            ctx,
            {
                "template": self.new_from_template,
                "probe": self.focus_probe,
                "check": self.check_open_config,
                "review": self.show_review,
                "submit": self.show_approval,
            },
        )
        self.start_here_dock = self.add_dock(
            "Start here", "startHereDock", self.start_here, Qt.DockWidgetArea.LeftDockWidgetArea
        )
        self.splitDockWidget(self.start_here_dock, self.library_dock, Qt.Orientation.Vertical)
        self.check = CheckPane(ctx)
        self.compare = ComparePane(ctx)
        self.run_history = HistoryPane(ctx)
        self.train = TrainPane(ctx)
        self.check_dock = self._evaluation_dock("Check", "checkDock", self.check)
        self.compare_dock = self._evaluation_dock("Compare", "compareDock", self.compare)
        self.run_history_dock = self._evaluation_dock("Run history", "runHistoryDock", self.run_history)
        self.train_dock = self._evaluation_dock("Train", "trainDock", self.train)
        self.side_by_side = SideBySidePane(ctx, self.editor.probe_target)
        self.side_by_side_dock = self._evaluation_dock("Side by side", "sideBySideDock", self.side_by_side)

        self._status_shares: list[tuple[QLabel, float]] = []
        self.model_status = self._status_label("No model", "Loaded model", STATUS_MODEL_SHARE)
        self.device_status = self._status_label("", "Device", STATUS_DEVICE_SHARE)
        self.context_status = self._status_label("", "Context size", STATUS_DEVICE_SHARE)
        self.context_status.setToolTip("How many tokens of config, prompt and reply the model can hold at once")
        self.cache_status = self._status_label("", "Prefix cache use", STATUS_CACHE_SHARE)
        self.cache_status.setToolTip(tip("Config reused from cache"))

        self._build_actions()
        self._build_menus()
        self._build_toolbar()

        self.library.open_requested.connect(self.open_config_id)
        self.library.delete_requested.connect(lambda config_id: self.delete_config(config_id))
        self.start_here.finished.connect(self.start_here_dock.hide)
        self.editor.saved.connect(lambda _config: self.start_here.mark_done("template"))
        self.probe.reply_finished.connect(lambda _exchange: self.start_here.mark_done("probe"))
        self.check.run_finished.connect(lambda _run_id: self.start_here.mark_done("check"))
        self.check.review.item_changed.connect(lambda _item: self.start_here.mark_done("review"))
        self.editor.saved.connect(self._on_config_saved)
        self.editor.error.connect(self._show_error)
        self.editor.config_changed.connect(self._update_title)
        self.editor.config_changed.connect(self._offer_config_actions)
        self.editor.saved.connect(lambda _config: self._offer_config_actions())
        self.editor.dirty_changed.connect(lambda _dirty: self._update_title())
        self.probe.message.connect(self._show_message)
        self.probe.send_enabled_changed.connect(self._on_send_enabled_changed)
        self.editor.config_changed.connect(self.probe.refresh_target)
        self.probe.reply_finished.connect(self._on_reply_finished)
        self.models.message.connect(self._show_message)
        for pane in (self.check, self.compare, self.run_history, self.train, self.side_by_side):
            pane.message.connect(self._show_message)
        self.side_by_side.reply_recorded.connect(lambda _exchange: self.probe.refresh_exchanges())
        self.editor.config_changed.connect(self.side_by_side.apply_mode)
        self.check.run_finished.connect(self._on_check_finished)
        self.train.model_registered.connect(self._on_model_registered)
        ctx.backends.loading.connect(self._on_backend_loading)
        ctx.backends.loaded.connect(self._on_backend_loaded)
        ctx.backends.failed.connect(self._on_backend_failed)

        self.probe.refresh_target()
        self._offer_config_actions()
        self._needs_initial_dock_sizes = not self._restore_layout()
        self.start_here_dock.setVisible(self.start_here.wanted)
        self._update_title()
        self._update_recent_menu()
        self.editor.offer_recovery(ctx.drafts.list())
        if ctx.backends.info is not None:
            self._on_backend_loaded(ctx.backends.info)

    # -- construction ----------------------------------------------------------------------------------------

    def _status_label(self, text: str, name: str, share: float) -> QLabel:
        """A permanent status-bar field at most ``share`` of the bar wide, so that the left part of the bar, where
        messages appear, always keeps most of its room (the full text is in the field's tooltip)."""
        label = QLabel(text)
        label.setAccessibleName(name)
        label.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Preferred)
        self.statusBar().addPermanentWidget(label)
        self._status_shares.append((label, share))
        return label

    def _fit_status_fields(self) -> None:
        width = self.statusBar().width()
        for label, share in self._status_shares:
            label.setMaximumWidth(int(width * share))

    def add_dock(self, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        """Put ``widget`` in a dock listed in the View menu; ``name`` keys its place in the saved layout. The pane
        scrolls inside its dock when the dock is smaller than the pane's minimum size."""
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setAccessibleName(f"{title} pane")
        dock.setWidget(scrollable(widget))
        self.addDockWidget(area, dock)
        self.view_menu.addAction(dock.toggleViewAction())
        return dock

    def _evaluation_dock(self, title: str, name: str, widget: QWidget) -> QDockWidget:
        """A hidden dock tabbed with the model manager, opened from the Evaluate and Models menus.

        Like every dock, the pane sits in a scroll area: a wide form scrolls inside its dock rather than pushing
        the window past the edge of a small screen."""
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setAccessibleName(f"{title} pane")
        dock.setWidget(scrollable(widget))
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, dock)
        self.tabifyDockWidget(self.models_dock, dock)
        dock.hide()
        return dock

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

    # -- actions ---------------------------------------------------------------------------------------------

    def new_from_template(self) -> None:
        dialog = TemplateDialog(author=current_identity(settings=self.ctx.settings), parent=self)
        if dialog.exec() and dialog.result_config is not None:
            self.open_new_config(dialog.result_config)

    def open_new_config(self, config: SafetyConfig) -> None:
        if self.ctx.store.configs.exists(config.id):
            self._show_error(f"a config with id {config.id!r} already exists; pick another id")
            return
        self.editor.autosave()
        self.editor.open_config(config, stored=False)

    def open_config_id(self, config_id: str) -> None:
        self.editor.autosave()
        draft = self.ctx.drafts.get(f"config:{config_id}")
        config = self.ctx.store.configs.latest(config_id)
        self.editor.open_config(config, stored=True, text=draft.text if draft is not None else None)

    def open_file(self, path: Path) -> SafetyConfig | None:
        try:
            config = load_document(path, SafetyConfig)
            stored = self.ctx.store.configs.import_config(config)
        except StudioError as exc:
            self._show_error(str(exc))
            return None
        self.ctx.add_recent_file(path)
        self._update_recent_menu()
        self.library.refresh()
        self.library.select_config(stored.id)
        self.editor.open_config(stored, stored=True)
        return stored

    def open_file_dialog(self) -> None:
        path, _filter = QFileDialog.getOpenFileName(self, "Open a safety config", "", CONFIG_FILE_FILTER)
        if path:
            self.open_file(Path(path))

    def save(self) -> SafetyConfig | None:
        return self.editor.save()

    def export_to(self, path: Path) -> bool:
        try:
            config = self.editor.edited_config()
        except (ValueError, RuntimeError) as exc:
            self._show_error(f"cannot export: {str(exc).splitlines()[0]}")
            return False
        atomic_write_text(path, dump_document(config))
        self.ctx.add_recent_file(path)
        self._update_recent_menu()
        self._show_message(f"Wrote {path}")
        return True

    def export_dialog(self) -> None:
        if self.editor.config is None:
            return
        path, _filter = QFileDialog.getSaveFileName(
            self, "Export the config", f"{self.editor.config.id}.yaml", CONFIG_FILE_FILTER
        )
        if path:
            self.export_to(Path(path))

    def show_history(self) -> HistoryDialog | None:
        config = self.editor.config
        if config is None or not self.editor.is_stored:
            self._show_message("Save the config first: history lists its stored versions")
            return None
        dialog = HistoryDialog(self.ctx.store.configs.history(config.id), self)
        dialog.open()
        return dialog

    def show_models(self) -> None:
        self.models_dock.show()
        self.models_dock.raise_()
        self.models.refresh()

    def _raise_dock(self, dock: QDockWidget) -> None:
        dock.show()
        dock.raise_()
        self.fit_to_screen()

    def show_check(self) -> ProbeSuite | None:
        """The Check pane, with the open config ticked (when it is stored) and the suite written for it chosen;
        returns that suite, or None when there is none."""
        self.check.refresh()
        config = self.editor.config
        suite = self.check.prepare_for(config) if config is not None and self.editor.is_stored else None
        self._raise_dock(self.check_dock)
        return suite

    def check_open_config(self) -> bool:
        """One click from an open config to its first check: save it, choose its suite, start. False (with the
        reason in the status bar) when it cannot start."""
        if self.editor.config is None:
            self._show_message("Open or create a config first: the check runs under it")
            return False
        if (not self.editor.is_stored or self.editor.is_dirty) and self.save() is None:
            return False
        if self.show_check() is None:
            self._show_message("This config has no bundled suite of its own: choose a suite in the Check pane")
            return False
        return self.check.start_check()

    def show_side_by_side(self) -> None:
        """Side by side, set to the open draft against its last approved version, the prompt box filled with
        the probe pane's prompt."""
        self.side_by_side.refresh()
        if not self.side_by_side.prompt_edit.toPlainText().strip():
            self.side_by_side.prompt_edit.setPlainText(self.probe.prompt_edit.toPlainText().strip())
        self._raise_dock(self.side_by_side_dock)

    def show_compare(self) -> None:
        self.compare.refresh()
        self._raise_dock(self.compare_dock)

    def show_run_history(self) -> None:
        self.run_history.refresh()
        if self.editor.config is not None:
            self.run_history.select_config(self.editor.config.id)
        self._raise_dock(self.run_history_dock)

    def show_train(self) -> None:
        self.train.refresh()
        self._raise_dock(self.train_dock)

    def show_approval(self) -> ApprovalDialog | None:
        config = self.editor.config
        if config is None or not self.editor.is_stored:
            self._show_message("Save the config first: review and approval work on stored versions")
            return None
        dialog = ApprovalDialog(self.ctx, config.id, self)
        dialog.changed.connect(self._on_lifecycle_changed)
        dialog.open()
        return dialog

    def show_probe_drafts(self) -> ProbeDraftDialog | None:
        """Draft probes for the config as it reads in the editor."""
        if self.editor.config is None:
            self._show_message("Open a config first: probes are drafted from its text")
            return None
        try:
            config = self.editor.edited_config()
        except ValueError as exc:
            self._show_error(f"The config is not valid yet: {str(exc).splitlines()[0]}")
            return None
        dialog = ProbeDraftDialog(self.ctx, config, self)
        dialog.suite_saved.connect(lambda *_: self.check.refresh())
        dialog.open()
        return dialog

    def focus_probe(self) -> None:
        """Show the probe pane with the cursor in its prompt box."""
        self._raise_dock(self.probe_dock)
        self.probe.prompt_edit.setFocus()
        if self.editor.config is None:
            self._show_message("Open a config from the library first (an example will do): the probe is sent under it")

    def show_review(self) -> None:
        """The Check pane on its review tab, showing the latest run."""
        self.show_check()
        self.check.tabs.setCurrentIndex(REVIEW_TAB)
        if self.check.run_id is None:
            self._show_message("Run a check first: its verdicts are what you review")

    def show_start_here(self) -> None:
        self.start_here.restart()
        self._raise_dock(self.start_here_dock)

    def restore_examples(self) -> list[SafetyConfig]:
        """Add the example configs that are not in the library (kept or edited ones stay as they are)."""
        added = add_examples(self.ctx.store.configs, author=current_identity(settings=self.ctx.settings))
        self.library.refresh()
        self.check.refresh()
        self._show_message(f"Added {len(added)} example config(s)" if added else "Every example is already there")
        return added

    def delete_config(self, config_id: str, confirm: bool = True) -> bool:
        """Delete a config that never went beyond an unchecked draft (an example tried and no longer wanted)."""
        if confirm:
            answer = QMessageBox.question(
                self, "Delete config", f"Delete {config_id} and all its versions? This cannot be undone."
            )
            if answer != QMessageBox.StandardButton.Yes:
                return False
        try:
            self.ctx.store.configs.delete(config_id, current_identity(settings=self.ctx.settings))
        except StudioError as exc:
            self._show_error(str(exc))
            return False
        self.ctx.drafts.discard(draft_key(config_id, config_id))
        if self.editor.config is not None and self.editor.config.id == config_id and self.editor.is_stored:
            self.editor.close_config()
        self.library.refresh()
        self.check.refresh()
        self._show_message(f"Deleted {config_id}")
        return True

    def show_glossary(self, term: str | None = None) -> GlossaryDialog:
        dialog = GlossaryDialog(self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        if term:
            dialog.show_term(term)
        return dialog

    def show_preferences(self) -> None:
        dialog = PreferencesDialog(self.ctx.settings, self)
        if dialog.exec():
            self.ctx.settings = dialog.updated_settings()
            self.ctx.save_settings()
            self.models.reload_settings()

    def load_default_model(self) -> None:
        """Find (installing the embedded model on first run) and load the default model, off the GUI thread."""
        self.model_status.setText("Preparing the default model…")
        self._tasks.submit(self.ctx.resolve_default_model, self._on_default_resolved, self._on_backend_failed)

    # -- slots -----------------------------------------------------------------------------------------------

    def _on_default_resolved(self, entry: object) -> None:
        path, name, sha256 = entry.path, entry.name, entry.sha256  # type: ignore[attr-defined]
        self.ctx.backends.load(path, name, sha256, self.ctx.settings.inference)

    def _on_check_finished(self, _run_id: str) -> None:
        self.compare.refresh()
        self.run_history.reload()

    def _on_model_registered(self, name: str) -> None:
        self.models.refresh()
        self.check.refresh()
        self._show_message(f"Registered the trained model {name}")

    def _on_lifecycle_changed(self, config: SafetyConfig) -> None:
        if config.status is ConfigStatus.IN_REVIEW:
            self.start_here.mark_done("submit")
        self.library.refresh()
        self.run_history.reload()
        self._show_message(f"{config.id} v{config.version} is now {config.status.value}")

    def _on_config_saved(self, config: SafetyConfig) -> None:
        self.library.refresh()
        self.library.select_config(config.id)
        self._update_title()
        self._show_message(f"Saved {config.id} v{config.version}")

    def _on_backend_loading(self, name: str) -> None:
        self.model_status.setText(f"Loading {name}…")

    def _on_backend_loaded(self, info: BackendInfo) -> None:
        self.load_error = None
        self.model_status.setText(f"Model: {info.name}")
        self.model_status.setToolTip(f"{info.name} ({info.kind}): {info.model_path}")
        if info.device == "cpu" or not info.gpu_layers:
            self.device_status.setText("| Device: CPU")
        else:
            self.device_status.setText(f"| Device: {info.device.upper()}, {info.gpu_layers} GPU layers")
        self.context_status.setText(f"| Context: {info.context_length} tokens")
        self._update_cache_status(None)

    def _on_backend_failed(self, message: str) -> None:
        self.load_error = message
        self.model_status.setText("No model loaded")
        self._show_error(f"The model could not be loaded. {message}")

    def _on_send_enabled_changed(self, _enabled: bool, _why_not: str) -> None:
        """The Probe menu's actions can act exactly when the probe pane's buttons can, and say the same why not."""
        for action, button in (
            (self.send_action, self.probe.send_button),
            (self.stop_action, self.probe.stop_button),
            (self.regenerate_action, self.probe.regenerate_button),
        ):
            offer(action, None if button.isEnabled() else button.toolTip(), button.toolTip())

    def _offer_config_actions(self) -> None:
        """Actions on the open config are enabled only when there is one (stored, where they need its versions);
        otherwise their tooltips say what to do first."""
        config, stored = self.editor.config, self.editor.is_stored
        none_open = "Open a config from the library or create one from a template first"
        not_saved = none_open if config is None else "Save the config first: this works on its stored versions"
        offer(self.save_action, none_open if config is None else None, "Save a new version of the config")
        offer(self.export_action, none_open if config is None else None, "Write the config to a file")
        offer(self.history_action, None if stored else not_saved, "Every stored version, with a diff between two")
        offer(self.check_open_action, none_open if config is None else None, "Run the open config's own suite now")
        offer(self.approval_action, None if stored else not_saved, "Submit, approve, reject or export this config")
        offer(self.draft_probes_action, none_open if config is None else None, "Draft probes for it with a model")

    def _on_reply_finished(self, exchange: Exchange) -> None:
        self._update_cache_status(exchange)

    def _update_cache_status(self, exchange: Exchange | None) -> None:
        parts = []
        details = [tip("Config reused from cache")]
        cache = getattr(self.ctx.backends.backend, "prefix_cache", None)
        if cache is not None:
            parts.append(f"| Configs kept ready: {len(cache)}")
            details.append(f"Prefix cache: {len(cache)} saved, {_mib(cache.used_bytes)}.")
        if exchange is not None:
            parts.append(f"| Last reply: {cache_words(exchange.cached_tokens)}")
            details.append(f"Last reply: {exchange.cached_tokens}/{exchange.prompt_tokens} prompt tokens cached.")
        self.cache_status.setText(" ".join(parts))
        self.cache_status.setToolTip("\n".join(details))

    def _update_title(self) -> None:
        config = self.editor.config
        if config is None:
            self.setWindowTitle("CoSA Studio")
            return
        self.setWindowTitle(f"{config.title}[*] — CoSA Studio")
        self.setWindowModified(self.editor.is_dirty)

    def _update_recent_menu(self) -> None:
        self.recent_menu.clear()
        recent = self.ctx.recent_files()
        for entry in recent:
            action = self.recent_menu.addAction(entry)
            action.triggered.connect(lambda _checked=False, p=entry: self.open_file(Path(p)))
        self.recent_menu.setEnabled(bool(recent))

    def _show_message(self, text: str) -> None:
        self.statusBar().showMessage(text, 8000)

    def _show_error(self, text: str) -> None:
        self.statusBar().showMessage(text, 15000)
        if self.isVisible():
            box = QMessageBox(QMessageBox.Icon.Warning, "CoSA Studio", text, QMessageBox.StandardButton.Ok, self)
            box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            box.open()

    # -- layout persistence and shutdown ---------------------------------------------------------------------

    def layout_key(self) -> str:
        """The settings group of the layout for the current screen: a layout made on a large monitor is not forced
        onto a laptop screen, and each comes back when its screen does."""
        screen = self.screen()
        size = screen.availableGeometry().size()
        name = "".join(c if c.isalnum() else "_" for c in screen.name()) or "screen"
        return f"layouts/{name}_{size.width()}x{size.height()}"

    def _restore_layout(self) -> bool:
        """Restore the geometry and dock layout saved for this screen; False when there is none."""
        settings = self.ctx.ui_settings
        key = self.layout_key()
        geometry = settings.value(f"{key}/geometry")
        state = settings.value(f"{key}/state")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        self.fit_to_screen()
        return isinstance(state, QByteArray) and self.restoreState(state, STATE_VERSION)

    def save_layout(self) -> None:
        settings = self.ctx.ui_settings
        key = self.layout_key()
        settings.setValue(f"{key}/geometry", self.saveGeometry())
        settings.setValue(f"{key}/state", self.saveState(STATE_VERSION))
        settings.setValue("app/version", __version__)
        settings.sync()

    def fit_to_screen(self) -> None:
        """Shrink the window to the screen's free area when it is larger (its docks scroll instead)."""
        available = self.screen().availableGeometry()
        frame = self.frameGeometry().size() - self.size()
        width = min(self.width(), available.width() - frame.width())
        height = min(self.height(), available.height() - frame.height())
        if (width, height) != (self.width(), self.height()):
            self.resize(width, height)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit_status_fields()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._needs_initial_dock_sizes:
            self._needs_initial_dock_sizes = False
            width = max(self.width(), 900)
            self.resizeDocks(
                [self.library_dock, self.probe_dock], [int(width * 0.22), int(width * 0.4)], Qt.Orientation.Horizontal
            )

    def closeEvent(self, event: QCloseEvent) -> None:
        for dock in self.findChildren(QDockWidget):
            shutdown = getattr(pane_of(dock), "shutdown", None)
            if callable(shutdown):
                shutdown()  # panes stop their worker threads
        for dialog in self.findChildren(ProbeDraftDialog):
            dialog.shutdown()
        self.editor.shutdown()
        self._tasks.wait_all()
        self.save_layout()
        self.ctx.close()
        event.accept()
