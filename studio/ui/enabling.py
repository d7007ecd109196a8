"""Controls that cannot act say why: a disabled control's tooltip gives the reason, an enabled one's says what it
does. One helper so that every pane words and applies this the same way."""

from __future__ import annotations

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QWidget


def enable_or_explain(control: QWidget | QAction, why_not: str | None, does: str = "") -> None:
    """Enable ``control`` when ``why_not`` is None (its tooltip is then ``does``), else disable it and let its
    tooltip be ``why_not``."""
    control.setEnabled(why_not is None)
    control.setToolTip(does if why_not is None else why_not)
