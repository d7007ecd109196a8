"""The studio window: config library, editor, probe pane and model manager in dock widgets."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QCloseEvent, QResizeEvent, QShowEvent
from PySide6.QtWidgets import QDockWidget, QMainWindow, QMenu, QWidget

from studio.core.documents import ConfigStatus, ProbeSuite, SafetyConfig
from studio.core.inference.base import BackendInfo
from studio.core.inference.prefix_cache import PrefixCache
from studio.core.store.exchanges import Exchange
from studio.ui.approval_dialog import ApprovalDialog
from studio.ui.availability import offer
from studio.ui.check.pane import CheckPane
from studio.ui.compare_pane import ComparePane
from studio.ui.context import AppContext
from studio.ui.drafts.dialog import ProbeDraftDialog
from studio.ui.editor import ConfigEditor
from studio.ui.first_run import StartHerePanel
from studio.ui.glossary import GlossaryDialog
from studio.ui.history import HistoryDialog
from studio.ui.history_pane import HistoryPane
from studio.ui.library import LibraryPane
from studio.ui.models_pane import ModelManagerPane
from studio.ui.preferences import PreferencesDialog
from studio.ui.probe import ProbePane
from studio.ui.side_by_side import SideBySidePane
from studio.ui.status_area import StatusArea
from studio.ui.train_pane import TrainPane
from studio.ui.window_files import ConfigFileCommands
from studio.ui.window_layout import (
    add_dock,
    add_tabbed_dock,
    fit_to_screen,
    layout_key,
    pane_of,
    restore_layout,
    save_layout,
)
from studio.ui.window_menus import WindowMenus
from studio.ui.workers import TaskRunner

#: Index of the "Items and review" tab of the Check pane.
REVIEW_TAB = 1


class MainWindow(WindowMenus, ConfigFileCommands, QMainWindow):
    """The library, the editor, the probe and the other panes in docks, wired together."""

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

        self.status = StatusArea(self.statusBar(), self)
        self.model_status, self.device_status = self.status.model, self.status.device
        self.context_status, self.cache_status = self.status.context, self.status.cache

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
        self.check.run_finished.connect(lambda _run_id: self._offer_config_actions())
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
        self.editor.offer_recovery(ctx.store.drafts.list())
        if ctx.backends.info is not None:
            self._on_backend_loaded(ctx.backends.info)

    # -- construction ----------------------------------------------------------------------------------------

    def add_dock(self, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        return add_dock(self, self.view_menu, title, name, widget, area)

    def _evaluation_dock(self, title: str, name: str, widget: QWidget) -> QDockWidget:
        """A hidden dock tabbed with the model manager, opened from the Evaluate and Models menus."""
        return add_tabbed_dock(self, self.models_dock, title, name, widget)

    # -- actions ---------------------------------------------------------------------------------------------

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
        self.status.show_loading("Preparing the default model…")
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
        self.status.show_loading(f"Loading {name}…")

    def _on_backend_loaded(self, info: BackendInfo) -> None:
        self.load_error = None
        self.status.show_backend(info, self._prefix_cache())

    def _on_backend_failed(self, message: str) -> None:
        self.load_error = message
        self.status.show_loading("No model loaded")
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
        self.start_here.offer_steps(
            {
                "check": none_open if config is None else None,
                "review": None if self.check.run_id is not None else "Run a check first: its verdicts are reviewed",
                "submit": None if stored else not_saved,
            }
        )

    def _on_reply_finished(self, exchange: Exchange) -> None:
        self.status.show_cache(self._prefix_cache(), exchange)

    def _prefix_cache(self) -> PrefixCache | None:
        """The loaded model's prefix cache; endpoints and the fake backend have none."""
        return getattr(self.ctx.backends.backend, "prefix_cache", None)

    def _update_title(self) -> None:
        config = self.editor.config
        if config is None:
            self.setWindowTitle("CoSA Studio")
            return
        self.setWindowTitle(f"{config.title}[*] — CoSA Studio")
        self.setWindowModified(self.editor.is_dirty)

    def _show_message(self, text: str) -> None:
        self.status.message(text)

    def _show_error(self, text: str) -> None:
        self.status.error(text)

    # -- layout persistence and shutdown ---------------------------------------------------------------------

    def layout_key(self) -> str:
        return layout_key(self)

    def _restore_layout(self) -> bool:
        return restore_layout(self, self.ctx.ui_settings)

    def save_layout(self) -> None:
        save_layout(self, self.ctx.ui_settings)

    def fit_to_screen(self) -> None:
        fit_to_screen(self)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self.status.fit()

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
