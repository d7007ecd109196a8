"""The probe pane: send a prompt under the open config, watch the reply stream in, judge it."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QItemSelectionModel, Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut, QTextCursor
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from studio.core.evals.suites import bundled_suites
from studio.core.inference.base import GenerationParams, GenerationResult, chat
from studio.core.store.exchanges import Exchange, Verdict
from studio.core.wording import reply_details, reply_summary
from studio.ui.availability import offer
from studio.ui.context import AppContext
from studio.ui.editor import ProbeTarget
from studio.ui.glossary import tip
from studio.ui.marks import LONG_LABELS, MarkButtons
from studio.ui.table_models import ExchangeTableModel
from studio.ui.tables import row_table
from studio.ui.workers import GenerationWorker

DEFAULT_TEMPERATURE = 0.7
DEFAULT_TOP_P = 0.95
DEFAULT_MAX_TOKENS = 256
DEFAULT_SEED = 0
#: How many stored exchanges the list shows (newest first).
EXCHANGES_SHOWN = 500


class ProbePane(QWidget):
    """Prompt box, suite probe picker, sampler settings, streaming reply, exchange list with verdicts."""

    streaming_changed = Signal(bool)
    send_enabled_changed = Signal(bool, str)  # whether Send can act; why not
    reply_finished = Signal(object)  # Exchange
    message = Signal(str)

    def __init__(
        self, ctx: AppContext, target: Callable[[], ProbeTarget | None], parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._ctx = ctx
        self._target = target
        self._worker = GenerationWorker(self)
        self._worker.text_arrived.connect(self._on_text_arrived)
        self._worker.finished.connect(self._on_finished)
        self._worker.failed.connect(self._on_failed)
        self._request: tuple[ProbeTarget, str, GenerationParams] | None = None
        self._last_prompt: str | None = None

        self.suite_combo = QComboBox()
        self.suite_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.suite_combo.setMinimumContentsLength(16)
        self.suite_combo.setAccessibleName("Probe from a bundled suite")
        self.suite_combo.addItem("Pick a probe from a bundled suite…", None)
        for suite in bundled_suites():
            for probe in suite.probes:
                label = " ".join(probe.text.split())
                self.suite_combo.addItem(f"{suite.title}: {label[:70]}", probe.text)
        self.suite_combo.activated.connect(self._on_suite_probe_chosen)

        self.prompt_edit = QPlainTextEdit()
        self.prompt_edit.setAccessibleName("Probe prompt")
        self.prompt_edit.setPlaceholderText("Type a prompt to send under the open config (Ctrl+Enter sends)")
        self.prompt_edit.setMaximumHeight(110)
        QShortcut(QKeySequence("Ctrl+Return"), self.prompt_edit, self.send)

        self.send_button = QPushButton("Send")
        self.send_button.setAccessibleName("Send probe")
        self.send_button.setToolTip("Send the prompt under the open config (Ctrl+Enter)")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setAccessibleName("Stop generation")
        self.stop_button.setToolTip("Stop the reply (Esc)")
        self.regenerate_button = QPushButton("Regenerate")
        self.regenerate_button.setAccessibleName("Regenerate reply")
        self.send_button.clicked.connect(self.send)
        self.stop_button.clicked.connect(self.stop)
        self.regenerate_button.clicked.connect(self.regenerate)
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, self.stop)

        self.temperature_spin = QDoubleSpinBox()
        self.temperature_spin.setRange(0.0, 2.0)
        self.temperature_spin.setSingleStep(0.1)
        self.temperature_spin.setValue(DEFAULT_TEMPERATURE)
        self.temperature_spin.setAccessibleName("Temperature")
        self.top_p_spin = QDoubleSpinBox()
        self.top_p_spin.setRange(0.0, 1.0)
        self.top_p_spin.setSingleStep(0.05)
        self.top_p_spin.setValue(DEFAULT_TOP_P)
        self.top_p_spin.setAccessibleName("Top-p")
        self.max_tokens_spin = QSpinBox()
        self.max_tokens_spin.setRange(1, 8192)
        self.max_tokens_spin.setValue(DEFAULT_MAX_TOKENS)
        self.max_tokens_spin.setAccessibleName("Maximum new tokens")
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.seed_spin.setValue(DEFAULT_SEED)
        self.seed_spin.setAccessibleName("Sampling seed")
        sampler = QGroupBox("Sampling")
        sampler_grid = QGridLayout(sampler)
        for position, (label, widget) in enumerate(
            (
                ("Temperature", self.temperature_spin),
                ("Top-p", self.top_p_spin),
                ("Max tokens", self.max_tokens_spin),
                ("Seed", self.seed_spin),
            )
        ):
            row, pair = divmod(position, 2)
            sampler_grid.addWidget(QLabel(label), row, 2 * pair)
            sampler_grid.addWidget(widget, row, 2 * pair + 1)
        sampler_grid.setColumnStretch(1, 1)
        sampler_grid.setColumnStretch(3, 1)

        self.reply_view = QPlainTextEdit()
        self.reply_view.setReadOnly(True)
        self.reply_view.setAccessibleName("Model reply")
        self.reply_view.setPlaceholderText("The reply streams in here")
        self.metrics_label = QLabel("No reply yet")
        self.metrics_label.setAccessibleName("Reply timings")
        self.metrics_label.setWordWrap(True)
        self.metrics_label.setToolTip(tip("First word after"))

        self.exchange_model = ExchangeTableModel(self)
        self.exchange_table = row_table(
            self.exchange_model, "Stored exchanges", resize=QHeaderView.ResizeMode.Interactive
        )
        self.exchange_table.selectionModel().selectionChanged.connect(self._on_exchange_selected)

        self.marks = MarkButtons("Mark selected reply:", "reply", LONG_LABELS)
        self.marks.marked.connect(self.mark_selected)
        self.verdict_buttons = self.marks.buttons

        buttons = QHBoxLayout()
        buttons.addWidget(self.send_button)
        buttons.addWidget(self.stop_button)
        buttons.addWidget(self.regenerate_button)
        buttons.addStretch(1)

        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.addWidget(self.suite_combo)
        top_layout.addWidget(self.prompt_edit)
        top_layout.addLayout(buttons)
        top_layout.addWidget(sampler)
        top_layout.addWidget(self.reply_view, 1)
        top_layout.addWidget(self.metrics_label)

        bottom = QWidget()
        bottom_layout = QVBoxLayout(bottom)
        bottom_layout.setContentsMargins(0, 0, 0, 0)
        bottom_layout.addWidget(self.marks)
        bottom_layout.addWidget(self.exchange_table)

        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(top)
        splitter.addWidget(bottom)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.addWidget(splitter)

        ctx.backends.loading.connect(self._on_backend_loading)
        ctx.backends.loaded.connect(self._on_backend_changed)
        ctx.backends.failed.connect(self._on_backend_changed)
        self.prompt_edit.textChanged.connect(self._update_buttons)
        self.refresh_exchanges()
        self._update_buttons()

    # -- public ----------------------------------------------------------------------------------------------

    @property
    def is_streaming(self) -> bool:
        return self._worker.running

    def params(self) -> GenerationParams:
        return GenerationParams(
            temperature=round(self.temperature_spin.value(), 3),
            top_p=round(self.top_p_spin.value(), 3),
            max_tokens=self.max_tokens_spin.value(),
            seed=self.seed_spin.value(),
        )

    def send(self) -> bool:
        """Send the prompt box under the open config; returns whether a reply started."""
        return self._start(self.prompt_edit.toPlainText())

    def regenerate(self) -> bool:
        """Send the last prompt again with the next seed."""
        if self._last_prompt is None:
            return False
        self.seed_spin.setValue((self.seed_spin.value() + 1) % (2**31 - 1))
        return self._start(self._last_prompt)

    def stop(self) -> None:
        self._worker.stop()

    def mark_selected(self, verdict: Verdict) -> Exchange | None:
        rows = self.exchange_table.selectionModel().selectedRows()
        if not rows:
            self.message.emit("Select a reply in the list to mark it")
            return None
        row = rows[0].row()
        updated = self._ctx.store.exchanges.mark(self.exchange_model.row_at(row).id, verdict)
        self.exchange_model.replace_row(row, updated)
        return updated

    def refresh_exchanges(self) -> None:
        """Reload the stored exchanges, newest first."""
        self.exchange_model.set_rows(self._ctx.store.exchanges.list(limit=EXCHANGES_SHOWN))

    def _select_row(self, row: int) -> None:
        self.exchange_table.selectionModel().select(
            self.exchange_model.index(row, 0),
            QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows,
        )

    def shutdown(self) -> None:
        """Cancel a streaming reply and join its thread."""
        self._worker.shutdown()
        self._request = None
        self._update_buttons()

    # -- internals -------------------------------------------------------------------------------------------

    def _start(self, prompt: str) -> bool:
        blocker = self._blocker(prompt)
        backend, target = self._ctx.backends.backend, self._target()
        if blocker is not None or backend is None or target is None:
            self.message.emit(blocker or "Cannot send now")
            return False
        params = self.params()
        self._request = (target, prompt, params)
        self._last_prompt = prompt
        self.reply_view.clear()
        self.metrics_label.setText("Generating…")
        self._worker.start(backend, chat(target.text, prompt), params)
        self._update_buttons()
        self.streaming_changed.emit(True)
        return True

    def _on_text_arrived(self, text: str) -> None:
        cursor = self.reply_view.textCursor()
        cursor.movePosition(QTextCursor.MoveOperation.End)
        cursor.insertText(text)

    def _on_finished(self, result: GenerationResult) -> None:
        request, self._request = self._request, None
        self._update_buttons()
        self.streaming_changed.emit(False)
        self.metrics_label.setText(reply_summary(result))
        self.metrics_label.setToolTip(reply_details(result))
        info = self._ctx.backends.info
        if request is None or info is None:
            return
        target, prompt, params = request
        exchange = self._ctx.store.exchanges.record(
            config_id=target.config_id,
            config_version=target.config_version,
            config_hash=target.config_hash,
            model_name=info.name,
            model_sha256=info.model_sha256,
            prompt=prompt,
            params=params,
            result=result,
            config_text=target.text,
        )
        self.exchange_model.insert_row(0, exchange)
        self._select_row(0)
        self.reply_finished.emit(exchange)

    def _on_failed(self, message: str) -> None:
        self._request = None
        self._update_buttons()
        self.streaming_changed.emit(False)
        self.metrics_label.setText(f"Failed: {message}")
        self.message.emit(f"The model failed: {message}")

    def _on_suite_probe_chosen(self, index: int) -> None:
        text = self.suite_combo.itemData(index)
        if text:
            self.prompt_edit.setPlainText(str(text))

    def _on_exchange_selected(self) -> None:
        rows = self.exchange_table.selectionModel().selectedRows()
        if not rows or self._worker.running:
            self._update_buttons()
            return
        exchange = self.exchange_model.row_at(rows[0].row())
        self.reply_view.setPlainText(exchange.reply)
        self._update_buttons()

    def _on_backend_loading(self, _name: str) -> None:
        self.shutdown()
        self._update_buttons()

    def _on_backend_changed(self, _payload: object) -> None:
        self._update_buttons()

    def send_blocker(self) -> str | None:
        """Why Send cannot act now, in words for its tooltip and the status bar; None when it can."""
        return self._blocker(self.prompt_edit.toPlainText())

    def _blocker(self, prompt: str) -> str | None:
        if self._worker.running:
            return "A reply is streaming: stop it first (Esc)"
        if self._ctx.backends.is_loading:
            return "The model is still loading"
        if self._ctx.backends.backend is None:
            return "No model is loaded: open the model manager (Ctrl+M) to load one"
        target = self._target()
        if target is None or not target.text.strip():
            return "Open or create a config first: the probe is sent under it"
        if not prompt.strip():
            return "Type a prompt first, or pick one from a bundled suite"
        return None

    def _regenerate_blocker(self, ready: bool, streaming: bool) -> str | None:
        if self._last_prompt is None:
            return "Nothing to regenerate yet: send a prompt first"
        if streaming:
            return "A reply is streaming: stop it first (Esc)"
        return None if ready else "No model is loaded"

    def refresh_target(self) -> None:
        """The open config changed: Send may have become able (or unable) to act."""
        self._update_buttons()

    def _update_buttons(self) -> None:
        streaming = self._worker.running
        ready = self._ctx.backends.backend is not None and not self._ctx.backends.is_loading
        blocker = self.send_blocker()
        offer(self.send_button, blocker, "Send the prompt under the open config (Ctrl+Enter)")
        offer(
            self.regenerate_button, self._regenerate_blocker(ready, streaming), "Send the last prompt again, next seed"
        )
        offer(self.stop_button, None if streaming else "Nothing is streaming", "Stop the reply (Esc)")
        self.send_enabled_changed.emit(blocker is None, blocker or "")
        has_selection = bool(self.exchange_table.selectionModel().selectedRows())
        self.marks.set_ready(has_selection, "" if has_selection else "Select a reply in the list to mark it")
