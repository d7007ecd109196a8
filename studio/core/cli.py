"""Headless command-line interface: ``studio <command> ...``.

Each area of the core contributes its commands through a ``register(subparsers)`` function listed in
:data:`COMMAND_MODULES`; a command handler takes the parsed arguments and returns an exit code.

Exit codes (see :class:`studio.core.errors.ExitCode`): 0 success; 1 negative outcome (gate not met, verification
failed); 2 bad arguments; 3 invalid input file or value; 4 not found; 5 conflicts with stored state; 6 model or
backend failure; 130 cancelled.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any

from studio import __version__
from studio.core.errors import ExitCode, StudioError

COMMAND_MODULES = [
    "studio.core.inference.cli",
    "studio.core.evals.cli",
    "studio.core.cli_documents",
    "studio.core.inference.probe_cli",
    "studio.core.approval.cli",
]


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors exit with :data:`ExitCode.USAGE` and a one-line message."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(int(ExitCode.USAGE), f"{self.prog}: error: {message}\n")


def command_group(sub: Any, name: str, help_text: str) -> Any:
    """A command with subcommands (``studio NAME SUBCOMMAND``); given alone, it prints its own help."""
    group = sub.add_parser(name, help=help_text, description=help_text)
    group.set_defaults(group_parser=group)
    return group.add_subparsers(dest=f"{name}_command", metavar="SUBCOMMAND", parser_class=type(group))


def make_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="studio",
        description="CoSA Studio: write, probe, check and approve safety configs. Run without a command to open "
        "the window.",
        epilog="Exit codes: 0 ok, 1 negative outcome, 2 usage, 3 invalid input, 4 not found, 5 state conflict, "
        "6 model/backend failure, 130 cancelled.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
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
    try:
        return int(handler(args))
    except StudioError as exc:
        print(f"studio: error: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        print("studio: cancelled", file=sys.stderr)
        return int(ExitCode.CANCELLED)
