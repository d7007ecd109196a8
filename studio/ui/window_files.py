"""The window's commands on configs as documents: new from a template, open (from the library or a file), save,
export, delete, and the example configs. Mixed into :class:`studio.ui.main_window.MainWindow` (a ``QMainWindow``),
whose editor, library and Check pane they update."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QFileDialog, QMessageBox

from studio.core.documents import SafetyConfig
from studio.core.errors import StudioError
from studio.core.examples import add_examples
from studio.core.fileio import atomic_write_text
from studio.core.settings import current_identity
from studio.core.store.drafts import draft_key
from studio.core.yamlio import dump_document, load_document
from studio.ui.template_dialog import TemplateDialog

if TYPE_CHECKING:
    from studio.ui.check.pane import CheckPane
    from studio.ui.context import AppContext
    from studio.ui.editor import ConfigEditor
    from studio.ui.library import LibraryPane

CONFIG_FILE_FILTER = "Safety configs (*.yaml *.yml)"


class ConfigFileCommands:
    """New, open, save, export and delete configs; add the examples back."""

    ctx: AppContext
    editor: ConfigEditor
    library: LibraryPane
    check: CheckPane

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
        draft = self.ctx.store.drafts.get(f"config:{config_id}")
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
        self.ctx.store.drafts.discard(draft_key(config_id, config_id))
        if self.editor.config is not None and self.editor.config.id == config_id and self.editor.is_stored:
            self.editor.close_config()
        self.library.refresh()
        self.check.refresh()
        self._show_message(f"Deleted {config_id}")
        return True
