"""The window's status bar: messages on the left, and the loaded model, its device, its context size and the prefix
cache as permanent fields on the right, each kept narrow enough that messages always have room."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QPainter, QPaintEvent
from PySide6.QtWidgets import QLabel, QMessageBox, QSizePolicy, QStatusBar, QWidget

from studio.core.inference.base import BackendInfo
from studio.core.inference.prefix_cache import PrefixCache
from studio.core.store.exchanges import Exchange
from studio.core.wording import cache_words
from studio.ui.glossary import tip

#: Share of the status bar each permanent field may take at most; the rest (over half) is for messages.
STATUS_MODEL_SHARE = 0.14
STATUS_DEVICE_SHARE = 0.09
STATUS_CACHE_SHARE = 0.14
MESSAGE_MS = 8000
ERROR_MS = 15000


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.1f} MiB"


class ElidedLabel(QLabel):
    """A one-line label that ends in "…" when it is narrower than its text, instead of cutting a word in half."""

    def paintEvent(self, _event: QPaintEvent) -> None:
        painter = QPainter(self)
        rect = self.contentsRect()
        text = self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideRight, rect.width())
        painter.drawText(rect, int(self.alignment()), text)

    def minimumSizeHint(self) -> QSize:
        return QSize(0, super().minimumSizeHint().height())


class StatusArea:
    """The permanent fields of ``bar`` and the way messages and errors are shown on it."""

    def __init__(self, bar: QStatusBar, window: QWidget) -> None:
        self.bar = bar
        self.window = window
        self._shares: list[tuple[QLabel, float]] = []
        self.model = self._field("No model", "Loaded model", STATUS_MODEL_SHARE)
        self.device = self._field("", "Device", STATUS_DEVICE_SHARE)
        self.context = self._field("", "Context size", STATUS_DEVICE_SHARE)
        self.context.setToolTip("How many tokens of config, prompt and reply the model can hold at once")
        self.cache = self._field("", "Prefix cache use", STATUS_CACHE_SHARE)
        self.cache.setToolTip(tip("Config reused from cache"))

    def _field(self, text: str, name: str, share: float) -> QLabel:
        """A permanent field at most ``share`` of the bar wide, so that the left part of the bar, where messages
        appear, always keeps most of its room (the full text is in the field's tooltip)."""
        label = ElidedLabel(text)
        label.setAccessibleName(name)
        label.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Preferred)
        self.bar.addPermanentWidget(label)
        self._shares.append((label, share))
        return label

    def fit(self) -> None:
        """Cap each field at its share of the bar's current width (call on every resize)."""
        width = self.bar.width()
        for label, share in self._shares:
            label.setMaximumWidth(int(width * share))

    def message(self, text: str) -> None:
        self.bar.showMessage(text, MESSAGE_MS)

    def error(self, text: str) -> None:
        """On the bar for longer than a message and, while the window is visible, in a box too."""
        self.bar.showMessage(text, ERROR_MS)
        if self.window.isVisible():
            box = QMessageBox(QMessageBox.Icon.Warning, "CoSA Studio", text, QMessageBox.StandardButton.Ok, self.window)
            box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            box.open()

    def show_loading(self, text: str) -> None:
        self.model.setText(text)

    def show_backend(self, info: BackendInfo, prefix_cache: PrefixCache | None) -> None:
        self.model.setText(f"Model: {info.name}")
        self.model.setToolTip(f"{info.name} ({info.kind}): {info.model_path}")
        if info.device == "cpu" or not info.gpu_layers:
            self.device.setText("| Device: CPU")
        else:
            self.device.setText(f"| Device: {info.device.upper()}, {info.gpu_layers} GPU layers")
        self.context.setText(f"| Context: {info.context_length} tokens")
        self.show_cache(prefix_cache, None)

    def show_cache(self, prefix_cache: PrefixCache | None, exchange: Exchange | None) -> None:
        """How many configs the loaded model keeps ready and how much of the last reply's prompt was reused."""
        parts = []
        details = [tip("Config reused from cache")]
        if prefix_cache is not None:
            parts.append(f"| Configs kept ready: {len(prefix_cache)}")
            details.append(f"Prefix cache: {len(prefix_cache)} saved, {_mib(prefix_cache.used_bytes)}.")
        if exchange is not None:
            parts.append(f"| Last reply: {cache_words(exchange.cached_tokens)}")
            details.append(f"Last reply: {exchange.cached_tokens}/{exchange.prompt_tokens} prompt tokens cached.")
        self.cache.setText(" ".join(parts))
        self.cache.setToolTip("\n".join(details))
