"""GUI responsiveness: event-loop stalls while a reply streams, and time from start to a usable window.

Both figures are printed next to a baseline measured in the same run on the same machine, so the ratios stay
meaningful on a busy or slow computer:

* stall: the longest gap between ticks of a 5 ms timer while the probe pane streams a reply from the embedded
  model (and from the fake backend at full speed, the worst case for repaint load), against the same measurement
  with the window idle. Goal: longest stall <= 50 ms.
* start-up: a fresh interpreter that imports the studio, opens the database and shows the main window until the
  first event-loop turn, against a fresh interpreter that shows a bare QLabel. Goal: <= 1.5 s.

Run: ``QT_QPA_PLATFORM=offscreen .venv/bin/python bench/bench_ui.py [--runs 3] [--model PATH]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TICK_MS = 5

_STARTUP_STUDIO = """
import time; t0 = time.perf_counter()
import sys
from PySide6.QtCore import QTimer
from studio.ui.app import start_gui
app, window = start_gui(["--no-model"])
def done():
    print(f"{time.perf_counter() - t0:.4f}")
    window.close()
    app.quit()
QTimer.singleShot(0, done)
app.exec()
"""

_STARTUP_BARE = """
import time; t0 = time.perf_counter()
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QLabel
app = QApplication([])
label = QLabel("hello"); label.show()
def done():
    print(f"{time.perf_counter() - t0:.4f}")
    app.quit()
QTimer.singleShot(0, done)
app.exec()
"""


def _time_script(script: str, home: Path) -> float:
    env = dict(os.environ, STUDIO_HOME=str(home), QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True, cwd=REPO)
    return float(proc.stdout.strip().splitlines()[-1])


def bench_startup(runs: int) -> tuple[float, float]:
    studio_times, bare_times = [], []
    with tempfile.TemporaryDirectory(prefix="bench-ui-") as tmp:
        home = Path(tmp)
        _time_script(_STARTUP_STUDIO, home)  # first run creates and migrates the database
        for _ in range(runs):
            bare_times.append(_time_script(_STARTUP_BARE, home))
            studio_times.append(_time_script(_STARTUP_STUDIO, home))
    return statistics.median(studio_times), statistics.median(bare_times)


class _StallMeter:
    """Records the longest gap between ticks of a fast timer on the GUI thread."""

    def __init__(self) -> None:
        from PySide6.QtCore import QTimer

        self.longest = 0.0
        self.gaps: list[float] = []
        self._last = time.perf_counter()
        self._timer = QTimer()
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self._on_tick)

    def start(self) -> None:
        self.longest = 0.0
        self.gaps = []
        self._last = time.perf_counter()
        self._timer.start()

    def stop(self) -> float:
        self._timer.stop()
        return self.longest * 1000.0

    def _on_tick(self) -> None:
        now = time.perf_counter()
        self.longest = max(self.longest, now - self._last)
        self.gaps.append(now - self._last)
        self._last = now

    def p99_ms(self) -> float:
        ordered = sorted(self.gaps)
        return 1000.0 * ordered[int(0.99 * (len(ordered) - 1))] if ordered else 0.0


def bench_stalls(model: Path | None, runs: int) -> dict[str, float]:
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from studio.core.documents import ConfigKind, SafetyConfig
    from studio.core.inference.base import Backend
    from studio.core.inference.fake import FakeBackend
    from studio.ui.context import AppContext
    from studio.ui.main_window import MainWindow

    if QApplication.instance() is None:
        QApplication([])
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-ui-") as tmp:
        ctx = AppContext.open(Path(tmp))
        window = MainWindow(ctx)
        window.resize(1400, 860)
        window.show()
        config = SafetyConfig(
            id="bench", title="Bench", kind=ConfigKind.FREE_FORM, text="You help a game studio write fiction."
        )
        window.open_new_config(config)
        meter = _StallMeter()

        def pump_until(predicate: Callable[[], bool], timeout: float) -> None:
            """Run the event loop (as ``app.exec`` would) until ``predicate`` holds or ``timeout`` passes."""
            end = time.monotonic() + timeout
            loop = QEventLoop()
            check = QTimer()
            check.setInterval(20)
            check.timeout.connect(lambda: (predicate() or time.monotonic() > end) and loop.quit())
            check.start()
            loop.exec()
            check.stop()

        def measure_stream(backend: Backend, label: str, max_tokens: int) -> None:
            ctx.backends.set_backend(backend)
            pump_until(lambda: False, 0.5)
            stalls, p99s = [], []
            for run in range(runs):
                window.probe.prompt_edit.setPlainText(f"Describe a rainy harbour town at night, take {run}.")
                window.probe.max_tokens_spin.setValue(max_tokens)
                meter.start()
                window.probe.send()
                pump_until(lambda: not window.probe.is_streaming, 300)
                stalls.append(meter.stop())
                p99s.append(meter.p99_ms())
            results[label] = max(stalls)
            results[label + "_p99"] = max(p99s)

        def measure_check(backend: Backend, label: str, probes: int, max_tokens: int) -> None:
            """Stall while a check runs in the Check pane (generation, judging, results redraws)."""
            from studio.ui.check.pane import CheckPane

            ctx.backends.set_backend(backend)
            if not ctx.store.configs.exists("bench"):
                ctx.store.configs.create(config)
            pane = CheckPane(ctx)
            pane.resize(900, 700)
            pane.show()
            pane.select_suite("scenario-game-studio")
            pane.select_configs(["bench"])
            pane.limit_spin.setValue(probes)
            pane.max_tokens_spin.setValue(max_tokens)
            pump_until(lambda: False, 0.5)
            meter.start()
            pane.start_check()
            pump_until(lambda: not pane.running, 900)
            results[label] = meter.stop()
            results[label + "_p99"] = meter.p99_ms()
            pane.shutdown()
            pane.close()

        meter.start()
        pump_until(lambda: False, 2.0)
        results["idle"] = meter.stop()
        results["idle_p99"] = meter.p99_ms()
        measure_stream(FakeBackend(name="fake-fast", token_delay_s=0.0005), "fake", 4000)
        if model is not None:
            from studio.core.settings import InferenceSettings
            from studio.ui.backends import llama_backend_factory

            real = llama_backend_factory(model, "smollm2", None, InferenceSettings(max_context=1024))
            measure_stream(real, "real", 128)
            measure_check(real, "check_real", 2, 32)
        measure_check(FakeBackend(name="fake-fast", token_delay_s=0.0005), "check_fake", 18, 64)
        window.close()
        ctx.store.close()
    return results


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    parser = argparse.ArgumentParser(description="GUI responsiveness benchmark")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--model", type=Path, default=REPO / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf")
    args = parser.parse_args(argv)
    model: Path | None = args.model if args.model.is_file() else None

    stalls = bench_stalls(model, args.runs)
    idle = max(stalls["idle"], 0.001)
    print(f"load average (1 min) during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    rows = [
        ("idle window (baseline)", "idle"),
        ("fake model, full speed", "fake"),
        ("embedded SmolLM2", "real"),
        ("check run, fake model", "check_fake"),
        ("check run, SmolLM2", "check_real"),
    ]
    for title, key in rows:
        if key in stalls:
            ratio = stalls[key] / idle
            print(
                f"event-loop stall, {title:24s} max {stalls[key]:6.1f} ms ({ratio:.1f}x idle), p99 "
                f"{stalls[key + '_p99']:5.1f} ms"
            )
    worst = max(v for k, v in stalls.items() if k in ("fake", "real", "check_fake", "check_real"))
    verdict = "met" if worst <= 50 else "NOT met"
    print(f"longest stall while streaming or checking: {worst:.1f} ms (goal <= 50 ms): {verdict}")

    studio_s, bare_s = bench_startup(args.runs)
    print(f"start to usable window: {studio_s:.2f} s; bare Qt window: {bare_s:.2f} s ({studio_s / bare_s:.1f}x)")
    print(f"start-up goal <= 1.5 s: {'met' if studio_s <= 1.5 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
