"""The list of drafted probes: a table model the author accepts, edits and rejects drafts in, and the editor of
its expected column."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import (
    QAbstractItemModel,
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtWidgets import QComboBox, QStyledItemDelegate, QStyleOptionViewItem, QWidget

from studio.core.documents import Expectation
from studio.core.evals.probegen import EditableDraft

Index = QModelIndex | QPersistentModelIndex

#: Shown in the expected column when the expectation follows from the probe's categories.
BY_CATEGORY = "by category"


def expectation_text(expected: Expectation | None) -> str:
    return BY_CATEGORY if expected is None else expected.value


def expectation_choices(row: EditableDraft) -> list[str]:
    """The values the expected column may take for ``row``."""
    return [expectation_text(e) for e in row.expectations()]


class DraftTableModel(QAbstractTableModel):
    """Drafts with an accept checkbox, editable probe text, expectation and notes."""

    ACCEPT, TEXT, EXPECTED, CLAUSE, NOTES = range(5)
    HEADERS = ("Accept", "Probe", "Expected", "Tests clause", "Notes")

    accepted_changed = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[EditableDraft] = []

    def rows(self) -> list[EditableDraft]:
        return list(self._rows)

    def row_at(self, row: int) -> EditableDraft:
        return self._rows[row]

    def add_rows(self, rows: Sequence[EditableDraft]) -> None:
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
            return expectation_text(row.expected)
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
