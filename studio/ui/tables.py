"""How a list of rows is shown: one table view set up the same way in every pane, so that selecting, sizing and
row height behave alike everywhere."""

from __future__ import annotations

from PySide6.QtCore import QAbstractItemModel
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView, QWidget

#: Extra pixels over the font height of a compact row.
COMPACT_ROW_PADDING = 8


def row_table(
    model: QAbstractItemModel,
    name: str,
    *,
    resize: QHeaderView.ResizeMode = QHeaderView.ResizeMode.ResizeToContents,
    stretch_last: bool = True,
    single: bool = True,
    compact: bool = False,
    parent: QWidget | None = None,
) -> QTableView:
    """A table of ``model`` named ``name`` for screen readers: whole rows are selected (one at a time unless
    ``single`` is off), there are no row numbers, columns follow ``resize`` and the last one takes the spare width
    unless ``stretch_last`` is off; ``compact`` rows are one line of text high."""
    table = QTableView(parent)
    table.setModel(model)
    table.setAccessibleName(name)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    if single:
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.verticalHeader().hide()
    if compact:
        table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + COMPACT_ROW_PADDING)
    table.horizontalHeader().setSectionResizeMode(resize)
    table.horizontalHeader().setStretchLastSection(stretch_last)
    return table
