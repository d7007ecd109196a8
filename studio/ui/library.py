"""The config library: every stored config (latest version) with search, status filter and status badges."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from studio.core.documents import ConfigStatus, SafetyConfig
from studio.core.examples import is_example
from studio.ui.context import AppContext
from studio.ui.table_models import RowTableModel
from studio.ui.tables import row_table

STATUS_LABELS: dict[ConfigStatus, str] = {
    ConfigStatus.DRAFT: "draft",
    ConfigStatus.IN_REVIEW: "in review",
    ConfigStatus.APPROVED: "approved",
    ConfigStatus.RETIRED: "retired",
}

#: Badge colours (background) per status; text is drawn black on them in both light and dark schemes.
STATUS_COLOURS: dict[ConfigStatus, str] = {
    ConfigStatus.DRAFT: "#d9dde3",
    ConfigStatus.IN_REVIEW: "#f6d58e",
    ConfigStatus.APPROVED: "#a8dcb0",
    ConfigStatus.RETIRED: "#c9c9c9",
}

STATUS_COLUMN = 1


class ConfigTableModel(RowTableModel[SafetyConfig]):
    """Latest versions of the stored configs; the status column is drawn as a coloured badge."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(
            [
                ("Title", lambda c: c.title),
                ("Status", lambda c: STATUS_LABELS[c.status]),
                ("Tags", lambda c: ", ".join(c.tags)),
            ],
            parent,
        )

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if index.isValid() and index.column() == STATUS_COLUMN and 0 <= index.row() < self.rowCount():
            status = self.row_at(index.row()).status
            if role == Qt.ItemDataRole.BackgroundRole:
                return QBrush(QColor(STATUS_COLOURS[status]))
            if role == Qt.ItemDataRole.ForegroundRole:
                return QBrush(QColor("#000000"))
            if role == Qt.ItemDataRole.TextAlignmentRole:
                return int(Qt.AlignmentFlag.AlignCenter)
        if index.isValid() and role == Qt.ItemDataRole.ToolTipRole and 0 <= index.row() < self.rowCount():
            config = self.row_at(index.row())
            tags = ", ".join(config.tags) or "no tags"
            text = f"{config.id} v{config.version} · {STATUS_LABELS[config.status]} · {config.kind.value} · {tags}"
            if is_example(config):
                text += "\nAn example to try: edit or delete it freely; Help ▸ Add the example configs brings it back."
            return text
        if (
            index.isValid()
            and role == Qt.ItemDataRole.FontRole
            and 0 <= index.row() < self.rowCount()
            and is_example(self.row_at(index.row()))
        ):
            font = QFont()
            font.setItalic(True)
            return font
        return super().data(index, role)


class LibraryPane(QWidget):
    """Search box, status filter and the config table. Activating a row asks for that config to be opened."""

    open_requested = Signal(str)  # config id
    delete_requested = Signal(str)  # config id

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._ctx = ctx
        self.search_edit = QLineEdit()
        self.search_edit.setAccessibleName("Search configs")
        self.search_edit.setPlaceholderText("Search title, text, tags…")
        self.search_edit.setClearButtonEnabled(True)
        self.status_combo = QComboBox()
        self.status_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.status_combo.setMinimumContentsLength(7)
        self.status_combo.setAccessibleName("Filter by status")
        self.status_combo.addItem("Any status", None)
        for status, label in STATUS_LABELS.items():
            self.status_combo.addItem(label, status.value)
        self.tag_combo = QComboBox()
        self.tag_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.tag_combo.setMinimumContentsLength(7)
        self.tag_combo.setAccessibleName("Filter by tag")
        self.tag_combo.addItem("Any tag", None)
        self.model = ConfigTableModel(self)
        self.table = row_table(
            self.model, "Config library", resize=QHeaderView.ResizeMode.Interactive, stretch_last=False
        )
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(STATUS_COLUMN, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(2, 90)
        self.table.setWordWrap(False)
        self.table.activated.connect(self._on_activated)
        self.delete_action = QAction("Delete…", self.table)
        self.delete_action.setToolTip("Delete the selected config (only drafts that were never checked or reviewed)")
        self.delete_action.triggered.connect(self._on_delete)
        self.table.addAction(self.delete_action)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)

        filters = QHBoxLayout()
        filters.addWidget(self.status_combo, 1)
        filters.addWidget(self.tag_combo, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.search_edit)
        layout.addLayout(filters)
        layout.addWidget(self.table)

        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(150)
        self._search_timer.timeout.connect(self.refresh)
        self.search_edit.textChanged.connect(self._search_timer.start)
        self.status_combo.currentIndexChanged.connect(self.refresh)
        self.tag_combo.currentIndexChanged.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        status = self.status_combo.currentData()
        tag = self.tag_combo.currentData()
        configs = self._ctx.store.configs.list(
            search=self.search_edit.text().strip() or None,
            status=ConfigStatus(status) if status else None,
            tag=tag,
        )
        self.model.set_rows(configs)
        self._update_tags(tag)

    def _update_tags(self, current: str | None) -> None:
        tags = sorted({t for config in self._ctx.store.configs.list() for t in config.tags}, key=str.casefold)
        self.tag_combo.blockSignals(True)
        self.tag_combo.clear()
        self.tag_combo.addItem("Any tag", None)
        for tag in tags:
            self.tag_combo.addItem(tag, tag)
        self.tag_combo.setCurrentIndex(max(self.tag_combo.findData(current), 0) if current else 0)
        self.tag_combo.blockSignals(False)

    def select_config(self, config_id: str) -> None:
        for row, config in enumerate(self.model.rows()):
            if config.id == config_id:
                self.table.selectRow(row)
                return

    def selected_config(self) -> SafetyConfig | None:
        rows = self.table.selectionModel().selectedRows()
        return self.model.row_at(rows[0].row()) if rows else None

    def _on_delete(self) -> None:
        config = self.selected_config()
        if config is not None:
            self.delete_requested.emit(config.id)

    def _on_activated(self, index: QModelIndex) -> None:
        if index.isValid():
            self.open_requested.emit(self.model.row_at(index.row()).id)
