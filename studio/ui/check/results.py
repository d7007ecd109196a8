"""The results half of the Check pane: which run is shown, how it is scored (variant, judge or reviewer), its score
summary, its items with the review panel, and the actions on the shown run (resume, export)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QModelIndex, Qt, Signal
from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import StudioError
from studio.core.evals.formatting import format_utc
from studio.core.evals.runner import export_run, run_report
from studio.core.evals.scoring import Helpfulness, ScoreReport, Variant
from studio.core.store.runs import RunRecord, RunStatus
from studio.core.store.store import Store
from studio.ui.availability import offer
from studio.ui.check.setup import select_data
from studio.ui.check.summary import ScoreSummary
from studio.ui.glossary import tip
from studio.ui.review import ReviewPanel
from studio.ui.run_models import ItemTableModel
from studio.ui.tables import row_table

ITEM_COLUMN_WIDTHS = (110, 120, 80, 200, 300, 55, 60, 65)
#: Characters the run, variant and source choices show at least; they grow with the pane, and their lists show
#: every entry whole. Kept short so that the pane fits a laptop screen without scrolling sideways.
RUN_CHARS, CHOICE_CHARS = 32, 16
RUNNING = "A check is running"
NO_RUN = "Run a check first: there is no run to show"
RESUME_TOOLTIP = "Finish the selected unfinished run with the models it was started with"


@dataclass(frozen=True)
class ScoringChoice:
    """One entry of the variant selector."""

    label: str
    helpfulness: Helpfulness
    variant: Variant
    available: bool = True
    why_not: str = ""


SCORING_CHOICES = (
    ScoringChoice("Plain (graded helpfulness)", Helpfulness.GRADED, Variant.PLAIN),
    ScoringChoice("Binary helpfulness", Helpfulness.BINARY, Variant.PLAIN),
    ScoringChoice("Cascade-oracle (judge filters unsafe replies)", Helpfulness.GRADED, Variant.CASCADE_ORACLE),
    ScoringChoice(
        "Cascade (model filters its own replies)",
        Helpfulness.GRADED,
        Variant.CASCADE,
        available=False,
        why_not="Cascade needs the candidate's own verdicts on its replies: run the check with 'Self-check' ticked.",
    ),
)
CASCADE_POSITION = 3


def run_title(record: RunRecord) -> str:
    configs = ", ".join(record.config_ids)
    return f"{format_utc(record.created_utc)} · {record.status.value} · {record.candidate.get('name')} · {configs}"


class CheckResults(QWidget):
    """Show a stored run: its score under the chosen variant and verdict source, its items, their review."""

    message = Signal(str)
    #: Resume was clicked for the shown run (its id).
    resume_requested = Signal(str)

    def __init__(self, store: Store, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.runs = store.runs
        self.run_id: str | None = None
        self.report: ScoreReport | None = None
        self._running = False

        self.summary = ScoreSummary()
        self.tabs = QTabWidget()
        self.tabs.addTab(self.summary, "Score")
        self.tabs.addTab(self._build_items(), "Items and review")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self._build_top_row())
        layout.addWidget(self.tabs)

    def _build_top_row(self) -> QHBoxLayout:
        self.run_combo = QComboBox()
        self.run_combo.setAccessibleName("Check run shown")
        self.run_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.run_combo.setMinimumContentsLength(RUN_CHARS)
        self.run_combo.currentIndexChanged.connect(self._on_run_chosen)
        self.resume_button = QPushButton("Resume")
        self.resume_button.clicked.connect(self._on_resume_clicked)
        self.variant_combo = QComboBox()
        self.variant_combo.setAccessibleName("Scoring variant")
        model = self.variant_combo.model()
        for position, choice in enumerate(SCORING_CHOICES):
            self.variant_combo.addItem(choice.label, position)
            if not choice.available and isinstance(model, QStandardItemModel):
                entry = model.item(position)
                if entry is not None:
                    entry.setEnabled(False)
                self.variant_combo.setItemData(position, choice.why_not, Qt.ItemDataRole.ToolTipRole)
        self.variant_combo.setToolTip(tip("Cascade"))
        self.variant_combo.currentIndexChanged.connect(lambda _i: self.show_report())
        self.source_combo = QComboBox()
        self.source_combo.setAccessibleName("Verdict source")
        self.source_combo.addItem("Score from the judge", "judge")
        self.source_combo.addItem("Score from the reviewer (judge where not reviewed)", "human")
        self.source_combo.currentIndexChanged.connect(lambda _i: self._on_source_changed())
        for combo in (self.variant_combo, self.source_combo):
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(CHOICE_CHARS)
            combo.view().setMinimumWidth(combo.view().sizeHintForColumn(0) + 24)
        self.csv_button = QPushButton("Export CSV…")
        self.json_button = QPushButton("Export JSON…")
        self.csv_button.clicked.connect(lambda: self._export_dialog(".csv"))
        self.json_button.clicked.connect(lambda: self._export_dialog(".json"))

        top = QHBoxLayout()
        top.addWidget(QLabel("Run:"))
        top.addWidget(self.run_combo, 3)
        top.addWidget(self.resume_button)
        top.addWidget(self.variant_combo, 1)
        top.addWidget(self.source_combo, 1)
        top.addWidget(self.csv_button)
        top.addWidget(self.json_button)
        return top

    def _build_items(self) -> QSplitter:
        self.item_model = ItemTableModel(self)
        self.item_table = row_table(
            self.item_model, "Check items", resize=QHeaderView.ResizeMode.Interactive, compact=True
        )
        self.item_table.setWordWrap(False)
        for column, width in enumerate(ITEM_COLUMN_WIDTHS):
            self.item_table.setColumnWidth(column, width)
        self.item_table.selectionModel().currentRowChanged.connect(self._on_item_selected)
        self.review = ReviewPanel(self.store)
        self.review.item_changed.connect(self._on_item_reviewed)
        self.review.message.connect(self.message)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.item_table)
        split.addWidget(self.review)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        return split

    # -- which run -------------------------------------------------------------------------------------------

    @property
    def use(self) -> str:
        return str(self.source_combo.currentData() or "judge")

    def scoring_choice(self) -> ScoringChoice:
        return SCORING_CHOICES[max(self.variant_combo.currentIndex(), 0)]

    def set_running(self, running: bool, run_id: str | None = None) -> None:
        """While a check runs, its run (``run_id``, None until it is created) stays shown and nothing is reviewed
        or exported."""
        self._running = running
        if running:
            self.run_id = run_id
        self.review.set_editable(not running)
        self.update_buttons()

    def fill_runs(self) -> None:
        """Reload the list of runs; the shown run stays shown, else the newest is shown."""
        shown = self.run_id
        self.run_combo.blockSignals(True)
        self.run_combo.clear()
        records, damaged = self.runs.readable_runs()
        for record in records:
            self.run_combo.addItem(run_title(record), record.id)
        for run_id, _ in damaged:
            self.run_combo.addItem(f"{run_id} · damaged", run_id)
        self.run_combo.blockSignals(False)
        if shown is not None:
            select_data(self.run_combo, shown)
        elif self.run_combo.count():
            self.run_combo.setCurrentIndex(0)
            self._on_run_chosen(0)
        self.update_buttons()

    def show_run(self, run_id: str | None) -> None:
        self.run_id = run_id
        if run_id is None:
            self.item_model.set_rows([])
            self.review.set_run(None)
            self.summary.clear()
            return
        selected = self.review.item
        try:
            record = self.runs.get_run(run_id)
            items = self.runs.items(run_id)
        except StudioError as exc:  # a row edited or damaged outside the studio
            self.item_model.set_rows([])
            self.review.set_run(None)
            self.summary.clear()
            self.summary.show_warnings((str(exc),))
            self.update_buttons()
            return
        self._enable_cascade(record.self_check)
        self.summary.show_warnings(record.warnings)
        self.item_model.set_rows(items)
        if self.review.run_id != run_id:
            self.review.set_run(run_id)
        elif selected is not None:
            row = self.item_model.row_of(selected.config_id, selected.probe_id)
            if row >= 0:
                self.item_table.selectRow(row)
        self.show_report()
        self.update_buttons()

    def show_report(self) -> None:
        if self.run_id is None:
            return
        choice = self.scoring_choice()
        try:
            self.report = run_report(self.runs, self.run_id, self.use, choice.helpfulness, choice.variant)
        except StudioError as exc:  # a damaged run: its message is shown instead of a score
            self.summary.show_warnings((str(exc),))
            return
        self.summary.show_report(self.report)

    def shown_record(self) -> RunRecord | None:
        run_id = self.run_combo.currentData()
        if run_id is None:
            return None
        try:
            return self.runs.get_run(run_id)
        except StudioError:
            return None

    def update_buttons(self) -> None:
        """Resume acts on the shown unfinished run, export on the shown run; neither while a check runs."""
        record = self.shown_record()
        offer(self.run_combo, None if self.run_combo.count() else NO_RUN, "The check run shown below")
        if self._running:
            resume_blocker: str | None = RUNNING
        elif record is None:
            resume_blocker = NO_RUN
        elif record.status is RunStatus.FINISHED:
            resume_blocker = "The shown run is finished: there is nothing to resume"
        else:
            resume_blocker = None
        offer(self.resume_button, resume_blocker, RESUME_TOOLTIP)
        export_blocker = RUNNING if self._running else NO_RUN if self.run_id is None else None
        for button, kind in ((self.csv_button, "a CSV file"), (self.json_button, "a JSON file with its provenance")):
            offer(button, export_blocker, f"Write the shown run's items, verdicts and score to {kind}")

    def _enable_cascade(self, available: bool) -> None:
        """Cascade is offered only for runs that recorded the candidate's own verdicts."""
        model = self.variant_combo.model()
        entry = model.item(CASCADE_POSITION) if isinstance(model, QStandardItemModel) else None
        if entry is not None:
            entry.setEnabled(available)
        why_not = "" if available else SCORING_CHOICES[CASCADE_POSITION].why_not
        self.variant_combo.setItemData(CASCADE_POSITION, why_not, Qt.ItemDataRole.ToolTipRole)
        if not available and self.variant_combo.currentIndex() == CASCADE_POSITION:
            self.variant_combo.setCurrentIndex(0)

    def _on_run_chosen(self, index: int) -> None:
        run_id = self.run_combo.itemData(index)
        if run_id is not None and not (self._running and run_id != self.run_id):
            self.show_run(run_id)
        self.update_buttons()

    def _on_resume_clicked(self) -> None:
        run_id = self.run_combo.currentData()
        if run_id is not None:
            self.resume_requested.emit(str(run_id))

    def _on_source_changed(self) -> None:
        self.item_model.set_use(self.use)
        self.show_report()

    def _on_item_selected(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if current.isValid():
            self.review.set_item(self.item_model.row_at(current.row()))
            self.review.set_editable(not self._running)

    def _on_item_reviewed(self, item: Any) -> None:
        self.item_model.replace_item(item)
        self.show_report()

    # -- export ----------------------------------------------------------------------------------------------

    def export_to(self, path: Path) -> bool:
        if self.run_id is None:
            return False
        try:
            export_run(self.runs, self.run_id, path)
        except (OSError, StudioError) as exc:
            self.message.emit(f"{path}: could not export: {exc}")
            return False
        self.message.emit(f"Wrote {path}")
        return True

    def _export_dialog(self, suffix: str) -> None:
        if self.run_id is None:
            return
        kind = "CSV (*.csv)" if suffix == ".csv" else "JSON (*.json)"
        path, _filter = QFileDialog.getSaveFileName(self, "Export the check run", f"{self.run_id}{suffix}", kind)
        if path:
            self.export_to(Path(path))
