"""The config editor: text with section highlighting, live token count, lint hints, autosave and find."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut, QTextCursor, QTextDocument
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from studio.core.documents import SafetyConfig
from studio.core.errors import StudioError, validation_problem
from studio.core.lint import LintHint, lint_config
from studio.core.settings import current_identity
from studio.core.store.drafts import Draft, draft_key
from studio.core.templates import SKELETON_SECTIONS
from studio.ui.availability import offer
from studio.ui.context import AppContext
from studio.ui.highlighter import SectionHighlighter
from studio.ui.workers import TaskRunner

AUTOSAVE_MS = 3000
TOKEN_COUNT_DEBOUNCE_MS = 300


@dataclass(frozen=True)
class ProbeTarget:
    """What the probe pane sends: the config text in the editor and where it came from."""

    text: str
    config_id: str | None
    config_version: int | None
    config_hash: str


class ConfigEditor(QWidget):
    """Edits one config at a time. A config is either stored (saving makes a new version) or new (saving creates
    it). Unsaved text is written to the drafts table every few seconds."""

    saved = Signal(object)  # SafetyConfig
    error = Signal(str)
    config_changed = Signal()  # another config (or none) is now open
    dirty_changed = Signal(bool)

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._ctx = ctx
        self._config: SafetyConfig | None = None
        self._stored = False
        self._tasks = TaskRunner(self)
        self._token_count: int | None = None
        self._count_generation = 0
        self._autosaved_text: str | None = None

        self.title_edit = QLineEdit()
        self.title_edit.setAccessibleName("Config title")
        self.title_edit.setPlaceholderText("Title")
        self.meta_label = QLabel("No config open")
        self.meta_label.setAccessibleName("Config id, version and status")
        self.meta_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.text_edit = QPlainTextEdit()
        self.text_edit.setAccessibleName("Config text")
        self.text_edit.setPlaceholderText("Open a config from the library or create one with File ▸ New from template")
        self.text_edit.setTabChangesFocus(False)
        self.highlighter = SectionHighlighter(self.text_edit.document(), SKELETON_SECTIONS)

        self.find_edit = QLineEdit()
        self.find_edit.setAccessibleName("Find in config")
        self.find_edit.setPlaceholderText("Find (Enter: next, Shift+Enter: previous)")
        self.find_edit.setClearButtonEnabled(True)
        self.find_edit.returnPressed.connect(self.find_next)
        QShortcut(QKeySequence("Shift+Return"), self.find_edit, self.find_previous)
        self.find_bar = QWidget()
        find_layout = QHBoxLayout(self.find_bar)
        find_layout.setContentsMargins(0, 0, 0, 0)
        find_layout.addWidget(self.find_edit)
        close_find = QPushButton("Close")
        close_find.setAccessibleName("Close find bar")
        close_find.clicked.connect(self.find_bar.hide)
        find_layout.addWidget(close_find)
        self.find_bar.hide()

        self.token_label = QLabel("")
        self.token_label.setAccessibleName("Token count of the config")
        self.lint_list = QListWidget()
        self.lint_list.setAccessibleName("Lint hints")
        self.lint_list.setWordWrap(True)
        self.lint_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.lint_list.itemActivated.connect(self._on_lint_item_activated)
        self.lint_list.itemClicked.connect(self._on_lint_item_activated)

        self.recovery_bar = QWidget()
        self.recovery_bar.setObjectName("recoveryBar")
        recovery_layout = QHBoxLayout(self.recovery_bar)
        recovery_layout.setContentsMargins(6, 4, 6, 4)
        self.recovery_label = QLabel()
        self.recovery_label.setWordWrap(True)
        self.restore_button = QPushButton("Restore")
        self.restore_button.setAccessibleName("Restore unsaved text")
        self.discard_button = QPushButton("Discard")
        self.discard_button.setAccessibleName("Discard unsaved text")
        recovery_layout.addWidget(self.recovery_label, 1)
        recovery_layout.addWidget(self.restore_button)
        recovery_layout.addWidget(self.discard_button)
        self.restore_button.clicked.connect(self._on_restore_clicked)
        self.discard_button.clicked.connect(self._on_discard_clicked)
        self.recovery_bar.hide()
        self._pending_drafts: list[Draft] = []

        header = QHBoxLayout()
        header.addWidget(self.title_edit, 2)
        header.addWidget(self.meta_label, 1)

        lint_box = QWidget()
        lint_layout = QVBoxLayout(lint_box)
        lint_layout.setContentsMargins(0, 0, 0, 0)
        lint_layout.addWidget(self.token_label)
        lint_title = QLabel("Hints")
        lint_layout.addWidget(lint_title)
        lint_layout.addWidget(self.lint_list)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.text_edit)
        splitter.addWidget(lint_box)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([640, 240])
        self.title_edit.setMinimumWidth(220)

        layout = QVBoxLayout(self)
        layout.addWidget(self.recovery_bar)
        layout.addLayout(header)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.find_bar)

        self._count_timer = QTimer(self)
        self._count_timer.setSingleShot(True)
        self._count_timer.setInterval(TOKEN_COUNT_DEBOUNCE_MS)
        self._count_timer.timeout.connect(self._on_count_timer)
        self._autosave_timer = QTimer(self)
        self._autosave_timer.setInterval(AUTOSAVE_MS)
        self._autosave_timer.timeout.connect(self.autosave)
        self._autosave_timer.start()

        self.text_edit.textChanged.connect(self._on_text_changed)
        self.title_edit.textEdited.connect(self._on_text_changed)
        self.text_edit.document().modificationChanged.connect(self.dirty_changed)
        ctx.backends.loaded.connect(self._on_backend_loaded)
        self._set_enabled(False)

    # -- state -------------------------------------------------------------------------------------------------

    @property
    def config(self) -> SafetyConfig | None:
        return self._config

    @property
    def is_stored(self) -> bool:
        return self._stored

    @property
    def is_dirty(self) -> bool:
        return self.text_edit.document().isModified()

    @property
    def token_count(self) -> int | None:
        return self._token_count

    def open_config(self, config: SafetyConfig, *, stored: bool, text: str | None = None) -> None:
        """Show ``config``; ``text`` (restored unsaved text) replaces its stored text in the editor."""
        self._config = config
        self._stored = stored
        self.title_edit.setText(config.title)
        self.text_edit.setPlainText(config.text if text is None else text)
        self.text_edit.document().setModified((text is not None and text != config.text) or not stored)
        self._autosaved_text = None
        self._set_enabled(True)
        self._update_meta()
        self.config_changed.emit()

    def close_config(self) -> None:
        self._config = None
        self._stored = False
        self.title_edit.clear()
        self.text_edit.clear()
        self.text_edit.document().setModified(False)
        self._set_enabled(False)
        self._update_meta()
        self.config_changed.emit()

    def draft_slot(self) -> str | None:
        if self._config is None:
            return None
        return draft_key(self._config.id if self._stored else None, self._config.id)

    def edited_config(self) -> SafetyConfig:
        """The open config with the editor's title and text; raises ValidationError when they are invalid."""
        if self._config is None:
            raise RuntimeError("no config is open")
        data = self._config.model_dump()
        data["text"] = self.text_edit.toPlainText()
        data["title"] = self.title_edit.text().strip()
        return SafetyConfig.model_validate(data)

    def probe_target(self) -> ProbeTarget | None:
        """The text to probe with; it keeps its stored version only while it matches that version exactly."""
        if self._config is None:
            return None
        text = self.text_edit.toPlainText()
        unchanged = self._stored and text == self._config.text
        probe_config = self._config.model_copy(update={"text": text})
        return ProbeTarget(
            text=text,
            config_id=self._config.id,
            config_version=self._config.version if unchanged else None,
            config_hash=probe_config.content_hash(),
        )

    # -- actions ----------------------------------------------------------------------------------------------

    def save(self) -> SafetyConfig | None:
        """Store the edited config (a new version when it changed) and drop its draft."""
        if self._config is None:
            return None
        slot = self.draft_slot()
        try:
            edited = self.edited_config()
            if edited.text != self._config.text or edited.title != self._config.title or not self._stored:
                edited.author = current_identity(settings=self._ctx.settings)
            saved = self._ctx.store.configs.save(edited) if self._stored else self._ctx.store.configs.create(edited)
        except ValidationError as exc:
            self.error.emit(f"{self._config.id}: cannot save: {validation_problem(exc)}")
            return None
        except StudioError as exc:
            self.error.emit(str(exc))
            return None
        if slot is not None:
            self._ctx.store.drafts.discard(slot)
        self._config = saved
        self._stored = True
        self.text_edit.document().setModified(False)
        self._update_meta()
        self.saved.emit(saved)
        return saved

    def autosave(self) -> None:
        """Write the editor text to the drafts table if it changed since the last autosave."""
        slot = self.draft_slot()
        if slot is None or self._config is None:
            return
        if not self.is_dirty:
            if self._autosaved_text is not None:  # the edits were undone: the draft is stale
                self._ctx.store.drafts.discard(slot)
                self._autosaved_text = None
            return
        text = self.text_edit.toPlainText()
        if text == self._autosaved_text or not text.strip():
            return
        self._ctx.store.drafts.put(
            slot,
            text=text,
            title=self.title_edit.text().strip() or self._config.title,
            config_id=self._config.id,
            base_version=self._config.version if self._stored else None,
            base_json=self._config.model_dump_json(),
        )
        self._autosaved_text = text

    def offer_recovery(self, drafts: list[Draft]) -> None:
        """Show a bar offering the unsaved text left by a previous session."""
        self._pending_drafts = list(drafts)
        if not drafts:
            self.recovery_bar.hide()
            return
        first = drafts[0]
        more = f" (and {len(drafts) - 1} more)" if len(drafts) > 1 else ""
        when = first.updated_utc.strftime("%Y-%m-%d %H:%M UTC")
        self.recovery_label.setText(f"Unsaved text of “{first.title}” from {when} was found{more}.")
        self.recovery_bar.show()

    def find_next(self) -> bool:
        return self._find(QTextDocument.FindFlag(0))

    def find_previous(self) -> bool:
        return self._find(QTextDocument.FindFlag.FindBackward)

    def show_find(self) -> None:
        self.find_bar.show()
        self.find_edit.setFocus()
        self.find_edit.selectAll()

    def shutdown(self) -> None:
        self.autosave()
        self._autosave_timer.stop()
        self._count_timer.stop()
        self._tasks.wait_all()

    # -- internals --------------------------------------------------------------------------------------------

    def _find(self, flags: QTextDocument.FindFlag) -> bool:
        needle = self.find_edit.text()
        if not needle:
            return False
        if self.text_edit.find(needle, flags):
            return True
        cursor = self.text_edit.textCursor()
        backward = bool(flags & QTextDocument.FindFlag.FindBackward)
        cursor.movePosition(QTextCursor.MoveOperation.End if backward else QTextCursor.MoveOperation.Start)
        self.text_edit.setTextCursor(cursor)
        return self.text_edit.find(needle, flags)

    def _set_enabled(self, enabled: bool) -> None:
        why_not = None if enabled else "Open a config from the library or create one from a template first"
        offer(self.title_edit, why_not, "The config's title, shown in the library")
        self.text_edit.setReadOnly(not enabled)

    def _update_meta(self) -> None:
        config = self._config
        if config is None:
            self.meta_label.setText("No config open")
            return
        version = f"v{config.version}" if self._stored else "not saved yet"
        self.meta_label.setText(f"{config.id} · {version} · {config.status.value.replace('_', ' ')} · {config.kind}")

    def _on_text_changed(self) -> None:
        self._count_timer.start()

    def _on_backend_loaded(self, _info: object) -> None:
        self._count_timer.start()

    def _on_count_timer(self) -> None:
        text = self.text_edit.toPlainText()
        self._count_generation += 1
        generation = self._count_generation
        backends = self._ctx.backends
        if backends.backend is None or backends.is_loading:
            self._show_count(generation, text, None)
            return
        if not self.token_label.text():
            self.token_label.setText("Counting tokens…")
        self._tasks.submit(
            lambda: backends.count_tokens(text),
            lambda count: self._show_count(generation, text, count),
            lambda _message: self._show_count(generation, text, None),
        )

    def _show_count(self, generation: int, text: str, count: int | None) -> None:
        if generation != self._count_generation:
            return
        self._token_count = count
        info = self._ctx.backends.info
        if self._config is None:
            self.token_label.clear()
        elif count is None:
            self.token_label.setText("– tokens (no model loaded)")
        elif info is not None and info.context_length:
            share = 100.0 * count / info.context_length
            self.token_label.setText(f"{count} / {info.context_length} tokens ({share:.0f}% of the context)")
        else:
            self.token_label.setText(f"{count} tokens")
        self._show_lint(lint_config(text, token_count=count) if text.strip() else [])

    def _show_lint(self, hints: list[LintHint]) -> None:
        self.lint_list.clear()
        for hint in hints:
            place = f"line {hint.line}: " if hint.line else ""
            item = QListWidgetItem(f"{hint.severity}: {place}{hint.message}")
            item.setData(Qt.ItemDataRole.UserRole, hint.line)
            item.setToolTip(hint.code)
            self.lint_list.addItem(item)

    def _on_lint_item_activated(self, item: QListWidgetItem) -> None:
        line = item.data(Qt.ItemDataRole.UserRole)
        if not line:
            return
        block = self.text_edit.document().findBlockByLineNumber(int(line) - 1)
        if not block.isValid():
            return
        cursor = QTextCursor(block)
        self.text_edit.setTextCursor(cursor)
        self.text_edit.centerCursor()
        self.text_edit.setFocus()

    def _on_restore_clicked(self) -> None:
        if not self._pending_drafts:
            return
        draft = self._pending_drafts.pop(0)
        base = SafetyConfig.model_validate_json(draft.base_json) if draft.base_json else None
        if base is None and draft.config_id is not None:
            base = self._ctx.store.configs.latest(draft.config_id)
        if base is not None:
            self.open_config(base, stored=draft.key.startswith("config:"), text=draft.text)
            self.title_edit.setText(draft.title)
        self.offer_recovery(self._pending_drafts)

    def _on_discard_clicked(self) -> None:
        if self._pending_drafts:
            self._ctx.store.drafts.discard(self._pending_drafts.pop(0).key)
        self.offer_recovery(self._pending_drafts)
