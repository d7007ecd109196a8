"""Starting, cancelling and resuming a check run on a worker thread, and the row that shows its progress.

The models are resolved on the GUI thread (where the registry and the loaded model live) and opened on the worker;
what the worker opened it closes. A check using the window's loaded model stops when that model is replaced: the
run stays resumable."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

from studio.core.evals.formatting import progress_note
from studio.core.evals.runner import CheckRunner, CheckSpec, Progress, RunEvent, RunFinished
from studio.core.inference.base import CancelToken
from studio.ui.availability import offer
from studio.ui.backends import BackendFactory
from studio.ui.context import AppContext
from studio.ui.model_choice import LOADED_MODEL, model_opener, opened
from studio.ui.workers import BatchRelay

#: How often queued run events are drawn (milliseconds); a fast model's events are coalesced per tick.
EVENT_FLUSH_MS = 50
RUN_TOOLTIP = "Run the chosen suite under the ticked configs"
CANCEL_TOOLTIP = "Stop the check; the run can be resumed later"
RUNNING = "A check is running"
NOT_RUNNING = "No check is running"


class CheckRunControl(QWidget):
    """Run and Cancel, the progress bar and the time left, and the worker behind them."""

    #: Run events in the order they happened, a batch per flush (after the progress row has drawn them).
    events = Signal(list)
    #: The run stopped on an error (already shown on the progress row and sent as a message).
    failed = Signal(str)
    running_changed = Signal(bool)
    message = Signal(str)
    run_clicked = Signal()

    def __init__(self, ctx: AppContext, backend_factory: BackendFactory, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.backend_factory = backend_factory
        self._uses_loaded_model = False
        self._relay = BatchRelay(self, flush_ms=EVENT_FLUSH_MS)
        self._relay.items.connect(self._on_events)
        self._relay.failed.connect(self._on_failed)
        self._relay.done.connect(self._on_done)
        ctx.backends.loading.connect(self._on_backend_loading)

        self.run_button = QPushButton("Run check")
        self.run_button.setDefault(True)
        self.run_button.clicked.connect(self.run_clicked)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.progress_bar = QProgressBar()
        self.progress_bar.setAccessibleName("Check progress")
        self.progress_bar.setTextVisible(True)
        self.eta_label = QLabel("")
        self.eta_label.setAccessibleName("Time left")
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.run_button)
        row.addWidget(self.cancel_button)
        row.addWidget(self.progress_bar, 1)
        row.addWidget(self.eta_label)

    @property
    def running(self) -> bool:
        return self._relay.running

    def set_blocker(self, blocker: str | None) -> None:
        """Enable Run unless ``blocker`` says why it cannot act; Cancel acts only while a check runs."""
        offer(self.run_button, RUNNING if self.running else blocker, RUN_TOOLTIP)
        offer(self.cancel_button, None if self.running else NOT_RUNNING, CANCEL_TOOLTIP)

    def start(self, spec: CheckSpec, candidate: str, judge: str | None) -> None:
        """Create a run of ``spec`` and execute it; ``judge=None`` lets the candidate judge. Raises (before
        anything starts) when a chosen model cannot be found."""

        def work(runner: CheckRunner, cancel: CancelToken) -> Iterable[RunEvent]:
            run_id = runner.create(spec)
            yield Progress(run_id, "generate", 0, 2 * len(spec.configs) * len(spec.suite.probes), None)
            yield from runner.execute(run_id, cancel)

        self._begin(candidate, judge, work)

    def resume(self, run_id: str, candidate: str, judge: str | None) -> None:
        """Finish the unfinished run ``run_id``; raises (before anything starts) when a model cannot be found."""
        self._begin(candidate, judge, lambda runner, cancel: runner.execute(run_id, cancel))

    def cancel(self) -> None:
        if self.running:
            self.eta_label.setText("cancelling…")
            self._relay.cancel()

    def shutdown(self) -> None:
        self._relay.shutdown()

    def _begin(
        self,
        candidate: str,
        judge: str | None,
        steps: Callable[[CheckRunner, CancelToken], Iterable[RunEvent]],
    ) -> None:
        openers = [model_opener(self.ctx, candidate, self.backend_factory)]
        if judge is not None:
            openers.append(model_opener(self.ctx, judge, self.backend_factory))
        runs = self.ctx.store.runs

        def work(cancel: CancelToken) -> Iterable[RunEvent]:
            with opened(*openers) as backends:
                yield from steps(CheckRunner(runs, backends[0], backends[-1]), cancel)

        self._uses_loaded_model = LOADED_MODEL in (candidate, judge)
        self.progress_bar.setRange(0, 0)
        self.eta_label.setText("starting…")
        self._relay.start(work)
        self.set_blocker(None)
        self.running_changed.emit(True)

    def _on_events(self, batch: list[RunEvent]) -> None:
        for event in batch:
            if isinstance(event, Progress):
                self.progress_bar.setRange(0, max(event.total, 1))
                self.progress_bar.setValue(event.done)
                self.progress_bar.setFormat(f"{event.stage}: %v / %m")
                self.eta_label.setText(progress_note(event.done, event.eta_s, event.partial_score))
            elif isinstance(event, RunFinished):
                self.eta_label.setText(event.status.value)
        self.events.emit(batch)

    def _on_failed(self, message: str) -> None:
        self.eta_label.setText("failed")
        self.message.emit(f"The check stopped: {message}")
        self.failed.emit(message)

    def _on_done(self) -> None:
        if self.progress_bar.maximum() == 0:
            self.progress_bar.setRange(0, 1)
            self.progress_bar.setValue(0)
        self.running_changed.emit(False)

    def _on_backend_loading(self, name: str) -> None:
        """The loaded model is about to be replaced: a check using it stops (it can be resumed later)."""
        if self.running and self._uses_loaded_model:
            self.cancel()
            self.message.emit(f"Check cancelled: the loaded model is being replaced by {name}; resume it later")
