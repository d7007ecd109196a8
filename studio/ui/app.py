"""Starting the GUI: `studio` with no arguments opens the window on the default model."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from studio import __version__

if TYPE_CHECKING:
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    from studio.ui.main_window import MainWindow


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="studio gui", description="Open the CoSA Studio window.", allow_abbrev=False)
    parser.add_argument("--no-model", action="store_true", help="start without loading the default model")
    parser.add_argument("files", nargs="*", type=Path, help="config files to import and open")
    args, _qt_args = parser.parse_known_args(list(argv))
    return args


APP_ID = "io.github.cosa_studio.CosaStudio"


def _app_icon() -> QIcon:
    from PySide6.QtGui import QIcon

    from studio.core.paths import resource

    icon = QIcon()
    for png in sorted(resource("icons").glob(f"{APP_ID}-*.png")):
        icon.addFile(str(png))
    return icon


def _import_sqlite_utils_lean() -> None:
    """Import sqlite-utils without pandas and numpy.

    sqlite-utils imports both whenever they are installed (the train extra brings them in), only to recognise their
    value types, which the studio never stores; that costs about a second of start-up. The two imports are made to
    fail while sqlite-utils loads and are allowed again right after, so llama.cpp still gets numpy later.
    """
    if "sqlite_utils" in sys.modules:
        return
    blocked = [name for name in ("pandas", "numpy") if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        import sqlite_utils  # noqa: F401
    finally:
        for name in blocked:
            if sys.modules.get(name) is None:
                del sys.modules[name]


def start_gui(argv: Sequence[str]) -> tuple[QApplication, MainWindow] | int:
    """Create the application and show the window; returns an exit code instead when the studio cannot start."""
    args = _parse(argv)
    _import_sqlite_utils_lean()
    from PySide6.QtWidgets import QApplication, QMessageBox

    from studio.core.errors import StudioError
    from studio.core.paths import app_home
    from studio.ui.collector import MainThreadCollector
    from studio.ui.context import AppContext
    from studio.ui.first_run import add_examples_once
    from studio.ui.main_window import MainWindow
    from studio.ui.theme import follow_system_scheme

    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication([sys.argv[0], *argv])
    app.setApplicationName("CoSA Studio")
    app.setApplicationVersion(__version__)
    app.setOrganizationName("CoSA Studio")
    app.setDesktopFileName(APP_ID)
    app.setWindowIcon(_app_icon())
    follow_system_scheme(app)
    collector = MainThreadCollector(app)
    collector.start()
    app.aboutToQuit.connect(collector.stop)
    try:
        ctx = AppContext.open(app_home())
    except StudioError as exc:
        print(f"studio: error: {exc}", file=sys.stderr)
        QMessageBox.critical(None, "CoSA Studio", f"The studio database could not be opened.\n\n{exc}")
        return int(exc.exit_code)
    add_examples_once(ctx)
    window = MainWindow(ctx)
    window.show()
    for path in args.files:
        window.open_file(path)
    if not args.no_model:
        window.load_default_model()
    return app, window


def run_gui(argv: Sequence[str]) -> int:
    started = start_gui(argv)
    if isinstance(started, int):
        return started
    app, _window = started
    return int(app.exec())
