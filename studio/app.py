"""Entry point of the `studio` console script.

With no arguments the GUI starts; with a subcommand the headless CLI in :mod:`studio.cli.main` runs.
The GUI package is imported only when it is needed, so headless commands never load Qt.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] == "gui":
        from studio.ui.app import run_gui

        return run_gui(args[1:])
    from studio.cli.main import main as cli_main

    return cli_main(args)
