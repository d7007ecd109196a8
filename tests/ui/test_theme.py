"""Following the system colour scheme."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication

from studio.ui.theme import apply_scheme


def test_dark_and_light_palettes(qapp: QApplication) -> None:
    original = qapp.palette()
    try:
        apply_scheme(qapp, Qt.ColorScheme.Dark)
        dark = qapp.palette()
        assert dark.color(QPalette.ColorRole.Window).lightness() < 80
        assert dark.color(QPalette.ColorRole.WindowText).lightness() > 180
        apply_scheme(qapp, Qt.ColorScheme.Light)
        assert qapp.palette().color(QPalette.ColorRole.Window).lightness() > 180
        assert qapp.style().name().casefold() == "fusion"
    finally:
        qapp.setPalette(original)
