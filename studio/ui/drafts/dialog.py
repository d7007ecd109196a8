"""Drafting probes from a config: a model proposes probes, the author accepts, edits or rejects them, and the
accepted ones join a new or an existing stored probe suite.

The dialog wires three parts: the drafting row (model, Draft, Cancel), the list of drafts (``drafts.table``) and the
choice of suite (``drafts.target``); what a draft is and how a suite takes probes is core
(:mod:`studio.core.evals.probegen`)."""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import ValidationError
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from studio.core.documents import Probe, ProbeSuite, SafetyConfig
from studio.core.errors import StudioError, validation_problem
from studio.core.evals.probegen import DraftFailure, EditableDraft, ProbeDraft, draft_probes
from studio.core.inference.base import CancelToken
from studio.ui.availability import offer
from studio.ui.backends import BackendFactory, llama_backend_factory
from studio.ui.context import AppContext
from studio.ui.drafts.table import DraftTableModel, ExpectationDelegate
from studio.ui.drafts.target import SuiteTarget
from studio.ui.model_choice import LOADED_MODEL, add_model_choices, model_opener, opened
from studio.ui.workers import BatchRelay

#: How often drafts made on the worker thread are moved into the table (milliseconds).
DRAFT_FLUSH_MS = 50
DRAFTING = "Drafting is under way"
NO_MODEL = "Load or register a model first: drafting needs a model"
NO_DRAFTS = "Draft probes first"


class ProbeDraftDialog(QDialog):
    """Draft probes for ``config`` with a model, review them, and add the accepted ones to a stored suite."""

    suite_saved = Signal(str, int)  # suite id, version

    def __init__(
        self,
        ctx: AppContext,
        config: SafetyConfig,
        parent: QWidget | None = None,
        backend_factory: BackendFactory = llama_backend_factory,
    ) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.config = config
        self.backend_factory = backend_factory
        self.failures: list[DraftFailure] = []
        self._uses_loaded_model = False
        self.setWindowTitle(f"Draft probes — {config.title}")
        self.resize(960, 620)

        self.relay = BatchRelay(self, flush_ms=DRAFT_FLUSH_MS, stop_on_cancel=True)
        self.relay.items.connect(self._on_drafted)
        self.relay.failed.connect(self._on_failed)
        self.relay.done.connect(self._on_done)

        self.model = DraftTableModel(self)
        self.model.accepted_changed.connect(self._update_buttons)
        self.model.rowsInserted.connect(self._update_buttons)
        self.target = SuiteTarget(ctx.store.suites, config)
        self.target.changed.connect(self._update_buttons)

        layout = QVBoxLayout(self)
        layout.addLayout(self._build_generate_row())
        layout.addWidget(self._build_table(), 1)
        layout.addLayout(self._build_review_row())
        layout.addWidget(self._build_target_box())
        self.message_label = QLabel()
        self.message_label.setObjectName("draftMessage")
        self.message_label.setWordWrap(True)
        layout.addWidget(self.message_label)
        self.fill_models()
        self._update_buttons()
        ctx.backends.loading.connect(self._on_backend_loading)
        ctx.backends.loaded.connect(self._on_backend_loaded)

    def _build_generate_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        row.addWidget(QLabel("Model:"))
        self.model_combo = QComboBox()
        self.model_combo.setMinimumWidth(220)
        row.addWidget(self.model_combo)
        self.draft_button = QPushButton("&Draft probes")
        self.draft_button.clicked.connect(self.start_drafting)
        row.addWidget(self.draft_button)
        self.cancel_button = QPushButton("&Cancel drafting")
        self.cancel_button.clicked.connect(self.cancel_drafting)
        row.addWidget(self.cancel_button)
        self.busy_bar = QProgressBar()
        self.busy_bar.setRange(0, 0)
        self.busy_bar.setMaximumWidth(160)
        self.busy_bar.setTextVisible(False)
        self.busy_bar.hide()
        row.addWidget(self.busy_bar)
        self.status_label = QLabel()
        row.addWidget(self.status_label, 1)
        return row

    def _build_table(self) -> QTableView:
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setItemDelegateForColumn(DraftTableModel.EXPECTED, ExpectationDelegate(self.table))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setWordWrap(True)
        self.table.setEditTriggers(
            QAbstractItemView.EditTrigger.DoubleClicked
            | QAbstractItemView.EditTrigger.EditKeyPressed
            | QAbstractItemView.EditTrigger.SelectedClicked
        )
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(DraftTableModel.ACCEPT, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(DraftTableModel.TEXT, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(DraftTableModel.EXPECTED, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(DraftTableModel.CLAUSE, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(DraftTableModel.NOTES, QHeaderView.ResizeMode.Interactive)
        self.table.setColumnWidth(DraftTableModel.NOTES, 180)
        self.table.selectionModel().selectionChanged.connect(lambda *_: self._update_buttons())
        return self.table

    def _build_review_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.accept_all_button = QPushButton("Accept &all")
        self.accept_all_button.clicked.connect(lambda: self.model.set_all_accepted(True))
        self.accept_none_button = QPushButton("Accept &none")
        self.accept_none_button.clicked.connect(lambda: self.model.set_all_accepted(False))
        self.reject_button = QPushButton("&Reject selected")
        self.reject_button.clicked.connect(self.reject_selected)
        for button in (self.accept_all_button, self.accept_none_button, self.reject_button):
            row.addWidget(button)
        row.addStretch(1)
        self.accepted_label = QLabel()
        row.addWidget(self.accepted_label)
        return row

    def _build_target_box(self) -> SuiteTarget:
        self.add_button = QPushButton("Add accepted to suite")
        self.add_button.setDefault(False)
        self.add_button.setAutoDefault(False)
        self.add_button.clicked.connect(self.add_accepted)
        self.close_button = QPushButton("Close")
        self.close_button.setAutoDefault(False)
        self.close_button.clicked.connect(self.reject)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.close_button)
        self.target.form.addRow(buttons)
        return self.target

    def fill_models(self) -> None:
        """The loaded model first, then every registered model and endpoint."""
        self.model_combo.clear()
        add_model_choices(self.model_combo, self.ctx)

    @property
    def running(self) -> bool:
        return self.relay.running

    def show_message(self, text: str) -> None:
        self.message_label.setText(text)

    # -- drafting --------------------------------------------------------------------------------------------

    def start_drafting(self) -> bool:
        """Ask the chosen model for drafts; False (with a message) when no model can be used."""
        if self.relay.running:
            return False
        choice = self.model_combo.currentData()
        if choice is None:
            self.show_message("No model to draft with: load or register a model first")
            return False
        try:
            make_backend = model_opener(self.ctx, str(choice), self.backend_factory)
        except Exception as exc:  # shown as one line
            self.show_message(f"Cannot use model {self.model_combo.currentText()}: {exc}")
            return False
        config = self.config

        def work(cancel: CancelToken) -> Iterator[ProbeDraft | DraftFailure]:
            with opened(make_backend) as (backend,):
                yield from draft_probes(backend, config, cancel=cancel)

        self.failures = []
        self._uses_loaded_model = choice == LOADED_MODEL
        self.show_message("")
        self.status_label.setText("Drafting…")
        self.busy_bar.show()
        self.relay.start(work)
        self._update_buttons()
        return True

    def _on_backend_loading(self, name: str) -> None:
        if self.relay.running and self._uses_loaded_model:
            self.cancel_drafting()
            self.show_message(f"Drafting cancelled: the loaded model is being replaced by {name}")

    def _on_backend_loaded(self, _info: object) -> None:
        if not self.relay.running:
            self.fill_models()
            self._update_buttons()

    def cancel_drafting(self) -> None:
        if self.relay.running:
            self.relay.cancel()
            self.status_label.setText("Cancelling…")

    def _on_drafted(self, batch: list[ProbeDraft | DraftFailure]) -> None:
        self.failures.extend(item for item in batch if isinstance(item, DraftFailure))
        self.model.add_rows([EditableDraft.from_draft(item) for item in batch if isinstance(item, ProbeDraft)])
        self.table.resizeRowsToContents()
        self.status_label.setText(f"Drafting… {self.model.rowCount()} draft(s) so far")

    def _on_failed(self, message: str) -> None:
        self.show_message(f"Drafting stopped: {message.splitlines()[0] if message else 'unknown error'}")

    def _on_done(self) -> None:
        self.busy_bar.hide()
        count = self.model.rowCount()
        state = "Cancelled" if self.relay.cancelled else "Done"
        unreadable = f"; {len(self.failures)} clause(s) gave unreadable output" if self.failures else ""
        self.status_label.setText(f"{state}: {count} draft(s){unreadable}")
        self._update_buttons()

    # -- reviewing and saving --------------------------------------------------------------------------------

    def reject_selected(self) -> None:
        positions = [index.row() for index in self.table.selectionModel().selectedRows()]
        if positions:
            self.model.remove_rows(positions)
            self.show_message(f"Rejected {len(positions)} draft(s)")

    def _accepted_probes(self) -> tuple[list[int], list[Probe]] | None:
        positions = self.model.accepted_positions()
        if not positions:
            self.show_message("Nothing to add: tick the drafts to accept first")
            return None
        probes: list[Probe] = []
        for position in positions:
            try:
                probes.append(self.model.row_at(position).to_probe())
            except ValidationError as exc:
                self.show_message(f"Draft {position + 1}: {validation_problem(exc)}")
                return None
        return positions, probes

    def add_accepted(self) -> ProbeSuite | None:
        """Save the accepted drafts to the chosen suite; None (with a message, nothing saved) on any error."""
        accepted = self._accepted_probes()
        if accepted is None:
            return None
        positions, probes = accepted
        try:
            suite, added = self.target.suite_with(probes)
        except (ValueError, StudioError) as exc:
            text = validation_problem(exc) if isinstance(exc, ValidationError) else str(exc)
            self.show_message(f"Not saved: {text}")
            return None
        if not added:
            self.show_message(f"Nothing added: suite {suite.id} already has every accepted probe")
            return None
        try:
            stored = self.ctx.store.suites.save(suite)
        except Exception as exc:  # shown as one line; the repository writes atomically
            self.show_message(f"Not saved: {exc}")
            return None
        self.model.remove_rows(positions)
        self.target.fill_suites()
        self.show_message(f"Added {len(positions)} probe(s) to suite {stored.id} (version {stored.version})")
        self.suite_saved.emit(stored.id, stored.version)
        return stored

    def _update_buttons(self) -> None:
        """Every control that cannot act now is disabled, its tooltip saying why."""
        running = self.relay.running
        accepted = len(self.model.accepted_positions())
        no_rows = None if self.model.rowCount() else NO_DRAFTS
        no_model = None if self.model_combo.count() else NO_MODEL
        offer(
            self.draft_button, DRAFTING if running else no_model, "Ask the model for probes on both sides of each rule"
        )
        offer(self.cancel_button, None if running else "Nothing is being drafted", "Stop drafting")
        offer(self.model_combo, DRAFTING if running else no_model, "The model that drafts the probes")
        offer(self.accept_all_button, no_rows, "Tick every draft")
        offer(self.accept_none_button, no_rows, "Untick every draft")
        selected = self.table.selectionModel().hasSelection()
        offer(
            self.reject_button,
            no_rows or (None if selected else "Select the drafts to reject first"),
            "Remove the selected drafts from the list",
        )
        offer(
            self.add_button,
            no_rows or (None if accepted else "Tick the drafts to accept first"),
            "Add the ticked drafts to the suite chosen below",
        )
        self.accepted_label.setText(f"{accepted} of {self.model.rowCount()} accepted")

    def shutdown(self) -> None:
        """Stop drafting and wait for the worker thread."""
        self.relay.shutdown()
        self.busy_bar.hide()

    def done(self, result: int) -> None:
        self.shutdown()
        super().done(result)
