"""Honest controls: a control that cannot act is disabled and its tooltip says why, so a greyed-out button never
leaves the author guessing; when it can act, the tooltip says what it does."""

from __future__ import annotations

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QWidget


def offer(control: QWidget | QAction, why_not: str | None, tip: str = "") -> None:
    """Enable ``control`` when ``why_not`` is empty, else disable it with ``why_not`` as its tooltip (and, for a
    menu action, its status-bar tip)."""
    control.setEnabled(not why_not)
    text = why_not or tip
    control.setToolTip(text)
    if isinstance(control, QAction):
        control.setStatusTip(text)
