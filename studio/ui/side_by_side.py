"""Live side by side: a probe (or a handful, one per line) sent to two configs, two versions of one config or two
models at once. Both replies stream next to each other under the diff of the two config texts, every reply is
kept as an exchange, and either side's last reply can be marked.

The pairing itself (who answers when, on which thread) is :func:`studio.core.inference.pair.stream_pair`; this
pane only chooses the sides, builds a second model's backend off the GUI thread when one is asked for, and draws.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from studio.core.documents import ConfigStatus, SafetyConfig
from studio.core.evals.compare import diff_hunks
from studio.core.inference.base import Backend, BackendInfo, CancelToken, GenerationParams, GenerationResult
from studio.core.inference.pair import PairEvent, Side, stream_pair
from studio.core.store.exchanges import Exchange, Verdict
from studio.core.wording import reply_details, reply_summary
from studio.ui.availability import offer
from studio.ui.backends import BackendFactory, llama_backend_factory
from studio.ui.compare_pane import diff_html
from studio.ui.context import AppContext
from studio.ui.editor import ProbeTarget
from studio.ui.marks import MarkButtons
from studio.ui.model_choice import LOADED_MODEL, add_model_choices, model_opener
from studio.ui.workers import BatchRelay

DRAFT = "draft"  # config choice: the text in the editor, saved or not
LOADED = LOADED_MODEL  # model choice: the model loaded in the window
VERSION_SEPARATOR = "@"  # config choice of a stored version: "<id>@<version>"
SIDE_NAMES = ("A", "B")
MODES = ("Draft and last approved", "Two configs", "Two models")
DRAFT_VS_APPROVED, TWO_CONFIGS, TWO_MODELS = range(len(MODES))
#: At most this many probes (lines of the prompt box) per send: side by side is for a handful, checks for more.
MAX_PROBES = 8
DEFAULT_MAX_TOKENS = 160


@dataclass(frozen=True)
class SideChoice:
    """What one side sends under: a config text with where it came from, and a model choice."""

    target: ProbeTarget
    label: str
    model: str  # LOADED or a registry name


class SidePanel(QWidget):
    """One side: config and model pickers, the streaming reply, its timings and the mark buttons."""

    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.config_combo = QComboBox()
        self.config_combo.setAccessibleName(f"Config of side {name}")
        self.config_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.config_combo.setMinimumContentsLength(18)
        self.model_combo = QComboBox()
        self.model_combo.setAccessibleName(f"Model of side {name}")
        self.model_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model_combo.setMinimumContentsLength(12)
        self.reply_view = QPlainTextEdit()
        self.reply_view.setReadOnly(True)
        self.reply_view.setAccessibleName(f"Replies of side {name}")
        self.reply_view.setPlaceholderText(f"Side {name}'s replies stream in here")
        self.timing = QLabel("")
        self.timing.setWordWrap(True)
        self.timing.setAccessibleName(f"Timings of side {name}")
        self.marks = MarkButtons("Mark:", f"side {name}'s last reply")
        self.marks.set_ready(False, "Send a probe first: the mark goes to this side's last reply")
        self.mark_buttons = self.marks.buttons
        pickers = QGridLayout()
        pickers.addWidget(QLabel(f"<b>{name}</b> config:"), 0, 0)
        pickers.addWidget(self.config_combo, 0, 1)
        pickers.addWidget(QLabel("model:"), 1, 0)
        pickers.addWidget(self.model_combo, 1, 1)
        pickers.setColumnStretch(1, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(pickers)
        layout.addWidget(self.reply_view, 1)
        layout.addWidget(self.timing)
        layout.addWidget(self.marks)

    def append(self, text: str) -> None:
        cursor = self.reply_view.textCursor()
        cursor.movePosition(QTextCursor.MoveOperation.End)
        cursor.insertText(text)


class SideBySidePane(QWidget):
    """Choose two sides, send a handful of probes to both, watch them stream, mark either reply."""

    message = Signal(str)
    streaming_changed = Signal(bool)
    reply_recorded = Signal(object)  # Exchange

    def __init__(
        self,
        ctx: AppContext,
        target: Callable[[], ProbeTarget | None],
        backend_factory: BackendFactory = llama_backend_factory,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._ctx = ctx
        self._target = target
        self._backend_factory = backend_factory
        self._relay = BatchRelay(self, stop_on_cancel=True)
        self._relay.items.connect(self._on_events)
        self._relay.failed.connect(self._on_failed)
        self._relay.done.connect(self._on_done)
        self._sending: tuple[SideChoice, SideChoice] | None = None
        self._prompts: list[str] = []
        self._params = GenerationParams()
        self._infos: list[BackendInfo | None] = [None, None]
        self.last_exchanges: list[Exchange | None] = [None, None]
        self._shown_probe = [-1, -1]

        self.mode_combo = QComboBox()
        self.mode_combo.setAccessibleName("What to compare")
        self.mode_combo.addItems(MODES)
        self.mode_combo.currentIndexChanged.connect(lambda _i: self.apply_mode())
        self.sides = (SidePanel("A"), SidePanel("B"))
        for index, side in enumerate(self.sides):
            side.config_combo.currentIndexChanged.connect(lambda _i: self._show_diff())
            side.marks.marked.connect(lambda verdict, i=index: self.mark(i, verdict))
        self.diff_view = QTextBrowser()
        self.diff_view.setAccessibleName("Config diff")
        self.prompt_edit = QPlainTextEdit()
        self.prompt_edit.setAccessibleName("Side-by-side probes")
        self.prompt_edit.setPlaceholderText(f"One probe per line (up to {MAX_PROBES}); both sides answer each")
        self.prompt_edit.setMaximumHeight(80)
        self.prompt_edit.textChanged.connect(self._update_buttons)
        self.send_button = QPushButton("Send to both")
        self.send_button.clicked.connect(self.send)
        self.stop_button = QPushButton("Stop")
        self.stop_button.clicked.connect(self.stop)

        top = QHBoxLayout()
        top.addWidget(QLabel("Compare:"))
        top.addWidget(self.mode_combo, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.send_button)
        buttons.addWidget(self.stop_button)
        buttons.addStretch(1)
        replies = QWidget()
        replies_layout = QHBoxLayout(replies)
        replies_layout.setContentsMargins(0, 0, 0, 0)
        for side in self.sides:
            replies_layout.addWidget(side, 1)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.diff_view)
        splitter.addWidget(replies)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 3)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(self.prompt_edit)
        layout.addLayout(buttons)
        layout.addWidget(splitter, 1)
        ctx.backends.loaded.connect(lambda _info: self.refresh())
        self.refresh()

    # -- choices ---------------------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Reload configs and models, then apply the chosen mode's defaults."""
        configs = self._ctx.store.configs.list()
        for side in self.sides:
            side.config_combo.blockSignals(True)
            side.config_combo.clear()
            side.config_combo.addItem("The text in the editor", DRAFT)
            for config in configs:
                for version in self._ctx.store.configs.history(config.id):
                    label = f"{version.title} — v{version.version} ({version.status.value})"
                    side.config_combo.addItem(label, _version_key(version.id, version.version))
            side.config_combo.blockSignals(False)
            side.model_combo.clear()
            add_model_choices(side.model_combo, self._ctx, offer_unloaded=True)
        self.apply_mode()

    def apply_mode(self) -> None:
        """Set both sides to the mode's defaults: the draft against its last approved (else latest stored)
        version, the draft against another config, or the draft on two models."""
        a, b = self.sides
        mode = self.mode_combo.currentIndex()
        _select(a.config_combo, DRAFT)
        _select(a.model_combo, LOADED)
        _select(b.model_combo, LOADED)
        open_config = self._open_config_id()
        if mode == DRAFT_VS_APPROVED and open_config is not None:
            _select(b.config_combo, self._reference_version(open_config))
        elif mode == TWO_CONFIGS:
            others = [c.id for c in self._ctx.store.configs.list() if c.id != open_config]
            if others:
                _select(b.config_combo, _version_key(others[0], self._ctx.store.configs.latest(others[0]).version))
        else:
            _select(b.config_combo, DRAFT)
            if mode == TWO_MODELS and b.model_combo.count() > 1:
                b.model_combo.setCurrentIndex(1)
        self._show_diff()
        self._update_buttons()

    def _open_config_id(self) -> str | None:
        target = self._target()
        return target.config_id if target is not None else None

    def _reference_version(self, config_id: str) -> str | None:
        if not self._ctx.store.configs.exists(config_id):
            return None
        history = self._ctx.store.configs.history(config_id)
        approved = [v for v in history if v.status is ConfigStatus.APPROVED]
        return _version_key(config_id, (approved or history)[-1].version)

    def choice(self, index: int) -> SideChoice | None:
        """What side ``index`` would send under now; None when it has no config text."""
        side = self.sides[index]
        data = side.config_combo.currentData()
        model = str(side.model_combo.currentData() or LOADED)
        if data == DRAFT:
            target = self._target()
            if target is None or not target.text.strip():
                return None
            return SideChoice(target, "the editor's text", model)
        if not isinstance(data, str) or VERSION_SEPARATOR not in data:
            return None
        config_id, version = data.rsplit(VERSION_SEPARATOR, 1)
        config: SafetyConfig = self._ctx.store.configs.get(config_id, int(version))
        target = ProbeTarget(config.text, config.id, config.version, config.content_hash())
        return SideChoice(target, f"{config.id} v{config.version}", model)

    def _show_diff(self) -> None:
        a, b = self.choice(0), self.choice(1)
        if a is None or b is None:
            self.diff_view.setHtml("<p><i>Open a config in the editor (or pick stored versions) to compare.</i></p>")
            return
        header = f"<p><b>A</b>: {a.label} &nbsp;→&nbsp; <b>B</b>: {b.label}</p>"
        self.diff_view.setHtml(header + diff_html(diff_hunks(a.target.text, b.target.text)))
        self._update_buttons()

    # -- sending ---------------------------------------------------------------------------------------------

    @property
    def streaming(self) -> bool:
        return self._relay.running

    def prompts(self) -> list[str]:
        return [line.strip() for line in self.prompt_edit.toPlainText().splitlines() if line.strip()][:MAX_PROBES]

    def send_blocker(self) -> str | None:
        """Why Send to both cannot act now; None when it can."""
        if self.streaming:
            return "Both sides are still answering: stop them first"
        if self._ctx.backends.backend is None:
            return "No model is loaded: open the model manager (Ctrl+M) to load one"
        if self.choice(0) is None or self.choice(1) is None:
            return "Open a config in the editor, or pick stored versions for both sides"
        if not self.prompts():
            return "Type a probe first (one per line)"
        return None

    def send(self) -> bool:
        blocker = self.send_blocker()
        a, b = self.choice(0), self.choice(1)
        if blocker is not None or a is None or b is None:
            self.message.emit(blocker or "Cannot send now")
            return False
        prompts = self.prompts()
        params = GenerationParams(max_tokens=DEFAULT_MAX_TOKENS)
        openers = {
            c.model: model_opener(self._ctx, c.model, self._backend_factory) for c in (a, b) if c.model != LOADED
        }
        loaded = self._ctx.backends.backend
        infos: list[BackendInfo | None] = [None, None]

        def work(cancel: CancelToken) -> Iterable[Any]:
            built: dict[str, Backend] = {}
            try:
                for name, opener in openers.items():
                    built[name] = opener()[0]
                sides = []
                for index, chosen in enumerate((a, b)):
                    backend = built.get(chosen.model, loaded)
                    if backend is None:
                        raise RuntimeError("no model is loaded")
                    infos[index] = backend.info
                    sides.append(Side(backend, chosen.target.text))
                yield from stream_pair(sides, prompts, params, cancel)
            finally:
                for backend in built.values():
                    backend.close()

        self._sending = (a, b)
        self._prompts = prompts
        self._params = params
        self._infos = infos
        self.last_exchanges = [None, None]
        self._shown_probe = [-1, -1]
        for side in self.sides:
            side.reply_view.clear()
            side.timing.setText("Waiting…")
        self._relay.start(work)
        self._update_buttons()
        self.streaming_changed.emit(True)
        return True

    def stop(self) -> None:
        self._relay.cancel()

    def shutdown(self) -> None:
        self._relay.shutdown()
        self._sending = None
        self._update_buttons()

    def mark(self, index: int, verdict: Verdict) -> Exchange | None:
        exchange = self.last_exchanges[index]
        if exchange is None:
            self.message.emit(f"Side {SIDE_NAMES[index]} has no reply to mark yet")
            return None
        updated = self._ctx.store.exchanges.mark(exchange.id, verdict)
        self.last_exchanges[index] = updated
        self.message.emit(f"Marked side {SIDE_NAMES[index]}'s reply: {verdict.value}")
        return updated

    # -- events ----------------------------------------------------------------------------------------------

    def _on_events(self, batch: list[PairEvent]) -> None:
        for item in batch:
            side = self.sides[item.side]
            if self._shown_probe[item.side] != item.probe:
                self._shown_probe[item.side] = item.probe
                side.append(f"▶ {self._prompts[item.probe]}\n")
            if isinstance(item.event, GenerationResult):
                self._record(item.side, item.probe, item.event)
                side.append("\n\n")
            else:
                side.append(item.event.text)

    def _record(self, index: int, probe: int, result: GenerationResult) -> None:
        sending, info = self._sending, self._infos[index]
        side = self.sides[index]
        side.timing.setText(reply_summary(result))
        side.timing.setToolTip(reply_details(result))
        if sending is None or info is None:
            return
        target = sending[index].target
        exchange = self._ctx.store.exchanges.record(
            config_id=target.config_id,
            config_version=target.config_version,
            config_hash=target.config_hash,
            model_name=info.name,
            model_sha256=info.model_sha256,
            prompt=self._prompts[probe],
            params=self._params,
            result=result,
            config_text=target.text,
        )
        self.last_exchanges[index] = exchange
        self._update_buttons()
        self.reply_recorded.emit(exchange)

    def _on_failed(self, message: str) -> None:
        self.message.emit(f"Side by side stopped: {message}")

    def _on_done(self) -> None:
        self._sending = None
        self._update_buttons()
        self.streaming_changed.emit(False)

    def _update_buttons(self) -> None:
        blocker = self.send_blocker()
        offer(self.send_button, blocker, "Send every probe line to both sides")
        offer(self.stop_button, None if self.streaming else "Nothing is streaming", "Stop both replies")
        for index, side in enumerate(self.sides):
            has_reply = self.last_exchanges[index] is not None
            side.marks.set_ready(
                has_reply,
                "Mark this side's last reply" if has_reply else "Send a probe first: the mark goes to the last reply",
            )


def _version_key(config_id: str, version: int) -> str:
    return f"{config_id}{VERSION_SEPARATOR}{version}"


def _select(combo: QComboBox, data: object) -> None:
    index = combo.findData(data)
    if index >= 0:
        combo.setCurrentIndex(index)
