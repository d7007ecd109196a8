"""Headless command-line interface: ``studio <command> ...``.

Each command group lives in its own module of this package and adds its subcommands through a
``register(subparsers)`` function; a handler takes the parsed arguments and returns an exit code
(:class:`studio.core.errors.ExitCode`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from studio import __version__
from studio.cli import approval, benchmark, check, documents, draft_probes, keys, models, probe, runs, score, settings
from studio.cli.parser import StudioParser, run_command
from studio.core.errors import ExitCode

COMMAND_MODULES = [models, score, check, runs, benchmark, draft_probes, documents, probe, approval, keys, settings]


def make_parser() -> argparse.ArgumentParser:
    parser = StudioParser(
        prog="studio",
        description="CoSA Studio: write, probe, check and approve safety configs. Run without a command to open "
        "the window.",
        epilog="Exit codes: 0 ok, 1 negative outcome, 2 usage, 3 invalid input, 4 not found, 5 state conflict, "
        "6 model/backend failure, 130 cancelled, 141 output closed early.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=StudioParser)
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    handler = getattr(args, "func", None)
    if handler is None:
        # A command group given without its subcommand: show that group's help.
        target = getattr(args, "group_parser", parser)
        target.print_help(sys.stderr)
        return int(ExitCode.USAGE)
    return run_command("studio", lambda: int(handler(args)))
