"""Screenshots of the studio window for the docs.

Starts the real application (the same code path as ``studio``) on the embedded SmolLM2 model, under a private
Xvfb display when no display is set, plays a short scripted session and saves PNGs to ``docs/screenshots/``:

1. the window after start-up with the example configs and the Start here panel, 2. the "New from template" dialog
with the categorical builder, 3. a reply streaming, 4. the reply stopped and marked, 5. the model manager, 6. the
version history diff, 8. a check run of two configs with its CoSA-Score, 9. reviewing its verdicts, 10. the two
configs compared in a run on the fake backend (a flip linked to its diff hunk; see ``_fake_run_with_a_flip``),
11. the approval dialog, 12. live side by side (the draft against its last approved version), 7. the dark scheme
(taken last).

Usage: ``.venv/bin/python scripts/screenshots.py [--out docs/screenshots]``. Needs Xvfb (see the README).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from studio.core.store.store import Store

REPO = Path(__file__).resolve().parent.parent
SCREEN = (1600, 1000)


def _start_xvfb() -> subprocess.Popen[bytes] | None:
    """Start Xvfb on a free display number unless a display is already available."""
    if os.environ.get("DISPLAY"):
        return None
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        sys.exit("screenshots: Xvfb is not installed (apt-get install xvfb)")
    for number in range(90, 110):
        if Path(f"/tmp/.X11-unix/X{number}").exists() or Path(f"/tmp/.X{number}-lock").exists():
            continue
        proc = subprocess.Popen(
            [xvfb, f":{number}", "-screen", "0", f"{SCREEN[0]}x{SCREEN[1]}x24", "-nolisten", "tcp"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not Path(f"/tmp/.X11-unix/X{number}").exists():
            time.sleep(0.05)
        os.environ["DISPLAY"] = f":{number}"
        return proc
    sys.exit("screenshots: no free X display number between :90 and :109")


def _seed_library(home: Path) -> None:
    """A few configs in different states, so the library shows its badges."""
    from studio.core.documents import ConfigStatus
    from studio.core.store.store import Store
    from studio.core.templates import new_config

    with Store.open(home / "studio.db") as store:
        game = store.configs.create(new_config("game-studio", config_id="game-studio", author="dana"))
        store.configs.set_status(game.id, game.version, ConfigStatus.APPROVED)
        prosecutor = store.configs.create(new_config("public-prosecutor", config_id="prosecutor", author="lee"))
        store.configs.set_status(prosecutor.id, prosecutor.version, ConfigStatus.IN_REVIEW)
        store.configs.create(new_config("childrens-publisher", config_id="childrens-publisher", author="dana"))


#: The model name the compare picture's run is stored under, so the picture says where its verdicts come from.
FAKE_MODEL_NAME = "fake-backend-arbitrary-verdicts"


def _fake_run_with_a_flip(store: Store) -> str:
    """A check run of the two game-studio configs on the deterministic fake backend, for the compare picture.

    The embedded 135M judge calls nearly every reply safe, so a real run on it seldom has a flip to show. The fake
    backend's verdicts are arbitrary, but they go through the real pipeline: the run is stored under a model name
    that says so, and the README's caption says it too. Probes of each kind are added until a verdict flips (the
    fake verdicts depend on the config text, so one comes within a few probes)."""
    from studio.core.evals.compare import compare_configs
    from studio.core.evals.runner import CheckRunner, CheckSpec
    from studio.core.evals.suites import bundled_suite, sample_suite
    from studio.core.inference.fake import FakeBackend

    configs = (store.configs.get("example-game-studio"), store.configs.get("game-studio"))
    suite = bundled_suite("scenario-game-studio")
    backend = FakeBackend(name=FAKE_MODEL_NAME)
    runner = CheckRunner(store.runs, backend, backend)
    for per_kind in range(1, 7):
        sample = sample_suite(suite, per_kind, configs[1])
        run_id = list(runner.check(CheckSpec(suite=sample, configs=configs)))[-1].run_id
        _hunks, pairs = compare_configs(store.runs, run_id, configs[0].id, run_id, configs[1].id)
        if any(pair.flipped for pair in pairs):
            return run_id
    raise SystemExit("screenshots: no flip on the fake backend")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    args = parser.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    xvfb = _start_xvfb()
    home = Path(tempfile.mkdtemp(prefix="studio-screens-"))
    os.environ["STUDIO_HOME"] = str(home)
    os.environ["STUDIO_MODELS_DIR"] = str(REPO / "models")
    os.environ["STUDIO_IDENTITY"] = "dana"
    os.environ["QT_QPA_PLATFORM"] = "xcb"
    try:
        _seed_library(home)
        return _session(out)
    finally:
        if xvfb is not None:
            xvfb.terminate()
            xvfb.wait(10)
        shutil.rmtree(home, ignore_errors=True)


def _session(out: Path) -> int:
    from PySide6.QtCore import QEventLoop, Qt, QTimer
    from PySide6.QtWidgets import QApplication

    from studio.core.store.exchanges import Verdict
    from studio.core.taxonomy import Category
    from studio.ui.app import start_gui
    from studio.ui.template_dialog import TemplateDialog
    from studio.ui.theme import apply_scheme

    started = start_gui([])
    if isinstance(started, int):
        return started
    app, window = started
    window.setGeometry(0, 0, SCREEN[0], SCREEN[1])

    def run_loop_until(predicate: Callable[[], bool], timeout: float) -> bool:
        """Run the event loop (as ``app.exec`` would) until ``predicate`` holds; False on timeout."""
        end = time.monotonic() + timeout
        loop = QEventLoop()
        check = QTimer()
        check.setInterval(20)
        check.timeout.connect(lambda: (predicate() or time.monotonic() > end) and loop.quit())
        check.start()
        loop.exec()
        check.stop()
        return predicate()

    def pump(seconds: float) -> None:
        end = time.monotonic() + seconds
        run_loop_until(lambda: time.monotonic() >= end, seconds + 1)

    def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
        if not run_loop_until(predicate, timeout):
            raise SystemExit(f"screenshots: timed out waiting for {what}")

    def shot(name: str) -> None:
        pump(0.4)
        screen = QApplication.primaryScreen()
        path = out / f"{name}.png"
        if not screen.grabWindow(0).save(str(path)):
            raise SystemExit(f"screenshots: could not write {path}")
        print(f"wrote {path}")

    wait_until(lambda: window.ctx.backends.info is not None or window.load_error is not None, "the model")
    if window.load_error is not None:
        print(f"screenshots: {window.load_error}", file=sys.stderr)
        return 1
    window.open_config_id("game-studio")
    window.resizeDocks([window.start_here_dock, window.library_dock], [400, 520], Qt.Orientation.Vertical)
    shot("01-main-window")

    dialog = TemplateDialog(author="dana", parent=window)
    dialog.open()
    dialog.select_template("categorical")
    dialog.category_boxes[Category.VIOLENCE].setChecked(True)
    dialog.category_boxes[Category.WEAPONS].setChecked(True)
    dialog.seed_spin.setValue(20241008)
    dialog.title_edit.setText("Violence and weapons allowed")
    dialog.move(150, 120)
    shot("02-new-from-template")
    dialog.accept()
    config = dialog.result_config
    if config is None:
        print(f"screenshots: template dialog refused: {dialog.error_label.text()}", file=sys.stderr)
        return 1
    window.open_new_config(config)
    window.save()
    window.start_here_dock.hide()  # the later pictures show the panes; the steps have been seen

    probe = window.probe
    probe.max_tokens_spin.setValue(160)
    probe.temperature_spin.setValue(0.7)
    probe.prompt_edit.setPlainText("For a thriller novel, describe how the villain plans the ambush.")
    probe.send()
    wait_until(lambda: len(probe.reply_view.toPlainText().split()) >= 12, "streamed tokens")
    shot("03-probe-streaming")
    probe.stop()
    wait_until(lambda: not probe.is_streaming, "the stop")
    probe.mark_selected(Verdict.PARTIALLY)
    shot("04-probe-stopped-and-marked")

    window.show_models()
    window.models.table.selectRow(0)
    window.resizeDocks([window.models_dock], [330], Qt.Orientation.Vertical)
    shot("05-model-manager")
    window.models_dock.hide()

    window.open_config_id("game-studio")
    window.editor.text_edit.appendPlainText("\nNever describe real-world weapon modifications, even in fiction.")
    window.save()
    history = window.show_history()
    if history is not None:
        history.move(250, 150)
        shot("06-version-history")
        history.close()

    window.show_check()
    check = window.check
    check.select_suite("scenario-game-studio")
    check.select_configs(["game-studio", "example-game-studio"])
    check.limit_spin.setValue(3)
    check.max_tokens_spin.setValue(48)
    window.resizeDocks([window.check_dock], [560], Qt.Orientation.Vertical)
    if not check.start_check():
        print("screenshots: the check did not start", file=sys.stderr)
        return 1
    wait_until(lambda: not check.running, "the check run", timeout=900.0)
    shot("08-check-results")

    window.show_review()
    check.item_table.selectRow(0)
    shot("09-review")
    window.check_dock.hide()

    window.show_compare()
    compare = window.compare
    flip_run = _fake_run_with_a_flip(window.ctx.store)
    compare.refresh()
    compare.set_sides(flip_run, "example-game-studio", flip_run, "game-studio")
    compare.compare()
    compare.only_flips.setChecked(True)
    compare.select_row(0)
    window.resizeDocks([window.compare_dock], [560], Qt.Orientation.Vertical)
    shot("10-compare")
    window.compare_dock.hide()

    approval = window.show_approval()  # game-studio v2, checked above
    if approval is not None:
        approval.move(220, 120)
        shot("11-approval")
        approval.close()

    window.open_config_id("game-studio")
    window.side_by_side.prompt_edit.setPlainText("Write a short threat from the gang boss to a shopkeeper.")
    window.show_side_by_side()
    window.resizeDocks([window.side_by_side_dock], [560], Qt.Orientation.Vertical)
    side_by_side = window.side_by_side
    if not side_by_side.send():
        print("screenshots: side by side did not start", file=sys.stderr)
        return 1
    wait_until(lambda: not side_by_side.streaming, "both sides' replies", timeout=600.0)
    shot("12-side-by-side")
    window.side_by_side_dock.hide()

    apply_scheme(app, Qt.ColorScheme.Dark)
    window.library.refresh()
    shot("07-dark-scheme")

    window.close()
    pump(0.2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
