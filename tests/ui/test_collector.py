"""Cyclic garbage is collected on the GUI thread: never by a worker thread while the collector runs."""

from __future__ import annotations

import gc
import threading

from pytestqt.qtbot import QtBot

from studio.ui.collector import MainThreadCollector, collect_due


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_workers_never_collect_and_the_timer_does(qtbot: QtBot) -> None:
    collector = MainThreadCollector()
    collector.start()  # the autouse fixture already did; starting again keeps it off
    collected_in: list[str] = []

    def note(phase: str, _info: dict[str, int]) -> None:
        if phase == "start":
            collected_in.append(threading.current_thread().name)

    gc.callbacks.append(note)
    try:
        worker = threading.Thread(target=lambda: [_Cycle() for _ in range(50_000)], name="worker")
        worker.start()
        worker.join()
        assert "worker" not in collected_in
        qtbot.waitUntil(lambda: threading.main_thread().name in collected_in, timeout=5000)
    finally:
        gc.callbacks.remove(note)
        collector.stop()
        collector.deleteLater()
    assert not gc.isenabled()  # the test's own collector was started while collection was already off


def test_collect_due_follows_the_thresholds() -> None:
    gc.collect()
    assert collect_due() == 0  # nothing is due right after a full collection
    for _ in range(gc.get_threshold()[0] + 1):
        _Cycle()
    assert collect_due() >= 1
