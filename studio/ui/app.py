"""Starting the GUI."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def run_gui(argv: Sequence[str]) -> int:
    from PySide6.QtWidgets import QApplication, QLabel

    app = QApplication([sys.argv[0], *argv])
    label = QLabel("CoSA Studio")
    label.show()
    return int(app.exec())
