"""The studio window: config library, editor, probe pane and model manager in dock widgets."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, Qt
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence, QShowEvent
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QSizePolicy,
    QToolBar,
    QWidget,
)

from studio import __version__
from studio.core.documents import SafetyConfig
from studio.core.errors import StudioError
from studio.core.fileio import atomic_write_text
from studio.core.inference.base import BackendInfo
from studio.core.settings import current_identity
from studio.core.store.exchanges import Exchange
from studio.core.yamlio import dump_document, load_document
from studio.ui.approval_dialog import ApprovalDialog
from studio.ui.check_pane import CheckPane
from studio.ui.compare_pane import ComparePane
from studio.ui.context import AppContext
from studio.ui.editor import ConfigEditor
from studio.ui.history import HistoryDialog
from studio.ui.history_pane import HistoryPane
from studio.ui.library import LibraryPane
from studio.ui.models_pane import ModelManagerPane
from studio.ui.preferences import PreferencesDialog
from studio.ui.probe import ProbePane
from studio.ui.probe_drafts import ProbeDraftDialog
from studio.ui.template_dialog import TemplateDialog
from studio.ui.train_pane import TrainPane
from studio.ui.workers import TaskRunner

STATE_VERSION = 1
CONFIG_FILE_FILTER = "Safety configs (*.yaml *.yml)"


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.1f} MiB"


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
        self.check = CheckPane(ctx)
        self.compare = ComparePane(ctx)
        self.run_history = HistoryPane(ctx)
        self.train = TrainPane(ctx)
        self.check_dock = self._evaluation_dock("Check", "checkDock", self.check)
        self.compare_dock = self._evaluation_dock("Compare", "compareDock", self.compare)
        self.run_history_dock = self._evaluation_dock("Run history", "runHistoryDock", self.run_history)
        self.train_dock = self._evaluation_dock("Train", "trainDock", self.train)

        self.model_status = QLabel("No model")
        self.model_status.setAccessibleName("Loaded model")
        self.device_status = QLabel("")
        self.device_status.setAccessibleName("Device")
        self.context_status = QLabel("")
        self.context_status.setAccessibleName("Context size")
        self.cache_status = QLabel("")
        self.cache_status.setAccessibleName("Prefix cache use")
        self.cache_status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.statusBar().addPermanentWidget(self.model_status)
        self.statusBar().addPermanentWidget(self.device_status)
        self.statusBar().addPermanentWidget(self.context_status)
        self.statusBar().addPermanentWidget(self.cache_status, 1)

        self._build_actions()
        self._build_menus()
        self._build_toolbar()

        self.library.open_requested.connect(self.open_config_id)
        self.editor.saved.connect(self._on_config_saved)
        self.editor.error.connect(self._show_error)
        self.editor.config_changed.connect(self._update_title)
        self.editor.dirty_changed.connect(lambda _dirty: self._update_title())
        self.probe.message.connect(self._show_message)
        self.probe.streaming_changed.connect(self._on_streaming_changed)
        self.probe.reply_finished.connect(self._on_reply_finished)
        self.models.message.connect(self._show_message)
        for pane in (self.check, self.compare, self.run_history, self.train):
            pane.message.connect(self._show_message)
        self.check.run_finished.connect(self._on_check_finished)
        self.train.model_registered.connect(self._on_model_registered)
        ctx.backends.loading.connect(self._on_backend_loading)
        ctx.backends.loaded.connect(self._on_backend_loaded)
        ctx.backends.failed.connect(self._on_backend_failed)

        self._needs_initial_dock_sizes = not self._restore_layout()
        self._update_title()
        self._update_recent_menu()
        self.editor.offer_recovery(ctx.drafts.list())
        if ctx.backends.info is not None:
            self._on_backend_loaded(ctx.backends.info)

    # -- construction ----------------------------------------------------------------------------------------

    def add_dock(self, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        """Put ``widget`` in a dock listed in the View menu; ``name`` keys its place in the saved layout."""
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setAccessibleName(f"{title} pane")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        self.view_menu.addAction(dock.toggleViewAction())
        return dock

    def _evaluation_dock(self, title: str, name: str, widget: QWidget) -> QDockWidget:
        """A hidden dock tabbed with the model manager, opened from the Evaluate and Models menus."""
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setAccessibleName(f"{title} pane")
        dock.setWidget(widget)
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
        for action in (self.check_action, self.compare_action, self.run_history_action):
            evaluate_menu.addAction(action)
        probe_menu = bar.addMenu("&Probe")
        probe_menu.addAction(self.send_action)
        probe_menu.addAction(self.stop_action)
        probe_menu.addAction(self.regenerate_action)
        models_menu = bar.addMenu("&Models")
        models_menu.addAction(self.models_action)
        models_menu.addAction(self.train_action)
        bar.addMenu(self.view_menu)

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

    def show_check(self) -> None:
        """The Check pane, with the open config ticked when it is stored."""
        self.check.refresh()
        config = self.editor.config
        if config is not None and self.editor.is_stored:
            self.check.select_configs([config.id])
        self._raise_dock(self.check_dock)

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
        if info.device == "cpu" or not info.gpu_layers:
            self.device_status.setText("| Device: CPU")
        else:
            self.device_status.setText(f"| Device: {info.device.upper()}, {info.gpu_layers} GPU layers")
        self.context_status.setText(f"| Context: {info.context_length}")
        self._update_cache_status(None)

    def _on_backend_failed(self, message: str) -> None:
        self.load_error = message
        self.model_status.setText("No model loaded")
        self._show_error(f"The model could not be loaded. {message}")

    def _on_streaming_changed(self, streaming: bool) -> None:
        self.stop_action.setEnabled(streaming)
        self.send_action.setEnabled(not streaming)
        self.regenerate_action.setEnabled(not streaming)

    def _on_reply_finished(self, exchange: Exchange) -> None:
        self._update_cache_status(exchange)

    def _update_cache_status(self, exchange: Exchange | None) -> None:
        parts = []
        cache = getattr(self.ctx.backends.backend, "prefix_cache", None)
        if cache is not None:
            parts.append(f"| Prefix cache: {len(cache)} saved, {_mib(cache.used_bytes)}")
        if exchange is not None:
            parts.append(f"| Last reply: {exchange.cached_tokens}/{exchange.prompt_tokens} prompt tokens cached")
        self.cache_status.setText(" ".join(parts))

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

    def _restore_layout(self) -> bool:
        """Restore the saved geometry and dock layout; False when there is none."""
        settings = self.ctx.ui_settings
        geometry = settings.value("mainWindow/geometry")
        state = settings.value("mainWindow/state")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        return isinstance(state, QByteArray) and self.restoreState(state, STATE_VERSION)

    def save_layout(self) -> None:
        settings = self.ctx.ui_settings
        settings.setValue("mainWindow/geometry", self.saveGeometry())
        settings.setValue("mainWindow/state", self.saveState(STATE_VERSION))
        settings.setValue("app/version", __version__)
        settings.sync()

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
            shutdown = getattr(dock.widget(), "shutdown", None)
            if callable(shutdown):
                shutdown()  # panes stop their worker threads
        for dialog in self.findChildren(ProbeDraftDialog):
            dialog.shutdown()
        self.editor.shutdown()
        self._tasks.wait_all()
        self.save_layout()
        self.ctx.close()
        event.accept()
