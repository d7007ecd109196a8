"""Thin Qt table models over lists of plain rows from the core."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt

from studio.core.inference.registry import ModelEntry
from studio.core.store.exchanges import Exchange

RowT = TypeVar("RowT")
Index = QModelIndex | QPersistentModelIndex


class RowTableModel(QAbstractTableModel, Generic[RowT]):
    """A read-only table: one row per item, one column per (header, formatter) pair."""

    def __init__(self, columns: Sequence[tuple[str, Callable[[RowT], str]]], parent: Any = None) -> None:
        super().__init__(parent)
        self._columns = list(columns)
        self._rows: list[RowT] = []

    def set_rows(self, rows: Sequence[RowT]) -> None:
        self.beginResetModel()
        self._rows = list(rows)
        self.endResetModel()

    def insert_row(self, position: int, item: RowT) -> None:
        self.beginInsertRows(QModelIndex(), position, position)
        self._rows.insert(position, item)
        self.endInsertRows()

    def replace_row(self, position: int, item: RowT) -> None:
        self._rows[position] = item
        self.dataChanged.emit(self.index(position, 0), self.index(position, len(self._columns) - 1))

    def row_at(self, row: int) -> RowT:
        return self._rows[row]

    def rows(self) -> list[RowT]:
        return list(self._rows)

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._columns)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            return self._columns[index.column()][1](self._rows[index.row()])
        return None

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        horizontal = orientation == Qt.Orientation.Horizontal
        if role == Qt.ItemDataRole.DisplayRole and horizontal and 0 <= section < len(self._columns):
            return self._columns[section][0]
        return None


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


class ModelTableModel(RowTableModel[ModelEntry]):
    """The model registry: name, architecture, quantisation, size, context, sha256, source."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(
            [
                ("Name", lambda m: m.name + ("  (default)" if m.is_default else "")),
                ("Architecture", lambda m: m.architecture),
                ("Quant", lambda m: m.quant or "–"),
                ("Size", lambda m: human_size(m.size_bytes)),
                ("Context", lambda m: str(m.context_length) if m.context_length else "–"),
                ("SHA-256", lambda m: m.sha256[:12]),
                ("Source", lambda m: m.source),
            ],
            parent,
        )


def _seconds(value: float | None) -> str:
    return f"{value:.2f} s" if value is not None else "–"


class ExchangeTableModel(RowTableModel[Exchange]):
    """Stored probe exchanges, newest first."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(
            [
                ("Time (UTC)", lambda e: e.created_utc.strftime("%m-%d %H:%M:%S")),
                (
                    "Config",
                    lambda e: (
                        f"{e.config_id or '–'} v{e.config_version}"
                        if e.config_version
                        else f"{e.config_id or '–'} (edited)"
                    ),
                ),
                ("Prompt", lambda e: " ".join(e.prompt.split())[:80]),
                ("Reply", lambda e: " ".join(e.reply.split())[:80]),
                ("Verdict", lambda e: e.verdict.value if e.verdict else ""),
                ("Stop", lambda e: e.stop_reason),
                ("TTFT", lambda e: _seconds(e.ttft_s)),
                ("tok/s", lambda e: f"{e.tokens_per_s:.1f}" if e.tokens_per_s else "–"),
                ("Model", lambda e: e.model_name),
            ],
            parent,
        )
