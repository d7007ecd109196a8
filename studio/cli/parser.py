"""The parser shared by ``studio`` and ``studio-train``: no flag abbreviations, "did you mean" on errors.

Exit codes (see :class:`studio.core.errors.ExitCode`): 0 success; 1 negative outcome (gate not met, verification
failed); 2 bad arguments; 3 invalid input file or value; 4 not found; 5 conflicts with stored state; 6 model or
backend failure; 130 cancelled; 141 the output pipe was closed early.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from studio.core.choices import closest
from studio.core.errors import ExitCode, StudioError

_INVALID_CHOICE = re.compile(r"invalid choice: '(?P<value>[^']*)' \(choose from (?P<choices>.*)\)$")


class StudioParser(argparse.ArgumentParser):
    """The parser of ``studio`` and ``studio-train`` and all their subcommands.

    A shortened flag is never taken for a long one (``--min-scor`` is an error, not ``--min-score``): a check
    started with a half-typed flag may run for minutes under settings nobody asked for. Errors exit with
    :data:`ExitCode.USAGE` and one line that names the flag or choice closest to what was typed.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        if extras and not self._has_subcommands():
            # Report unknown flags here, where this command's own flags are known, rather than at the top level.
            self.error(f"unrecognized arguments: {' '.join(extras)}{self._flag_hint(extras)}")
        return parsed, extras

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(int(ExitCode.USAGE), f"{self.prog}: error: {_with_choice_hint(message)}\n")

    def _has_subcommands(self) -> bool:
        return any(isinstance(action, argparse._SubParsersAction) for action in self._actions)

    def _flag_hint(self, extras: Sequence[str]) -> str:
        flags = [flag for flag in self._option_string_actions if flag.startswith("--")]
        unknown = next((word.split("=", 1)[0] for word in extras if word.startswith("--")), None)
        guess = closest(unknown, flags) if unknown else None
        return f" (did you mean {guess}?)" if guess else ""


def _with_choice_hint(message: str) -> str:
    """argparse's "invalid choice" message with the closest choice added."""
    found = _INVALID_CHOICE.search(message)
    if found is None:
        return message
    choices = [part.strip().strip("'") for part in found["choices"].split(",")]
    guess = closest(found["value"], choices)
    return f"{message}; did you mean {guess!r}?" if guess else message


def command_group(sub: Any, name: str, help_text: str) -> Any:
    """A command with subcommands (``studio NAME SUBCOMMAND``); given alone, it prints its own help."""
    group = sub.add_parser(name, help=help_text, description=help_text)
    group.set_defaults(group_parser=group)
    return group.add_subparsers(dest=f"{name}_command", metavar="SUBCOMMAND", parser_class=type(group))


def run_command(prog: str, call: Callable[[], int], on_error: Callable[[str, int], None] | None = None) -> int:
    """Run a parsed command and turn each way it can end into its exit code, shared by ``studio`` and
    ``studio-train``: a :class:`StudioError` or Ctrl-C becomes one line on stderr (and ``on_error``, for a caller
    that also reports errors elsewhere, such as the trainer's progress stream), a closed output pipe a quiet stop.
    """
    try:
        code = int(call())
        sys.stdout.flush()  # a reader that went away is noticed here, not in the interpreter's exit
        return code
    except StudioError as exc:
        message, code = str(exc), int(exc.exit_code)
    except KeyboardInterrupt:
        message, code = "cancelled", int(ExitCode.CANCELLED)
    except BrokenPipeError:
        return closed_pipe_exit()
    print(f"{prog}: {message}" if code == int(ExitCode.CANCELLED) else f"{prog}: error: {message}", file=sys.stderr)
    if on_error is not None:
        on_error(message, code)
    return code


def closed_pipe_exit() -> int:
    """The reader of stdout went away (``studio runs list | head -1``): stop quietly, as a shell tool does.

    stdout is pointed at the null device so that flushing what is still buffered at exit cannot fail again.
    """
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return int(ExitCode.CLOSED_PIPE)
