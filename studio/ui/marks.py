"""The marks an author gives a reply (it follows, partially follows or violates the config), as one row of buttons
shared by the Probe pane and each side of Side by side."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

from studio.core.store.exchanges import Verdict

SHORT_LABELS = {Verdict.FOLLOWS: "Follows", Verdict.PARTIALLY: "Partially", Verdict.VIOLATES: "Violates"}
LONG_LABELS = {Verdict.FOLLOWS: "Follows config", Verdict.PARTIALLY: "Partially", Verdict.VIOLATES: "Violates config"}


class MarkButtons(QWidget):
    """A title, then one button per verdict; ``marked`` says which was clicked."""

    marked = Signal(object)  # Verdict

    def __init__(
        self, title: str, what: str, labels: dict[Verdict, str] = SHORT_LABELS, parent: QWidget | None = None
    ) -> None:
        """``what`` names the reply a click marks, for screen readers (``Mark <what>: Follows``)."""
        super().__init__(parent)
        self.buttons: dict[Verdict, QPushButton] = {}
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel(title))
        for verdict, label in labels.items():
            button = QPushButton(label)
            button.setAccessibleName(f"Mark {what}: {label}")
            button.clicked.connect(lambda _checked=False, v=verdict: self.marked.emit(v))
            self.buttons[verdict] = button
            row.addWidget(button)
        row.addStretch(1)

    def set_ready(self, ready: bool, tooltip: str) -> None:
        """Enable the buttons or not; ``tooltip`` says what a click marks, or why nothing can be marked yet."""
        for button in self.buttons.values():
            button.setEnabled(ready)
            button.setToolTip(tooltip)
