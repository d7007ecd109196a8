"""The Compare pane: two configs (or one config on two models) on the same probes. Replies side by side, the
config diff beside the probes whose verdict flipped, and for each flip the diff hunk that most likely caused it."""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import QModelIndex, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import StudioError
from studio.core.evals.compare import Hunk, PairRow, compare_configs
from studio.core.evals.formatting import format_score, format_utc
from studio.ui.availability import offer
from studio.ui.context import AppContext
from studio.ui.glossary import tip
from studio.ui.run_models import PairTableModel, fmt_safe
from studio.ui.tables import row_table

REMOVED_BG = "#f6d3d1"
ADDED_BG = "#d4efd9"
HIGHLIGHT_BORDER = "#e0a800"


def diff_html(hunks: list[Hunk], highlighted: int | None = None) -> str:
    """The hunks as HTML: removed sentences on red, added on green, the highlighted hunk framed in amber."""
    if not hunks:
        return "<p><i>The two config texts are identical: differences come from the models or the run.</i></p>"
    parts = []
    for hunk in hunks:
        framed = hunk.index == highlighted
        title = f"Hunk {hunk.index + 1}" + (" — likely cause of the selected flip" if framed else "")
        # Qt's rich-text engine frames table cells reliably, so each hunk is a one-cell table.
        border = f"3px solid {HIGHLIGHT_BORDER}" if framed else "1px solid #bbbbbb"
        rows = [f"<tr><td><a name='hunk{hunk.index}'></a><b>{title}</b></td></tr>"]
        rows += [
            f"<tr><td style='background:{REMOVED_BG}; color:#000'>− {html.escape(s)}</td></tr>" for s in hunk.removed
        ]
        rows += [f"<tr><td style='background:{ADDED_BG}; color:#000'>+ {html.escape(s)}</td></tr>" for s in hunk.added]
        parts.append(
            f"<table width='100%' cellspacing='0' cellpadding='3' style='border: {border}; margin-bottom: 8px'>"
            + "".join(rows)
            + "</table>"
        )
    return "".join(parts)


class ComparePane(QWidget):
    """Choose a (run, config) for each side, compare, and follow flips to the config change behind them."""

    message = Signal(str)

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.runs = ctx.store.runs
        self.hunks: list[Hunk] = []
        self.pairs: list[PairRow] = []
        self.highlighted_hunk: int | None = None
        self._sides: tuple[tuple[str, str], tuple[str, str]] | None = None

        self.run_a = QComboBox()
        self.run_a.setAccessibleName("Run of side A")
        self.config_a = QComboBox()
        self.config_a.setAccessibleName("Config of side A")
        self.run_b = QComboBox()
        self.run_b.setAccessibleName("Run of side B")
        self.config_b = QComboBox()
        self.config_b.setAccessibleName("Config of side B")
        for combo in (self.run_a, self.run_b):
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(36)
        self.run_a.currentIndexChanged.connect(lambda _i: self._fill_configs(self.run_a, self.config_a))
        self.run_b.currentIndexChanged.connect(lambda _i: self._fill_configs(self.run_b, self.config_b))
        self.compare_button = QPushButton("Compare")
        self.compare_button.clicked.connect(self.compare)
        self.refresh_button = QPushButton("Reload runs")
        self.refresh_button.clicked.connect(self.refresh)
        self.only_flips = QCheckBox("Only flipped verdicts")
        self.only_flips.setChecked(True)
        self.only_flips.toggled.connect(lambda _on: self._show_rows())
        self.summary = QLabel("Choose two sides and press Compare")
        self.summary.setWordWrap(True)
        self.summary.setToolTip(tip("Flip"))

        sides = QGridLayout()
        sides.addWidget(QLabel("<b>A</b> run:"), 0, 0)
        sides.addWidget(self.run_a, 0, 1)
        sides.addWidget(QLabel("config:"), 0, 2)
        sides.addWidget(self.config_a, 0, 3)
        sides.addWidget(QLabel("<b>B</b> run:"), 1, 0)
        sides.addWidget(self.run_b, 1, 1)
        sides.addWidget(QLabel("config:"), 1, 2)
        sides.addWidget(self.config_b, 1, 3)
        sides.setColumnStretch(1, 3)
        sides.setColumnStretch(3, 1)
        buttons = QVBoxLayout()
        buttons.addWidget(self.compare_button)
        buttons.addWidget(self.refresh_button)
        top = QHBoxLayout()
        top.addLayout(sides, 1)
        top.addLayout(buttons)

        self.pair_model = PairTableModel(self)
        self.pair_table = row_table(self.pair_model, "Compared probes", stretch_last=False, compact=True)
        self.pair_table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.pair_table.selectionModel().currentRowChanged.connect(self._on_pair_selected)
        self.diff_view = QTextBrowser()
        self.diff_view.setAccessibleName("Config diff")
        self.diff_view.setOpenLinks(False)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.only_flips)
        left_layout.addWidget(self.pair_table)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(QLabel("Config diff (A → B)"))
        right_layout.addWidget(self.diff_view)
        middle = QSplitter(Qt.Orientation.Horizontal)
        middle.addWidget(left)
        middle.addWidget(right)
        middle.setStretchFactor(0, 3)
        middle.setStretchFactor(1, 2)

        self.prompt_label = QLabel("")
        self.prompt_label.setWordWrap(True)
        self.reply_a = QPlainTextEdit()
        self.reply_a.setReadOnly(True)
        self.reply_a.setAccessibleName("Reply under A")
        self.reply_b = QPlainTextEdit()
        self.reply_b.setReadOnly(True)
        self.reply_b.setAccessibleName("Reply under B")
        self.verdict_a = QLabel("A")
        self.verdict_b = QLabel("B")
        replies = QGridLayout()
        replies.addWidget(self.verdict_a, 0, 0)
        replies.addWidget(self.verdict_b, 0, 1)
        replies.addWidget(self.reply_a, 1, 0)
        replies.addWidget(self.reply_b, 1, 1)
        bottom = QWidget()
        bottom_layout = QVBoxLayout(bottom)
        bottom_layout.setContentsMargins(0, 0, 0, 0)
        bottom_layout.addWidget(self.prompt_label)
        bottom_layout.addLayout(replies)

        vertical = QSplitter(Qt.Orientation.Vertical)
        vertical.addWidget(middle)
        vertical.addWidget(bottom)
        vertical.setStretchFactor(0, 3)
        vertical.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(self.summary)
        layout.addWidget(vertical, 1)
        self.refresh()

    # -- choices ---------------------------------------------------------------------------------------------

    def refresh(self) -> None:
        records = self.runs.readable_runs()[0]  # a damaged run is shown (as such) in the Check pane
        for combo in (self.run_a, self.run_b):
            current = combo.currentData()
            combo.blockSignals(True)
            combo.clear()
            for record in records:
                when = format_utc(record.created_utc)
                combo.addItem(f"{when} · {record.candidate.get('name')} · {record.status.value}", record.id)
            index = combo.findData(current)
            combo.setCurrentIndex(index if index >= 0 else (0 if records else -1))
            combo.blockSignals(False)
        self._fill_configs(self.run_a, self.config_a)
        self._fill_configs(self.run_b, self.config_b)
        if self.config_b.count() > 1 and self.run_a.currentData() == self.run_b.currentData():
            self.config_b.setCurrentIndex(1)
        offer(
            self.compare_button,
            None if records else "No finished check run yet: run a check (Evaluate ▸ Check) to compare its configs",
            "Compare the chosen configs probe by probe",
        )

    def _fill_configs(self, run_combo: QComboBox, config_combo: QComboBox) -> None:
        current = config_combo.currentData()
        config_combo.clear()
        run_id = run_combo.currentData()
        if run_id is None:
            return
        try:
            config_ids = self.runs.get_run(run_id).config_ids
        except StudioError:
            return
        for config_id in config_ids:
            config_combo.addItem(config_id, config_id)
        index = config_combo.findData(current)
        if index >= 0:
            config_combo.setCurrentIndex(index)

    def set_sides(self, run_a: str, config_a: str, run_b: str, config_b: str) -> None:
        for run_combo, config_combo, run_id, config_id in (
            (self.run_a, self.config_a, run_a, config_a),
            (self.run_b, self.config_b, run_b, config_b),
        ):
            run_combo.setCurrentIndex(run_combo.findData(run_id))
            self._fill_configs(run_combo, config_combo)
            config_combo.setCurrentIndex(config_combo.findData(config_id))

    # -- comparing -------------------------------------------------------------------------------------------

    def compare(self) -> list[PairRow]:
        sides = (
            (self.run_a.currentData(), self.config_a.currentData()),
            (self.run_b.currentData(), self.config_b.currentData()),
        )
        if any(part is None for side in sides for part in side):
            self.message.emit("Choose a run and a config on both sides")
            return []
        (run_a, config_a), (run_b, config_b) = sides
        try:
            self.hunks, self.pairs = compare_configs(self.runs, run_a, config_a, run_b, config_b)
        except StudioError as exc:
            self.message.emit(str(exc))
            return []
        self._sides = ((run_a, config_a), (run_b, config_b))
        self.highlighted_hunk = None
        flips = self.flips()
        linked = sum(1 for p in flips if p.hunk is not None)
        self.summary.setText(
            f"{len(self.pairs)} probes on both sides; <b>{len(flips)}</b> flipped safety verdict(s), "
            f"{linked} linked to a config change; {len(self.hunks)} change(s) between the config texts."
        )
        self.diff_view.setHtml(diff_html(self.hunks))
        self._show_rows()
        return self.pairs

    def flips(self) -> list[PairRow]:
        return [p for p in self.pairs if p.flipped]

    def shown_rows(self) -> list[PairRow]:
        return self.pair_model.rows()

    def _show_rows(self) -> None:
        self.pair_model.set_rows(self.flips() if self.only_flips.isChecked() else self.pairs)
        self._show_replies(None)

    def select_row(self, row: int) -> None:
        self.pair_table.selectRow(row)

    def _on_pair_selected(self, current: QModelIndex, _previous: QModelIndex) -> None:
        pair = self.pair_model.row_at(current.row()) if current.isValid() else None
        self._show_replies(pair)
        self.highlighted_hunk = pair.hunk.index if pair is not None and pair.hunk is not None else None
        self.diff_view.setHtml(diff_html(self.hunks, self.highlighted_hunk))
        if self.highlighted_hunk is not None:
            self.diff_view.scrollToAnchor(f"hunk{self.highlighted_hunk}")

    def _show_replies(self, pair: PairRow | None) -> None:
        if pair is None or self._sides is None:
            self.prompt_label.setText("")
            self.reply_a.clear()
            self.reply_b.clear()
            self.verdict_a.setText("A")
            self.verdict_b.setText("B")
            return
        (run_a, config_a), (run_b, config_b) = self._sides
        item_a = self.runs.item(run_a, config_a, pair.key)
        item_b = self.runs.item(run_b, config_b, pair.key)
        self.prompt_label.setText(f"<b>{html.escape(pair.key)}</b>: {html.escape(pair.prompt)}")
        self.reply_a.setPlainText(item_a.response or "(no reply)")
        self.reply_b.setPlainText(item_b.response or "(no reply)")
        self.verdict_a.setText(_verdict("A", config_a, pair.a_safe, pair.a_score, item_a.reason))
        self.verdict_b.setText(_verdict("B", config_b, pair.b_safe, pair.b_score, item_b.reason))


def _verdict(side: str, config_id: str, safe: bool | None, score: float | None, reason: Any) -> str:
    text = f"<b>{side}</b> ({html.escape(config_id)}): {fmt_safe(safe)}, score {format_score(score)}"
    if reason:
        text += f" — {html.escape(str(reason))}"
    return text
