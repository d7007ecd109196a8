"""The History pane: every run of a config with its score and date, a trend chart, run-vs-run verdict diffs, and
the regression matrix of approved configs across models."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from studio.core.approval.lifecycle import Lifecycle
from studio.core.errors import StudioError
from studio.core.evals.compare import HistoryRow, MatrixRow, PairRow, config_history, diff_runs, regression_matrix
from studio.core.evals.formatting import format_utc
from studio.ui.availability import offer
from studio.ui.charts import LineChart
from studio.ui.context import AppContext
from studio.ui.glossary import tip
from studio.ui.run_models import HistoryTableModel, MatrixTableModel, PairTableModel
from studio.ui.tables import row_table


class HistoryPane(QWidget):
    message = Signal(str)

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.runs = ctx.store.runs
        self.history: list[HistoryRow] = []
        self.diff_rows: list[PairRow] = []
        self.matrix: list[MatrixRow] = []

        self.config_combo = QComboBox()
        self.config_combo.setAccessibleName("Config")
        self.config_combo.currentIndexChanged.connect(lambda _i: self.show_config())
        self.reviewer_box = QCheckBox("Use reviewer verdicts where given")
        self.reviewer_box.toggled.connect(lambda _on: self.reload())
        self.reload_button = QPushButton("Reload")
        self.reload_button.clicked.connect(self.refresh)
        top = QHBoxLayout()
        top.addWidget(QLabel("Config:"))
        top.addWidget(self.config_combo, 1)
        top.addWidget(self.reviewer_box)
        top.addWidget(self.reload_button)

        self.history_model = HistoryTableModel(self)
        self.history_table = row_table(self.history_model, "Runs of the config", single=False, compact=True)
        self.trend = LineChart("CoSA-Score over runs (oldest → newest)")
        self.trend.setToolTip(tip("CoSA-Score"))
        self.trend.setAccessibleName("Score trend")
        runs_split = QSplitter(Qt.Orientation.Vertical)
        runs_split.addWidget(self.history_table)
        runs_split.addWidget(self.trend)

        self.diff_a = QComboBox()
        self.diff_a.setAccessibleName("Earlier run")
        self.diff_b = QComboBox()
        self.diff_b.setAccessibleName("Later run")
        for combo in (self.diff_a, self.diff_b):
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(30)
        self.diff_button = QPushButton("Diff verdicts")
        self.diff_button.clicked.connect(self.diff_selected)
        self.changes_only = QCheckBox("Only changed items")
        self.changes_only.setChecked(True)
        self.changes_only.toggled.connect(lambda _on: self._show_diff())
        self.diff_summary = QLabel("")
        self.diff_model = PairTableModel(self)
        self.diff_table = row_table(self.diff_model, "Run-vs-run differences", single=False, compact=True)
        diff_controls = QHBoxLayout()
        diff_controls.addWidget(QLabel("A:"))
        diff_controls.addWidget(self.diff_a, 1)
        diff_controls.addWidget(QLabel("B:"))
        diff_controls.addWidget(self.diff_b, 1)
        diff_controls.addWidget(self.diff_button)
        diff_page = QWidget()
        diff_layout = QVBoxLayout(diff_page)
        diff_layout.addLayout(diff_controls)
        diff_layout.addWidget(self.changes_only)
        diff_layout.addWidget(self.diff_summary)
        diff_layout.addWidget(self.diff_table, 1)

        self.approved_only = QCheckBox("Approved configs only")
        self.approved_only.setChecked(True)
        self.approved_only.toggled.connect(lambda _on: self.show_matrix())
        self.baseline_combo = QComboBox()
        self.baseline_combo.setAccessibleName("Baseline model")
        self.baseline_combo.setToolTip("Deltas are measured against this model's scores")
        self.baseline_combo.currentIndexChanged.connect(lambda _i: self.show_matrix())
        self.matrix_summary = QLabel("")
        self.matrix_summary.setWordWrap(True)
        self.matrix_model = MatrixTableModel(self)
        self.matrix_table = row_table(self.matrix_model, "Regression matrix", single=False, compact=True)
        self.matrix_table.horizontalHeader().setStretchLastSection(False)
        matrix_box = QGroupBox("Regression matrix: newest finished score per config and model, change from the first")
        matrix_layout = QVBoxLayout(matrix_box)
        matrix_controls = QHBoxLayout()
        matrix_controls.addWidget(self.approved_only)
        matrix_controls.addStretch(1)
        matrix_controls.addWidget(QLabel("Baseline model:"))
        matrix_controls.addWidget(self.baseline_combo)
        matrix_layout.addLayout(matrix_controls)
        matrix_layout.addWidget(self.matrix_summary)
        matrix_layout.addWidget(self.matrix_table, 1)

        self.tabs = QTabWidget()
        self.tabs.addTab(runs_split, "Runs and trend")
        self.tabs.addTab(diff_page, "Run vs run")
        self.tabs.addTab(matrix_box, "Regression matrix")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.signed_label = QLabel("")
        self.signed_label.setWordWrap(True)
        self.signed_label.setAccessibleName("Who signed the latest version")
        layout.addLayout(top)
        layout.addWidget(self.signed_label)
        layout.addWidget(self.tabs, 1)
        self.refresh()

    @property
    def use(self) -> str:
        return "human" if self.reviewer_box.isChecked() else "judge"

    def refresh(self) -> None:
        current = self.config_combo.currentData()
        self.config_combo.blockSignals(True)
        self.config_combo.clear()
        for config in self.ctx.store.configs.list():
            self.config_combo.addItem(f"{config.title} — {config.id}", config.id)
        index = self.config_combo.findData(current)
        self.config_combo.setCurrentIndex(index if index >= 0 else (0 if self.config_combo.count() else -1))
        self.config_combo.blockSignals(False)
        self.reload()

    def reload(self) -> None:
        self.show_config()
        self.show_matrix()

    def select_config(self, config_id: str) -> None:
        index = self.config_combo.findData(config_id)
        if index >= 0:
            self.config_combo.setCurrentIndex(index)
            self.show_config()

    def show_config(self) -> None:
        config_id = self.config_combo.currentData()
        self.history = config_history(self.runs, config_id, self.use) if config_id is not None else []
        self._show_signatures(config_id)
        self.history_model.set_rows(self.history)
        self.trend.set_values([h.score for h in reversed(self.history)])
        for combo, default in ((self.diff_a, 1), (self.diff_b, 0)):
            combo.clear()
            for row in self.history:
                combo.addItem(f"{format_utc(row.created_utc)} · {row.candidate} · {row.status}", row.run_id)
            if combo.count():
                combo.setCurrentIndex(min(default, combo.count() - 1))
        offer(
            self.diff_button,
            None if len(self.history) >= 2 else "This config needs two check runs to diff their verdicts",
            "Which verdicts changed between the two chosen runs",
        )
        self.diff_rows = []
        self._show_diff()

    def _show_signatures(self, config_id: str | None) -> None:
        """Who signed what about the latest version of the config (read from the signed statements)."""
        if config_id is None:
            self.signed_label.setText("")
            return
        latest = self.ctx.store.configs.latest(config_id)
        acts = Lifecycle(self.ctx.store, self.ctx.settings).signed_acts(latest)
        self.signed_label.setText(f"v{latest.version}: " + ("; ".join(acts) or "nothing signed"))

    def diff_selected(self) -> list[PairRow]:
        run_a, run_b = self.diff_a.currentData(), self.diff_b.currentData()
        if run_a is None or run_b is None:
            return []
        try:
            self.diff_rows = diff_runs(self.runs, run_a, run_b, self.use)
        except StudioError as exc:
            self.message.emit(str(exc))
            self.diff_rows = []
        self._show_diff()
        return self.diff_rows

    def _show_diff(self) -> None:
        changed = [r for r in self.diff_rows if r.flipped or (r.delta is not None and r.delta != 0)]
        self.diff_model.set_rows(changed if self.changes_only.isChecked() else self.diff_rows)
        if self.diff_rows:
            flipped = sum(1 for r in self.diff_rows if r.flipped)
            self.diff_summary.setText(
                f"{len(self.diff_rows)} items in both runs; {len(changed)} changed score, {flipped} flipped verdict"
            )
        else:
            self.diff_summary.setText("Pick two runs and press Diff verdicts")

    def set_baseline(self, model: str) -> None:
        self.baseline_combo.setCurrentIndex(self.baseline_combo.findData(model))

    def matrix_configs(self) -> list[str]:
        if self.approved_only.isChecked():
            return [c.id for c in Lifecycle(self.ctx.store, self.ctx.settings).approved_versions()]
        return [c.id for c in self.ctx.store.configs.list()]

    def show_matrix(self) -> None:
        config_ids = self.matrix_configs()
        models: list[str] = []
        for record in reversed(self.runs.readable_runs()[0]):  # oldest first
            if set(record.config_ids) & set(config_ids) and record.candidate["name"] not in models:
                models.append(record.candidate["name"])
        baseline = self.baseline_combo.currentData()
        self.baseline_combo.blockSignals(True)
        self.baseline_combo.clear()
        for name in models:
            self.baseline_combo.addItem(name, name)
        if baseline in models:
            self.baseline_combo.setCurrentIndex(models.index(baseline))
            models.remove(baseline)
            models.insert(0, baseline)
        self.baseline_combo.blockSignals(False)
        self.matrix = regression_matrix(self.runs, config_ids, models, self.use) if models else []
        self.matrix_model.set_matrix(models, self.matrix)
        drops = self.matrix_model.drops()
        if not config_ids:
            self.matrix_summary.setText("No approved config yet: untick the box to include every config.")
        elif not models:
            self.matrix_summary.setText("None of these configs has a check run yet.")
        else:
            self.matrix_summary.setText(
                f"Baseline model: <b>{models[0]}</b>. "
                + (f"<span style='color:#d0453f'>{len(drops)} drop(s) highlighted.</span>" if drops else "No drops.")
            )
