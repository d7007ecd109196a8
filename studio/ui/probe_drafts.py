"""Drafting probes from a config: a model proposes probes, the author accepts, edits or rejects them, and the
accepted ones join a new or an existing stored probe suite."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from PySide6.QtCore import (
    QAbstractItemModel,
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QComboBox,
    QDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from studio.core.documents import Expectation, Probe, ProbeSuite, SafetyConfig
from studio.core.errors import StudioError, validation_problem
from studio.core.evals.probegen import DraftFailure, ProbeDraft, draft_probes, new_suite_from_drafts
from studio.core.inference.base import CancelToken
from studio.core.taxonomy import Category
from studio.ui.backends import BackendFactory, llama_backend_factory
from studio.ui.context import AppContext
from studio.ui.model_choice import LOADED_MODEL, add_model_choices, model_opener
from studio.ui.workers import BatchRelay

Index = QModelIndex | QPersistentModelIndex

#: How often drafts made on the worker thread are moved into the table (milliseconds).
DRAFT_FLUSH_MS = 50
#: Shown in the expected column when the expectation follows from the probe's categories.
BY_CATEGORY = "by category"


@dataclass
class DraftRow:
    """One draft as the author sees and edits it."""

    text: str
    expected: Expectation | None
    categories: tuple[Category, ...]
    clause: str
    notes: str
    accepted: bool = False

    @classmethod
    def from_draft(cls, draft: ProbeDraft) -> DraftRow:
        return cls(draft.text, draft.expected, draft.categories, draft.clause, draft.to_probe().notes)

    def to_probe(self) -> Probe:
        """The probe this row stands for; raises ValidationError when the edits made it invalid."""
        return Probe.model_validate(
            {
                "text": self.text,
                "expected": self.expected,
                "categories": list(self.categories),
                "notes": self.notes,
            }
        )


def expectation_choices(row: DraftRow) -> list[str]:
    """The values the expected column may take for ``row``."""
    choices = [e.value for e in Expectation]
    return [*choices, BY_CATEGORY] if row.categories else choices


class DraftTableModel(QAbstractTableModel):
    """Drafts with an accept checkbox, editable probe text, expectation and notes."""

    ACCEPT, TEXT, EXPECTED, CLAUSE, NOTES = range(5)
    HEADERS = ("Accept", "Probe", "Expected", "Tests clause", "Notes")

    accepted_changed = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[DraftRow] = []

    def rows(self) -> list[DraftRow]:
        return list(self._rows)

    def row_at(self, row: int) -> DraftRow:
        return self._rows[row]

    def add_rows(self, rows: Sequence[DraftRow]) -> None:
        if not rows:
            return
        first = len(self._rows)
        self.beginInsertRows(QModelIndex(), first, first + len(rows) - 1)
        self._rows.extend(rows)
        self.endInsertRows()

    def remove_rows(self, positions: Sequence[int]) -> None:
        """Drop the rows at ``positions`` (rejected drafts, or drafts already saved)."""
        for position in sorted(set(positions), reverse=True):
            if 0 <= position < len(self._rows):
                self.beginRemoveRows(QModelIndex(), position, position)
                del self._rows[position]
                self.endRemoveRows()
        self.accepted_changed.emit()

    def set_all_accepted(self, accepted: bool) -> None:
        for row in self._rows:
            row.accepted = accepted
        if self._rows:
            self.dataChanged.emit(self.index(0, self.ACCEPT), self.index(len(self._rows) - 1, self.ACCEPT))
        self.accepted_changed.emit()

    def accepted_positions(self) -> list[int]:
        return [n for n, row in enumerate(self._rows) if row.accepted]

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        if orientation == Qt.Orientation.Horizontal:
            return self.HEADERS[section] if 0 <= section < len(self.HEADERS) else None
        return str(section + 1)

    def flags(self, index: Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        if index.column() == self.ACCEPT:
            return flags | Qt.ItemFlag.ItemIsUserCheckable
        if index.column() in (self.TEXT, self.EXPECTED, self.NOTES):
            return flags | Qt.ItemFlag.ItemIsEditable
        return flags

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        row, column = self._rows[index.row()], index.column()
        if column == self.ACCEPT:
            if role == Qt.ItemDataRole.CheckStateRole:
                return Qt.CheckState.Checked if row.accepted else Qt.CheckState.Unchecked
            return None
        if role not in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole, Qt.ItemDataRole.ToolTipRole):
            return None
        if column == self.TEXT:
            return row.text
        if column == self.EXPECTED:
            if row.expected is not None:
                return row.expected.value
            return BY_CATEGORY
        if column == self.CLAUSE:
            return row.clause
        if column == self.NOTES:
            return row.notes
        return None

    def setData(self, index: Index, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return False
        row, column = self._rows[index.row()], index.column()
        if column == self.ACCEPT and role == Qt.ItemDataRole.CheckStateRole:
            row.accepted = Qt.CheckState(value) == Qt.CheckState.Checked
            self.dataChanged.emit(index, index, [role])
            self.accepted_changed.emit()
            return True
        if role != Qt.ItemDataRole.EditRole or not isinstance(value, str):
            return False
        if column == self.TEXT:
            if not value.strip():
                return False
            row.text = value
        elif column == self.EXPECTED:
            if value not in expectation_choices(row):
                return False
            row.expected = None if value == BY_CATEGORY else Expectation(value)
        elif column == self.NOTES:
            row.notes = value
        else:
            return False
        self.dataChanged.emit(index, index, [Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole])
        return True


class ExpectationDelegate(QStyledItemDelegate):
    """Edits the expected column with a list of the values the row may take."""

    def createEditor(self, parent: QWidget, option: QStyleOptionViewItem, index: Index) -> QWidget:
        editor = QComboBox(parent)
        model = index.model()
        if isinstance(model, DraftTableModel):
            editor.addItems(expectation_choices(model.row_at(index.row())))
        return editor

    def setEditorData(self, editor: QWidget, index: Index) -> None:
        if isinstance(editor, QComboBox):
            editor.setCurrentText(str(index.data(Qt.ItemDataRole.EditRole)))

    def setModelData(self, editor: QWidget, model: QAbstractItemModel, index: Index) -> None:
        if isinstance(editor, QComboBox):
            model.setData(index, editor.currentText(), Qt.ItemDataRole.EditRole)


class ProbeDraftDialog(QDialog):
    """Draft probes for ``config`` with a model, review them, and add the accepted ones to a stored suite."""

    suite_saved = Signal(str, int)  # suite id, version

    def __init__(
        self,
        ctx: AppContext,
        config: SafetyConfig,
        parent: QWidget | None = None,
        backend_factory: BackendFactory = llama_backend_factory,
    ) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.config = config
        self.backend_factory = backend_factory
        self.failures: list[DraftFailure] = []
        self._uses_loaded_model = False
        self.setWindowTitle(f"Draft probes — {config.title}")
        self.resize(960, 620)

        self.relay = BatchRelay(self, flush_ms=DRAFT_FLUSH_MS, stop_on_cancel=True)
        self.relay.items.connect(self._on_drafted)
        self.relay.failed.connect(self._on_failed)
        self.relay.done.connect(self._on_done)

        self.model = DraftTableModel(self)
        self.model.accepted_changed.connect(self._update_buttons)
        self.model.rowsInserted.connect(self._update_buttons)

        layout = QVBoxLayout(self)
        layout.addLayout(self._build_generate_row())
        layout.addWidget(self._build_table(), 1)
        layout.addLayout(self._build_review_row())
        layout.addWidget(self._build_target_box())
        self.message_label = QLabel()
        self.message_label.setObjectName("draftMessage")
        self.message_label.setWordWrap(True)
        layout.addWidget(self.message_label)
        self.fill_models()
        self.fill_suites()
        self._update_buttons()
        ctx.backends.loading.connect(self._on_backend_loading)
        ctx.backends.loaded.connect(self._on_backend_loaded)

    def _build_generate_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        row.addWidget(QLabel("Model:"))
        self.model_combo = QComboBox()
        self.model_combo.setMinimumWidth(220)
        row.addWidget(self.model_combo)
        self.draft_button = QPushButton("&Draft probes")
        self.draft_button.clicked.connect(self.start_drafting)
        row.addWidget(self.draft_button)
        self.cancel_button = QPushButton("&Cancel drafting")
        self.cancel_button.clicked.connect(self.cancel_drafting)
        row.addWidget(self.cancel_button)
        self.busy_bar = QProgressBar()
        self.busy_bar.setRange(0, 0)
        self.busy_bar.setMaximumWidth(160)
        self.busy_bar.setTextVisible(False)
        self.busy_bar.hide()
        row.addWidget(self.busy_bar)
        self.status_label = QLabel()
        row.addWidget(self.status_label, 1)
        return row

    def _build_table(self) -> QTableView:
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setItemDelegateForColumn(DraftTableModel.EXPECTED, ExpectationDelegate(self.table))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setWordWrap(True)
        self.table.setEditTriggers(
            QAbstractItemView.EditTrigger.DoubleClicked
            | QAbstractItemView.EditTrigger.EditKeyPressed
            | QAbstractItemView.EditTrigger.SelectedClicked
        )
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(DraftTableModel.ACCEPT, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(DraftTableModel.TEXT, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(DraftTableModel.EXPECTED, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(DraftTableModel.CLAUSE, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(DraftTableModel.NOTES, QHeaderView.ResizeMode.Interactive)
        self.table.setColumnWidth(DraftTableModel.NOTES, 180)
        return self.table

    def _build_review_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.accept_all_button = QPushButton("Accept &all")
        self.accept_all_button.clicked.connect(lambda: self.model.set_all_accepted(True))
        self.accept_none_button = QPushButton("Accept &none")
        self.accept_none_button.clicked.connect(lambda: self.model.set_all_accepted(False))
        self.reject_button = QPushButton("&Reject selected")
        self.reject_button.setToolTip("Remove the selected drafts from the list")
        self.reject_button.clicked.connect(self.reject_selected)
        for button in (self.accept_all_button, self.accept_none_button, self.reject_button):
            row.addWidget(button)
        row.addStretch(1)
        self.accepted_label = QLabel()
        row.addWidget(self.accepted_label)
        return row

    def _build_target_box(self) -> QGroupBox:
        box = QGroupBox("Add the accepted drafts to")
        form = QFormLayout(box)
        defaults = suite_defaults(self.config)
        self.new_radio = QRadioButton("A new suite")
        self.append_radio = QRadioButton("An existing suite (saved as its next version)")
        self.target_group = QButtonGroup(self)
        self.target_group.addButton(self.new_radio)
        self.target_group.addButton(self.append_radio)
        self.new_radio.setChecked(True)
        self.suite_id_edit = QLineEdit(defaults.id)
        self.suite_title_edit = QLineEdit(defaults.title)
        self.suite_combo = QComboBox()
        form.addRow(self.new_radio)
        form.addRow("Suite id:", self.suite_id_edit)
        form.addRow("Title:", self.suite_title_edit)
        form.addRow(self.append_radio)
        form.addRow("Suite:", self.suite_combo)
        self.add_button = QPushButton("Add accepted to suite")
        self.add_button.setDefault(False)
        self.add_button.setAutoDefault(False)
        self.add_button.clicked.connect(self.add_accepted)
        self.close_button = QPushButton("Close")
        self.close_button.setAutoDefault(False)
        self.close_button.clicked.connect(self.reject)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.close_button)
        form.addRow(buttons)
        self.target_group.buttonToggled.connect(lambda *_: self._update_buttons())
        return box

    def fill_models(self) -> None:
        """The loaded model first, then every registered model and endpoint."""
        self.model_combo.clear()
        add_model_choices(self.model_combo, self.ctx)

    def fill_suites(self) -> None:
        self.suite_combo.clear()
        for suite in self.ctx.store.suites.list():
            self.suite_combo.addItem(f"{suite.title} — {suite.id} v{suite.version}", suite.id)
        if self.suite_combo.count() == 0:
            self.suite_combo.addItem("(no stored suites)", None)

    @property
    def running(self) -> bool:
        return self.relay.running

    def show_message(self, text: str) -> None:
        self.message_label.setText(text)

    def start_drafting(self) -> bool:
        """Ask the chosen model for drafts; False (with a message) when no model can be used."""
        if self.relay.running:
            return False
        choice = self.model_combo.currentData()
        if choice is None:
            self.show_message("No model to draft with: load or register a model first")
            return False
        try:
            make_backend = model_opener(self.ctx, str(choice), self.backend_factory)
        except Exception as exc:  # shown as one line
            self.show_message(f"Cannot use model {self.model_combo.currentText()}: {exc}")
            return False
        config = self.config

        def work(cancel: CancelToken) -> Iterator[ProbeDraft | DraftFailure]:
            backend, owned = make_backend()
            try:
                yield from draft_probes(backend, config, cancel=cancel)
            finally:
                if owned:
                    backend.close()

        self.failures = []
        self._uses_loaded_model = choice == LOADED_MODEL
        self.show_message("")
        self.status_label.setText("Drafting…")
        self.busy_bar.show()
        self.relay.start(work)
        self._update_buttons()
        return True

    def _on_backend_loading(self, name: str) -> None:
        if self.relay.running and self._uses_loaded_model:
            self.cancel_drafting()
            self.show_message(f"Drafting cancelled: the loaded model is being replaced by {name}")

    def _on_backend_loaded(self, _info: object) -> None:
        if not self.relay.running:
            self.fill_models()
            self._update_buttons()

    def cancel_drafting(self) -> None:
        if self.relay.running:
            self.relay.cancel()
            self.status_label.setText("Cancelling…")

    def reject_selected(self) -> None:
        positions = [index.row() for index in self.table.selectionModel().selectedRows()]
        if positions:
            self.model.remove_rows(positions)
            self.show_message(f"Rejected {len(positions)} draft(s)")

    def _on_drafted(self, batch: list[ProbeDraft | DraftFailure]) -> None:
        self.failures.extend(item for item in batch if isinstance(item, DraftFailure))
        self.model.add_rows([DraftRow.from_draft(item) for item in batch if isinstance(item, ProbeDraft)])
        self.table.resizeRowsToContents()
        self.status_label.setText(f"Drafting… {self.model.rowCount()} draft(s) so far")

    def _on_failed(self, message: str) -> None:
        self.show_message(f"Drafting stopped: {message.splitlines()[0] if message else 'unknown error'}")

    def _on_done(self) -> None:
        self.busy_bar.hide()
        count = self.model.rowCount()
        state = "Cancelled" if self.relay.cancelled else "Done"
        unreadable = f"; {len(self.failures)} clause(s) gave unreadable output" if self.failures else ""
        self.status_label.setText(f"{state}: {count} draft(s){unreadable}")
        self._update_buttons()

    def _accepted_probes(self) -> tuple[list[int], list[Probe]] | None:
        positions = self.model.accepted_positions()
        if not positions:
            self.show_message("Nothing to add: tick the drafts to accept first")
            return None
        probes: list[Probe] = []
        for position in positions:
            try:
                probes.append(self.model.row_at(position).to_probe())
            except ValidationError as exc:
                self.show_message(f"Draft {position + 1}: {validation_problem(exc)}")
                return None
        return positions, probes

    def add_accepted(self) -> ProbeSuite | None:
        """Save the accepted drafts to the chosen suite; None (with a message, nothing saved) on any error."""
        accepted = self._accepted_probes()
        if accepted is None:
            return None
        positions, probes = accepted
        try:
            suite = self._suite_with(probes)
        except (ValueError, StudioError) as exc:
            text = validation_problem(exc) if isinstance(exc, ValidationError) else str(exc)
            self.show_message(f"Not saved: {text}")
            return None
        if suite is None:
            return None
        try:
            stored = self.ctx.store.suites.save(suite)
        except Exception as exc:  # shown as one line; the repository writes atomically
            self.show_message(f"Not saved: {exc}")
            return None
        self.model.remove_rows(positions)
        self.fill_suites()
        self.show_message(f"Added {len(positions)} probe(s) to suite {stored.id} (version {stored.version})")
        self.suite_saved.emit(stored.id, stored.version)
        return stored

    def _suite_with(self, probes: list[Probe]) -> ProbeSuite | None:
        """The suite to store: a new one from the id and title fields, or the chosen one with the probes added."""
        suites = self.ctx.store.suites
        if self.new_radio.isChecked():
            suite_id = self.suite_id_edit.text().strip()
            if suites.exists(suite_id):
                raise ValueError(f"a suite with id {suite_id!r} exists already; choose it under 'An existing suite'")
            data = json.loads(suite_defaults(self.config).model_dump_json())
            data.update(id=suite_id, title=self.suite_title_edit.text().strip())
            data["probes"] = [p.model_dump(mode="json") for p in probes]
            return ProbeSuite.model_validate(data)
        suite_id = self.suite_combo.currentData()
        if suite_id is None:
            raise ValueError("there is no stored suite to add to; create a new one")
        current = suites.get(str(suite_id))
        known = {_text_key(p.text) for p in current.probes}
        fresh = [p for p in probes if _text_key(p.text) not in known]
        if not fresh:
            self.show_message(f"Nothing added: suite {current.id} already has every accepted probe")
            return None
        data = json.loads(current.model_dump_json())
        data["probes"] = [*data["probes"], *(p.model_dump(mode="json") for p in fresh)]
        return ProbeSuite.model_validate(data)

    def _update_buttons(self) -> None:
        running = self.relay.running
        accepted = len(self.model.accepted_positions())
        has_rows = self.model.rowCount() > 0
        self.draft_button.setEnabled(not running and self.model_combo.count() > 0)
        self.cancel_button.setEnabled(running)
        self.model_combo.setEnabled(not running)
        self.accept_all_button.setEnabled(has_rows)
        self.accept_none_button.setEnabled(has_rows)
        self.reject_button.setEnabled(has_rows)
        self.add_button.setEnabled(accepted > 0)
        new = self.new_radio.isChecked()
        self.suite_id_edit.setEnabled(new)
        self.suite_title_edit.setEnabled(new)
        self.suite_combo.setEnabled(not new and self.suite_combo.currentData() is not None)
        self.accepted_label.setText(f"{accepted} of {self.model.rowCount()} accepted")

    def shutdown(self) -> None:
        """Stop drafting and wait for the worker thread."""
        self.relay.shutdown()
        self.busy_bar.hide()

    def done(self, result: int) -> None:
        self.shutdown()
        super().done(result)


def _text_key(text: str) -> str:
    return " ".join(text.split()).casefold()


def suite_defaults(config: SafetyConfig) -> ProbeSuite:
    """The suite the core would make for ``config`` (id, title, kind, template), holding one stand-in probe that
    callers replace: a suite cannot be empty."""
    stand_in = ProbeDraft("stand-in probe", Expectation.ALLOWED, (), "", "")
    return new_suite_from_drafts(config, [stand_in])
