"""Starting the GUI: `studio` with no arguments opens the window on the default model."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from studio import __version__


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="studio gui", description="Open the CoSA Studio window.")
    parser.add_argument("--no-model", action="store_true", help="start without loading the default model")
    parser.add_argument("files", nargs="*", type=Path, help="config files to import and open")
    args, _qt_args = parser.parse_known_args(list(argv))
    return args


def run_gui(argv: Sequence[str]) -> int:
    args = _parse(argv)
    from PySide6.QtWidgets import QApplication, QMessageBox

    from studio.core.errors import StudioError
    from studio.core.paths import app_home
    from studio.ui.context import AppContext
    from studio.ui.main_window import MainWindow
    from studio.ui.theme import follow_system_scheme

    app = QApplication([sys.argv[0], *argv])
    app.setApplicationName("CoSA Studio")
    app.setApplicationVersion(__version__)
    app.setOrganizationName("CoSA Studio")
    app.setDesktopFileName("io.github.cosa_studio.CoSAStudio")
    follow_system_scheme(app)
    try:
        ctx = AppContext.open(app_home())
    except StudioError as exc:
        QMessageBox.critical(None, "CoSA Studio", f"The studio database could not be opened.\n\n{exc}")
        print(f"studio: error: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    window = MainWindow(ctx)
    window.show()
    for path in args.files:
        window.open_file(path)
    if not args.no_model:
        window.load_default_model()
    return int(app.exec())
