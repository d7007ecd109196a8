"""Thin Qt table models over lists of plain rows from the core."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt

from studio.core.inference.endpoints import EndpointEntry
from studio.core.inference.registry import ModelEntry
from studio.core.store.exchanges import Exchange
from studio.ui.glossary import column_tip

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
        if not horizontal or not 0 <= section < len(self._columns):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self._columns[section][0]
        if role == Qt.ItemDataRole.ToolTipRole:
            return column_tip(self._columns[section][0])
        return None


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


#: A row of the model manager: a registered GGUF file or a registered endpoint.
RegistryRow = ModelEntry | EndpointEntry
_NONE = "–"


def _cell(file: Callable[[ModelEntry], str], endpoint: Callable[[EndpointEntry], str]) -> Callable[[RegistryRow], str]:
    """A column formatter that shows files and endpoints each their own way."""
    return lambda row: endpoint(row) if isinstance(row, EndpointEntry) else file(row)


class ModelTableModel(RowTableModel[RegistryRow]):
    """The model registry: files (architecture, quantisation, size, context, sha256, source) and endpoints (address,
    served model id, requests at once and where the API key comes from, never the key)."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(
            [
                ("Name", _cell(lambda m: m.name + ("  (default)" if m.is_default else ""), lambda e: e.name)),
                ("Architecture", _cell(lambda m: m.architecture, lambda e: "endpoint")),
                ("Quant", _cell(lambda m: m.quant or _NONE, lambda e: _NONE)),
                ("Size", _cell(lambda m: human_size(m.size_bytes), lambda e: _NONE)),
                ("Context", _cell(lambda m: str(m.context_length) if m.context_length else _NONE, lambda e: _NONE)),
                ("SHA-256", _cell(lambda m: m.sha256[:12], lambda e: _NONE)),
                ("Source", _cell(lambda m: m.source, lambda e: e.base_url)),
                ("Model id", _cell(lambda m: _NONE, lambda e: e.model_id)),
                ("At once", _cell(lambda m: _NONE, lambda e: str(e.concurrency))),
                ("API key", _cell(lambda m: _NONE, lambda e: e.key_source)),
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
