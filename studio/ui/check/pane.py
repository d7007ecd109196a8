"""The Check pane: run a probe suite under one or more configs with a candidate and a judge model, watch progress,
then read the CoSA-Score (with its valid rate), the breakdown, per-type and per-category views, the items, and
review them.

The pane only wires its parts: the setup form describes a check, the run control runs it, the results view shows
stored runs. The widgets the window and its scripts drive keep their names on the pane."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QGroupBox, QSplitter, QVBoxLayout, QWidget

from studio.core.documents import ProbeSuite, SafetyConfig
from studio.core.errors import StudioError
from studio.core.evals.runner import ItemDone, RunEvent, RunFinished
from studio.core.evals.scoring import ScoreReport
from studio.core.store.runs import RunStatus
from studio.ui.backends import BackendFactory, llama_backend_factory
from studio.ui.check.results import CheckResults
from studio.ui.check.run_control import CheckRunControl
from studio.ui.check.setup import NO_CANDIDATE, CheckSetupForm
from studio.ui.context import AppContext
from studio.ui.model_choice import choice_for_name

#: During a run, the score and item table are redrawn at most this often (milliseconds).
RESULTS_REFRESH_MS = 300


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
        self.setup = CheckSetupForm(ctx)
        self.control = CheckRunControl(ctx, backend_factory)
        self.results = CheckResults(ctx.store)
        self.runs = self.results.runs
        # The widgets the window, the screenshots script and the walkthrough drive.
        self.suite_combo, self.limit_spin = self.setup.suite_combo, self.setup.limit_spin
        self.max_tokens_spin = self.setup.max_tokens_spin
        self.run_button = self.control.run_button
        self.tabs, self.review, self.item_table = self.results.tabs, self.results.review, self.results.item_table
        self.headline = self.results.summary.headline

        self._results_timer = QTimer(self)
        self._results_timer.setSingleShot(True)
        self._results_timer.setInterval(RESULTS_REFRESH_MS)
        self._results_timer.timeout.connect(lambda: self.results.show_run(self.results.run_id))
        self.setup.changed.connect(self._update_buttons)
        self.control.run_clicked.connect(self.start_check)
        self.control.events.connect(self._on_events)
        self.control.failed.connect(lambda _message: self.results.fill_runs())
        self.control.running_changed.connect(self._on_running_changed)
        self.control.message.connect(self.message)
        self.results.message.connect(self.message)
        self.results.resume_requested.connect(lambda _run_id: self.resume_selected())
        self.results.run_combo.currentIndexChanged.connect(lambda _i: self._update_buttons())
        ctx.backends.loaded.connect(lambda _info: self.setup.fill_models())

        setup_box = QGroupBox("New check")
        box_layout = QVBoxLayout(setup_box)
        box_layout.addWidget(self.setup)
        box_layout.addWidget(self.control)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(setup_box)
        splitter.addWidget(self.results)
        splitter.setStretchFactor(1, 3)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(splitter)
        self.refresh()

    # -- the form and the shown run, for the window ----------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.control.running

    @property
    def run_id(self) -> str | None:
        """The run shown (during a check, the run being made once it exists)."""
        return self.results.run_id

    @property
    def report(self) -> ScoreReport | None:
        return self.results.report

    def refresh(self) -> None:
        """Reload suites, configs, models and runs from the store."""
        self.setup.refresh()
        self.results.fill_runs()
        self._update_buttons()

    def checked_config_ids(self) -> list[str]:
        return self.setup.checked_config_ids()

    def select_configs(self, config_ids: Iterable[str]) -> None:
        self.setup.select_configs(config_ids)

    def select_suite(self, suite_id: str) -> None:
        self.setup.select_suite(suite_id)

    def prepare_for(self, config: SafetyConfig) -> ProbeSuite | None:
        return self.setup.prepare_for(config)

    def chosen_suite(self) -> ProbeSuite | None:
        return self.setup.chosen_suite()

    def show_run(self, run_id: str | None) -> None:
        self.results.show_run(run_id)

    def export_to(self, path: Path) -> bool:
        return self.results.export_to(path)

    # -- running ---------------------------------------------------------------------------------------------

    def start_check(self) -> bool:
        """Start the check the form describes; False, with a message saying why, when it cannot start."""
        if self.running:
            return False
        if self.setup.candidate_combo.count() == 0:
            self.message.emit(NO_CANDIDATE)
            return False
        candidate, judge = self.setup.model_choices()
        try:
            spec = self.setup.spec()
            self.results.set_running(True)
            self.control.start(spec, candidate, judge)
        except (ValueError, RuntimeError, StudioError) as exc:
            self.results.set_running(False)
            self.message.emit(f"Cannot start the check: {exc}")
            return False
        return True

    def resume_selected(self) -> bool:
        """Finish the shown unfinished run with the models it was started with, when they can still be found."""
        run_id = self.results.run_combo.currentData()
        if self.running or run_id is None:
            return False
        record = self.results.shown_record()
        if record is None:
            self.message.emit(f"Run {run_id} cannot be read: see the run's summary")
            return False
        if record.status is RunStatus.FINISHED:
            self.message.emit(f"Run {run_id} is already finished")
            return False
        names = (record.candidate["name"], record.judge["name"])
        candidate, judge = (choice_for_name(self.ctx, name) for name in names)
        if candidate is None or judge is None:
            missing = names[0] if candidate is None else names[1]
            self.message.emit(f"Cannot resume {run_id}: model {missing!r} is neither loaded nor registered")
            return False
        try:
            self.results.set_running(True, run_id)
            self.control.resume(run_id, candidate, None if judge == candidate else judge)
        except (RuntimeError, StudioError) as exc:
            self.results.set_running(False)
            self.message.emit(f"Cannot resume {run_id}: {exc}")
            return False
        return True

    def cancel(self) -> None:
        self.control.cancel()

    def shutdown(self) -> None:
        self.control.shutdown()

    def run_blocker(self) -> str | None:
        """Why Run check cannot act now, for its tooltip; None when it can."""
        return self.setup.blocker()

    def _update_buttons(self) -> None:
        self.control.set_blocker(self.run_blocker())
        self.results.update_buttons()

    def _on_running_changed(self, running: bool) -> None:
        if not running:
            self.results.set_running(False)
        self._update_buttons()
        self.running_changed.emit(running)

    def _on_events(self, batch: list[RunEvent]) -> None:
        finished: RunFinished | None = None
        if any(isinstance(e, ItemDone) for e in batch) and not self._results_timer.isActive():
            self._results_timer.start()
        for event in batch:
            if self.results.run_id is None:
                self.results.run_id = event.run_id
                self.results.fill_runs()
            if isinstance(event, RunFinished):
                finished = event
        if finished is not None:
            self._results_timer.stop()
            self.results.show_run(self.results.run_id)
            self.results.fill_runs()
            self.run_finished.emit(finished.run_id)
