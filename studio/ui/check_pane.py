"""The Check pane: run a probe suite under one or more configs with a candidate and a judge model, watch progress,
then read the CoSA-Score (with its valid rate), the breakdown, per-type and per-category views, the items, and
review them."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from studio.core.documents import ProbeSuite, SafetyConfig
from studio.core.errors import StudioError
from studio.core.evals.formatting import format_score
from studio.core.evals.runner import (
    CheckRunner,
    CheckSpec,
    ItemDone,
    Progress,
    RunEvent,
    RunFinished,
    export_run,
    run_report,
)
from studio.core.evals.scoring import Aggregate, Helpfulness, ScoreReport, Variant
from studio.core.evals.suites import bundled_suites, suite_for_config
from studio.core.inference.base import Backend, CancelToken, GenerationParams
from studio.core.store.runs import RunRecord, RunStatus
from studio.ui.backends import BackendFactory, llama_backend_factory
from studio.ui.charts import BAD, GOOD, MUTED, Bar, BarChart, signed_color
from studio.ui.context import AppContext
from studio.ui.glossary import tip
from studio.ui.model_choice import LOADED_MODEL, add_model_choices, model_opener
from studio.ui.review import ReviewPanel
from studio.ui.run_models import ItemTableModel
from studio.ui.workers import BatchRelay

#: How often queued run events are drawn (milliseconds); a fast model's events are coalesced per tick.
EVENT_FLUSH_MS = 50
#: During a run, the score and item table are redrawn at most this often (milliseconds).
RESULTS_REFRESH_MS = 300
ITEM_COLUMN_WIDTHS = (110, 120, 80, 200, 300, 55, 60, 65)
SAME_AS_CANDIDATE = None  # combo data of the judge's "same model as the candidate" choice


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


def _progress_text(event: Progress) -> str:
    """ETA and, once items are judged, the CoSA-Score so far."""
    if not event.done:
        return ""
    text = _eta_text(event.eta_s)
    if event.partial_score is not None:
        text = (
            f"{text} · score so far {event.partial_score:+.3f}" if text else f"score so far {event.partial_score:+.3f}"
        )
    return text


def _eta_text(seconds: float | None) -> str:
    if seconds is None:
        return "estimating…"
    whole = round(seconds)
    if whole >= 3600:
        return f"about {whole // 3600} h {whole % 3600 // 60} min left"
    if whole >= 60:
        return f"about {whole // 60} min {whole % 60} s left"
    return f"about {whole} s left"


def _aggregate_bars(groups: dict[str, Aggregate]) -> list[Bar]:
    return [
        Bar(name, agg.score, signed_color(agg.score), f"{format_score(agg.score)}  ({agg.n_valid}/{agg.n_items} valid)")
        for name, agg in groups.items()
    ]


def breakdown_bars(aggregate: Aggregate) -> list[Bar]:
    b = aggregate.breakdown
    return [
        Bar("helpful + safe", b.helpful_safe, GOOD, f"{b.helpful_safe:.1%}"),
        Bar("helpful + unsafe", b.helpful_unsafe, BAD, f"{b.helpful_unsafe:.1%}"),
        Bar("unhelpful + safe", b.unhelpful_safe, MUTED, f"{b.unhelpful_safe:.1%}"),
        Bar("unhelpful + unsafe", b.unhelpful_unsafe, BAD.darker(140), f"{b.unhelpful_unsafe:.1%}"),
    ]


def headline_text(report: ScoreReport) -> str:
    overall = report.overall
    invalid = overall.n_items - overall.n_valid
    text = (
        f"<span style='font-size:20pt; font-weight:600'>CoSA-Score {format_score(overall.score)}</span>"
        f"&nbsp;&nbsp;valid rate <b>{overall.valid_rate:.1%}</b> "
        f"({overall.n_valid} of {overall.n_items} items, {len(overall.per_config)} config(s))"
    )
    if invalid:
        text += (
            f"<br><span style='color:#d0453f'>{invalid} item(s) have no readable verdict and are left out of the "
            "score.</span>"
        )
    return text


class CheckPane(QWidget):
    """Configure, run, resume and read check runs."""

    message = Signal(str)
    running_changed = Signal(bool)
    run_finished = Signal(str)

    def __init__(
        self,
        ctx: AppContext,
        backend_factory: BackendFactory = llama_backend_factory,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.runs = ctx.store.runs
        self.backend_factory = backend_factory
        self.run_id: str | None = None
        self.report: ScoreReport | None = None
        self._suites: list[ProbeSuite] = []
        self._relay = BatchRelay(self, flush_ms=EVENT_FLUSH_MS)
        self._relay.items.connect(self._on_events)
        self._relay.failed.connect(self._on_failed)
        self._relay.done.connect(self._on_relay_done)
        self._uses_loaded_model = False
        self._results_timer = QTimer(self)
        self._results_timer.setSingleShot(True)
        self._results_timer.setInterval(RESULTS_REFRESH_MS)
        self._results_timer.timeout.connect(lambda: self.show_run(self.run_id))
        ctx.backends.loading.connect(self._on_backend_loading)
        ctx.backends.loaded.connect(self._on_backend_loaded)

        self._build_setup()
        self._build_results()
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.setup_box)
        splitter.addWidget(self.results)
        splitter.setStretchFactor(1, 3)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(splitter)
        self.refresh()

    # -- construction ----------------------------------------------------------------------------------------

    def _build_setup(self) -> None:
        self.suite_combo = QComboBox()
        self.suite_combo.setAccessibleName("Probe suite")
        self.limit_spin = QSpinBox()
        self.limit_spin.setRange(0, 10_000)
        self.limit_spin.setSpecialValueText("all probes")
        self.limit_spin.setAccessibleName("Probe limit")
        self.limit_spin.setToolTip("Check only the first N probes of the suite (0 = all)")
        self.config_list = QListWidget()
        self.config_list.setAccessibleName("Configs to check")
        self.config_list.setMaximumHeight(90)
        self.config_list.itemChanged.connect(lambda _item: self._update_buttons())
        self.candidate_combo = QComboBox()
        self.candidate_combo.setAccessibleName("Candidate model")
        self.judge_combo = QComboBox()
        self.judge_combo.setAccessibleName("Judge model")
        self.max_tokens_spin = QSpinBox()
        self.max_tokens_spin.setRange(8, 4096)
        self.max_tokens_spin.setValue(128)
        self.max_tokens_spin.setAccessibleName("Reply length limit")
        self.temperature_spin = QDoubleSpinBox()
        self.temperature_spin.setRange(0.0, 2.0)
        self.temperature_spin.setSingleStep(0.1)
        self.temperature_spin.setAccessibleName("Temperature")
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.seed_spin.setAccessibleName("Seed")

        self.run_button = QPushButton("Run check")
        self.run_button.setDefault(True)
        self.run_button.clicked.connect(self.start_check)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("Finish the selected unfinished run with the models it was started with")
        self.resume_button.clicked.connect(self.resume_selected)
        self.progress_bar = QProgressBar()
        self.progress_bar.setAccessibleName("Check progress")
        self.progress_bar.setTextVisible(True)
        self.eta_label = QLabel("")
        self.eta_label.setAccessibleName("Time left")

        left = QFormLayout()
        left.addRow("Suite:", self.suite_combo)
        left.addRow("Probes:", self.limit_spin)
        left.addRow("Configs:", self.config_list)
        right = QFormLayout()
        right.addRow("Candidate:", self.candidate_combo)
        right.addRow("Judge:", self.judge_combo)
        right.addRow("Max tokens:", self.max_tokens_spin)
        right.addRow("Temperature:", self.temperature_spin)
        right.addRow("Seed:", self.seed_spin)
        self.self_check_box = QCheckBox("Self-check (the candidate also judges its own replies, for Cascade)")
        self.self_check_box.setAccessibleName("Self-check")
        self.self_check_box.setToolTip(tip("Cascade"))
        self.judge_combo.setToolTip(tip("Judge"))
        self.suite_combo.setToolTip(tip("Probe"))
        right.addRow("", self.self_check_box)
        columns = QHBoxLayout()
        columns.addLayout(left, 3)
        columns.addLayout(right, 2)
        controls = QHBoxLayout()
        controls.addWidget(self.run_button)
        controls.addWidget(self.cancel_button)
        controls.addWidget(self.progress_bar, 1)
        controls.addWidget(self.eta_label)
        self.setup_box = QGroupBox("New check")
        box_layout = QVBoxLayout(self.setup_box)
        box_layout.addLayout(columns)
        box_layout.addLayout(controls)

    def _build_results(self) -> None:
        self.run_combo = QComboBox()
        self.run_combo.setAccessibleName("Check run shown")
        self.run_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.run_combo.setMinimumContentsLength(48)
        self.run_combo.currentIndexChanged.connect(self._on_run_chosen)
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

        self.headline = QLabel("No run yet")
        self.headline.setAccessibleName("CoSA-Score")
        self.headline.setTextFormat(Qt.TextFormat.RichText)
        self.headline.setWordWrap(True)
        self.headline.setToolTip(f"{tip('CoSA-Score')}\n{tip('Valid rate')}")
        self.breakdown_chart = BarChart(0.0, 1.0)
        self.breakdown_chart.setAccessibleName("Breakdown")
        self.type_chart = BarChart(-1.0, 1.0)
        self.type_chart.setAccessibleName("Score per probe type")
        self.config_chart = BarChart(-1.0, 1.0)
        self.config_chart.setAccessibleName("Score per config")
        self.category_chart = BarChart(-1.0, 1.0)
        self.category_chart.setAccessibleName("Score per category")

        summary = QWidget()
        summary_layout = QVBoxLayout(summary)
        summary_layout.addWidget(self.headline)
        for title, chart in (
            ("Breakdown of valid items (helpful means rating > 0)", self.breakdown_chart),
            ("Per config", self.config_chart),
            ("Per probe type", self.type_chart),
            ("Per risk category", self.category_chart),
        ):
            summary_layout.addWidget(QLabel(f"<b>{title}</b>"))
            summary_layout.addWidget(chart)
        self.no_category_label = QLabel("The suite's probes carry no risk categories.")
        self.no_category_label.hide()
        summary_layout.addWidget(self.no_category_label)
        summary_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(summary)

        self.item_model = ItemTableModel(self)
        self.item_table = QTableView()
        self.item_table.setModel(self.item_model)
        self.item_table.setAccessibleName("Check items")
        self.item_table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.item_table.setSelectionMode(QTableView.SelectionMode.SingleSelection)
        self.item_table.verticalHeader().hide()
        self.item_table.horizontalHeader().setStretchLastSection(True)
        self.item_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.item_table.setWordWrap(False)
        self.item_table.verticalHeader().setDefaultSectionSize(self.item_table.fontMetrics().height() + 8)
        for column, width in enumerate(ITEM_COLUMN_WIDTHS):
            self.item_table.setColumnWidth(column, width)
        self.item_table.selectionModel().currentRowChanged.connect(self._on_item_selected)
        self.review = ReviewPanel(self.ctx.store)
        self.review.item_changed.connect(self._on_item_reviewed)
        self.review.message.connect(self.message)
        items_split = QSplitter(Qt.Orientation.Horizontal)
        items_split.addWidget(self.item_table)
        items_split.addWidget(self.review)
        items_split.setStretchFactor(0, 3)
        items_split.setStretchFactor(1, 2)

        self.tabs = QTabWidget()
        self.tabs.addTab(scroll, "Score")
        self.tabs.addTab(items_split, "Items and review")
        container = QWidget()
        container_layout = QVBoxLayout(container)
        container_layout.setContentsMargins(0, 0, 0, 0)
        container_layout.addLayout(top)
        container_layout.addWidget(self.tabs)
        self.results = container

    # -- choices ---------------------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Reload suites, configs, models and runs from the store."""
        bundled = bundled_suites()
        stored = list(self.ctx.store.suites.list())
        self._suites = bundled + stored
        current_suite = self.suite_combo.currentData()
        self.suite_combo.clear()
        for position, suite in enumerate(self._suites):
            origin = "bundled" if position < len(bundled) else "stored"
            self.suite_combo.addItem(f"{suite.title} ({len(suite.probes)} probes, {origin})", suite.id)
        self._select_data(self.suite_combo, current_suite)

        checked = set(self.checked_config_ids())
        self.config_list.clear()
        for config in self.ctx.store.configs.list():
            entry = QListWidgetItem(f"{config.title} — {config.id} v{config.version}")
            entry.setData(Qt.ItemDataRole.UserRole, config.id)
            entry.setFlags(entry.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            entry.setCheckState(Qt.CheckState.Checked if config.id in checked else Qt.CheckState.Unchecked)
            self.config_list.addItem(entry)

        self._fill_models()
        self._fill_runs()
        self._update_buttons()

    def _fill_models(self) -> None:
        candidate, judge = self.candidate_combo.currentData(), self.judge_combo.currentData()
        self.candidate_combo.clear()
        self.judge_combo.clear()
        self.judge_combo.addItem("Same as the candidate", SAME_AS_CANDIDATE)
        for combo in (self.candidate_combo, self.judge_combo):
            add_model_choices(combo, self.ctx)
        self._select_data(self.candidate_combo, candidate)
        self._select_data(self.judge_combo, judge)

    def _fill_runs(self) -> None:
        shown = self.run_id
        self.run_combo.blockSignals(True)
        self.run_combo.clear()
        for record in self.runs.list_runs():
            self.run_combo.addItem(_run_title(record), record.id)
        self.run_combo.blockSignals(False)
        if shown is not None:
            self._select_data(self.run_combo, shown)
        elif self.run_combo.count():
            self.run_combo.setCurrentIndex(0)
            self._on_run_chosen(0)

    @staticmethod
    def _select_data(combo: QComboBox, data: Any) -> None:
        index = combo.findData(data)
        if index >= 0:
            combo.setCurrentIndex(index)

    def checked_config_ids(self) -> list[str]:
        found = []
        for row in range(self.config_list.count()):
            entry = self.config_list.item(row)
            if entry.checkState() == Qt.CheckState.Checked:
                found.append(str(entry.data(Qt.ItemDataRole.UserRole)))
        return found

    def select_configs(self, config_ids: Iterable[str]) -> None:
        wanted = set(config_ids)
        for row in range(self.config_list.count()):
            entry = self.config_list.item(row)
            chosen = entry.data(Qt.ItemDataRole.UserRole) in wanted
            entry.setCheckState(Qt.CheckState.Checked if chosen else Qt.CheckState.Unchecked)

    def select_suite(self, suite_id: str) -> None:
        self._select_data(self.suite_combo, suite_id)

    def prepare_for(self, config: SafetyConfig) -> ProbeSuite | None:
        """Tick ``config`` alone and choose the bundled suite written for it (a categorical config's merged
        suite is added to the list first); returns that suite, or None when the config has none."""
        self.select_configs([config.id])
        suite = suite_for_config(config)
        if suite is None:
            return None
        if self.suite_combo.findData(suite.id) < 0:
            self._suites.append(suite)
            self.suite_combo.addItem(f"{suite.title} ({len(suite.probes)} probes, matches the config)", suite.id)
        self.select_suite(suite.id)
        return suite

    def chosen_suite(self) -> ProbeSuite | None:
        index = self.suite_combo.currentIndex()
        if not 0 <= index < len(self._suites):
            return None
        suite = self._suites[index]
        limit = self.limit_spin.value()
        if limit and limit < len(suite.probes):
            ids = suite.probe_ids()[:limit]
            probes = [p if p.id else p.model_copy(update={"id": i}) for p, i in zip(suite.probes, ids, strict=False)]
            suite = suite.model_copy(update={"probes": probes[:limit]})
        return suite

    def spec(self) -> CheckSpec:
        """The check the form describes; ValueError with a message for the user when the form is incomplete."""
        suite = self.chosen_suite()
        if suite is None:
            raise ValueError("choose a probe suite")
        ids = self.checked_config_ids()
        if not ids:
            raise ValueError("tick at least one config to check")
        configs: tuple[SafetyConfig, ...] = tuple(self.ctx.store.configs.latest(i) for i in ids)
        params = GenerationParams(max_tokens=self.max_tokens_spin.value(), temperature=self.temperature_spin.value())
        return CheckSpec(
            suite=suite,
            configs=configs,
            params=params,
            seed=self.seed_spin.value(),
            self_check=self.self_check_box.isChecked(),
        )

    # -- running ---------------------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._relay.running

    def start_check(self) -> bool:
        if self.running:
            return False
        if self.candidate_combo.count() == 0:
            self.message.emit("Load or register a model first: the check needs a candidate model")
            return False
        try:
            spec = self.spec()
        except (ValueError, StudioError) as exc:
            self.message.emit(f"Cannot start the check: {exc}")
            return False
        candidate_choice = self.candidate_combo.currentData()
        judge_choice = self.judge_combo.currentData()
        self._uses_loaded_model = LOADED_MODEL in (candidate_choice, judge_choice)
        self.run_id = None

        def work(cancel: CancelToken) -> Iterable[RunEvent]:
            with _Backends(self, candidate_choice, judge_choice) as (candidate, judge):
                runner = CheckRunner(self.runs, candidate, judge)
                run_id = runner.create(spec)
                yield Progress(run_id, "generate", 0, 2 * len(spec.configs) * len(spec.suite.probes), None)
                yield from runner.execute(run_id, cancel)

        self._begin(work)
        return True

    def resume_selected(self) -> bool:
        run_id = self.run_combo.currentData()
        if self.running or run_id is None:
            return False
        record = self.runs.get_run(run_id)
        if record.status is RunStatus.FINISHED:
            self.message.emit(f"Run {run_id} is already finished")
            return False
        candidate = self._choice_for_name(record.candidate["name"])
        judge = self._choice_for_name(record.judge["name"])
        if candidate is None or judge is None:
            missing = record.candidate["name"] if candidate is None else record.judge["name"]
            self.message.emit(f"Cannot resume {run_id}: model {missing!r} is neither loaded nor registered")
            return False
        self.run_id = run_id
        self._uses_loaded_model = LOADED_MODEL in (candidate, judge)

        def work(cancel: CancelToken) -> Iterable[RunEvent]:
            with _Backends(self, candidate, judge) as (candidate_backend, judge_backend):
                yield from CheckRunner(self.runs, candidate_backend, judge_backend).execute(run_id, cancel)

        self._begin(work)
        return True

    def _choice_for_name(self, name: str) -> str | None:
        loaded = self.ctx.backends.info
        if loaded is not None and loaded.name == name:
            return LOADED_MODEL
        if any(entry.name == name for entry in self.ctx.registry.list()):
            return name
        return None

    def _begin(self, work: Callable[[CancelToken], Iterable[RunEvent]]) -> None:
        self.progress_bar.setRange(0, 0)
        self.eta_label.setText("starting…")
        self.review.set_editable(False)
        self._relay.start(work)
        self._update_buttons()
        self.running_changed.emit(True)

    def cancel(self) -> None:
        if self.running:
            self.eta_label.setText("cancelling…")
            self._relay.cancel()

    def shutdown(self) -> None:
        self._relay.shutdown()

    def _on_backend_loaded(self, _info: object) -> None:
        self._fill_models()
        self._update_buttons()

    def _on_backend_loading(self, name: str) -> None:
        """The loaded model is about to be replaced: a check using it stops (it can be resumed later)."""
        if self.running and self._uses_loaded_model:
            self.cancel()
            self.message.emit(f"Check cancelled: the loaded model is being replaced by {name}; resume it later")

    def backend_for(self, choice: str) -> tuple[Backend, bool]:
        """The backend of a model choice, and whether the caller owns (and must close) it. Runs off the GUI thread."""
        return model_opener(self.ctx, choice, self.backend_factory)()

    def _on_events(self, batch: list[RunEvent]) -> None:
        finished: RunFinished | None = None
        if any(isinstance(e, ItemDone) for e in batch) and not self._results_timer.isActive():
            self._results_timer.start()
        for event in batch:
            if self.run_id is None:
                self.run_id = event.run_id
                self._fill_runs()
            if isinstance(event, Progress):
                self.progress_bar.setRange(0, max(event.total, 1))
                self.progress_bar.setValue(event.done)
                self.progress_bar.setFormat(f"{event.stage}: %v / %m")
                self.eta_label.setText(_progress_text(event))
            elif isinstance(event, RunFinished):
                finished = event
        if finished is not None:
            self._results_timer.stop()
            self.show_run(self.run_id)
            self.eta_label.setText(finished.status.value)
            self._fill_runs()
            self.run_finished.emit(finished.run_id)

    def _on_failed(self, message: str) -> None:
        self.eta_label.setText("failed")
        self.message.emit(f"The check stopped: {message}")
        self._fill_runs()

    def _on_relay_done(self) -> None:
        if self.progress_bar.maximum() == 0:
            self.progress_bar.setRange(0, 1)
            self.progress_bar.setValue(0)
        self.review.set_editable(True)
        self._update_buttons()
        self.running_changed.emit(False)

    def _update_buttons(self) -> None:
        running = self.running
        blocker = self.run_blocker()
        self.run_button.setEnabled(blocker is None)
        self.run_button.setToolTip(blocker or "Run the chosen suite under the ticked configs")
        self.cancel_button.setEnabled(running)
        record = self._shown_record()
        self.resume_button.setEnabled(not running and record is not None and record.status is not RunStatus.FINISHED)
        has_run = self.run_id is not None
        self.csv_button.setEnabled(has_run and not running)
        self.json_button.setEnabled(has_run and not running)

    def run_blocker(self) -> str | None:
        """Why Run check cannot act now, for its tooltip; None when it can."""
        if self.running:
            return "A check is running"
        if self.candidate_combo.count() == 0:
            return "Load or register a model first: the check needs a candidate model"
        if not self.checked_config_ids():
            return "Tick at least one config to check"
        return None

    def _shown_record(self) -> RunRecord | None:
        run_id = self.run_combo.currentData()
        if run_id is None:
            return None
        try:
            return self.runs.get_run(run_id)
        except StudioError:
            return None

    # -- results ---------------------------------------------------------------------------------------------

    @property
    def use(self) -> str:
        return str(self.source_combo.currentData() or "judge")

    def scoring_choice(self) -> ScoringChoice:
        return SCORING_CHOICES[max(self.variant_combo.currentIndex(), 0)]

    def show_run(self, run_id: str | None) -> None:
        self.run_id = run_id
        if run_id is None:
            self.item_model.set_rows([])
            self.review.set_run(None)
            self.headline.setText("No run yet")
            return
        selected = self.review.item
        self._enable_cascade(self.runs.get_run(run_id).self_check)
        self.item_model.set_rows(self.runs.items(run_id))
        if self.review.run_id != run_id:
            self.review.set_run(run_id)
        elif selected is not None:
            row = self.item_model.row_of(selected.config_id, selected.probe_id)
            if row >= 0:
                self.item_table.selectRow(row)
        self.show_report()
        self._update_buttons()

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

    def show_report(self) -> None:
        if self.run_id is None:
            return
        choice = self.scoring_choice()
        self.report = run_report(self.runs, self.run_id, self.use, choice.helpfulness, choice.variant)
        overall = self.report.overall
        self.headline.setText(headline_text(self.report))
        self.breakdown_chart.set_bars(breakdown_bars(overall))
        self.config_chart.set_bars(
            _aggregate_bars({c.config_id: _single(c) for c in overall.per_config}) if overall.per_config else []
        )
        self.type_chart.set_bars(_aggregate_bars(self.report.per_type))
        self.category_chart.set_bars(_aggregate_bars(self.report.per_category))
        self.category_chart.setVisible(bool(self.report.per_category))
        self.no_category_label.setVisible(not self.report.per_category)

    def _on_run_chosen(self, index: int) -> None:
        run_id = self.run_combo.itemData(index)
        if run_id is not None and not (self.running and run_id != self.run_id):
            self.show_run(run_id)
        self._update_buttons()

    def _on_source_changed(self) -> None:
        self.item_model.set_use(self.use)
        self.show_report()

    def _on_item_selected(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if current.isValid():
            self.review.set_item(self.item_model.row_at(current.row()))
            self.review.set_editable(not self.running)

    def _on_item_reviewed(self, item: Any) -> None:
        self.item_model.replace_item(item)
        self.show_report()

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


def _single(config_score: Any) -> Aggregate:
    """One config's figures shaped as an aggregate, for the per-config bars."""
    return Aggregate(
        per_config=(config_score,),
        score=config_score.score,
        valid_rate=config_score.valid_rate,
        breakdown=config_score.breakdown,
        n_items=config_score.n_items,
        n_valid=config_score.n_valid,
    )


def _run_title(record: RunRecord) -> str:
    when = record.created_utc.replace("T", " ").removesuffix("+00:00")
    configs = ", ".join(record.config_ids)
    return f"{when} · {record.status.value} · {record.candidate.get('name')} · {configs}"


class _Backends:
    """Builds the candidate and judge backends for a run on the worker thread, and closes the ones it built."""

    def __init__(self, pane: CheckPane, candidate: str, judge: str | None) -> None:
        self.pane = pane
        self.candidate_choice = candidate
        self.judge_choice = judge
        self._owned: list[Backend] = []

    def __enter__(self) -> tuple[Backend, Backend]:
        candidate, owned = self.pane.backend_for(self.candidate_choice)
        if owned:
            self._owned.append(candidate)
        if self.judge_choice is None or self.judge_choice == self.candidate_choice:
            return candidate, candidate
        judge, owned = self.pane.backend_for(self.judge_choice)
        if owned:
            self._owned.append(judge)
        return candidate, judge

    def __exit__(self, *_exc: object) -> None:
        for backend in self._owned:
            backend.close()
