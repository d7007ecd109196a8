"""Cyclic garbage is collected on the GUI thread only.

Python's cycle collector runs in whichever thread happens to allocate when a threshold is crossed. If that is a
worker thread (a check run, a streaming reply) and the garbage holds a Qt object made on the GUI thread, the object is
destroyed from the wrong thread, which can crash the process. So automatic collection is switched off while the window
runs, and a timer on the GUI thread collects with the usual generation thresholds instead.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer

COLLECT_EVERY_MS = 500


def collect_due() -> int:
    """Collect the generations whose counts passed their thresholds, youngest first (what the automatic collector
    would have done); returns the number of unreachable objects found."""
    counts, thresholds = gc.get_count(), gc.get_threshold()
    found = 0
    for generation in range(3):
        if counts[generation] <= thresholds[generation]:
            break
        found = gc.collect(generation)
    return found


class MainThreadCollector(QObject):
    """Owns the switch: ``start`` turns automatic collection off and collects from a GUI-thread timer; ``stop``
    collects once more and turns automatic collection back on."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._timer = QTimer(self)
        self._timer.setInterval(COLLECT_EVERY_MS)
        self._timer.timeout.connect(collect_due)
        self._was_enabled = gc.isenabled()

    def start(self) -> None:
        self._was_enabled = gc.isenabled()
        gc.disable()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()
        gc.collect()
        if self._was_enabled:
            gc.enable()
