"""Errors shown to users, and the exit codes of the command-line tools.

Every error a user can cause carries where it happened (file, line, column, or row) and renders as one line.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

from pydantic import ValidationError


class ExitCode(IntEnum):
    """Exit codes of ``studio`` and ``studio-train`` (documented in the README)."""

    OK = 0
    FAILURE = 1  # the command ran but its outcome is negative (gate not met, verification failed)
    USAGE = 2  # bad command-line arguments
    INPUT = 3  # a file or value given by the user is invalid
    NOT_FOUND = 4  # a named config, suite, model or run does not exist
    STATE = 5  # the request conflicts with stored state (newer database, frozen version, lifecycle rule)
    RUNTIME = 6  # a model or backend failed while working
    CANCELLED = 130
    CLOSED_PIPE = 141  # the reader of the output went away (``| head``), as for a tool ended by SIGPIPE


class StudioError(Exception):
    """Base class of errors with a message meant for users."""

    exit_code: ExitCode = ExitCode.FAILURE


class InputError(StudioError):
    """Invalid user input, located as precisely as possible."""

    exit_code = ExitCode.INPUT

    def __init__(
        self,
        source: str | Path | None,
        message: str,
        *,
        line: int | None = None,
        column: int | None = None,
        where: str | None = None,
    ) -> None:
        self.source = str(source) if source is not None else None
        self.message = message
        self.line = line
        self.column = column
        self.where = where
        super().__init__(str(self))

    def __str__(self) -> str:
        place = self.source or "<input>"
        if self.line is not None:
            place += f":{self.line}"
            if self.column is not None:
                place += f":{self.column}"
        if self.where:
            place += f" ({self.where})"
        return f"{place}: {self.message}"


class NotFoundError(StudioError):
    exit_code = ExitCode.NOT_FOUND


class StateError(StudioError):
    exit_code = ExitCode.STATE


class BackendError(StudioError):
    """A model could not be loaded or failed while generating."""

    exit_code = ExitCode.RUNTIME


class CancelledError(StudioError):
    exit_code = ExitCode.CANCELLED


@dataclass(frozen=True)
class ValidationProblem:
    """The first problem pydantic found, in the words every screen and command shows it with.

    Pydantic reports every problem with its own phrasing ("Extra inputs are not permitted", "Value error, ...");
    users see one line naming the field, so the CLI, the trainer, the document loader and the panes all render a
    :class:`~pydantic.ValidationError` through :func:`validation_problem`.
    """

    loc: tuple[int | str, ...]
    message: str
    more: int

    @property
    def where(self) -> str:
        """The dotted field path (``probes.0.text``); empty when the whole document is wrong."""
        return ".".join(str(part) for part in self.loc)

    @property
    def detail(self) -> str:
        """The message without the field path, with a count of further problems when there are any."""
        if not self.more:
            return self.message
        return f"{self.message} (and {self.more} more problem{'s' if self.more > 1 else ''})"

    def __str__(self) -> str:
        return f"{self.where}: {self.detail}" if self.where else self.detail


def validation_problem(exc: ValidationError) -> ValidationProblem:
    """The first problem of ``exc`` as one line: unknown and missing fields by name, other messages cleaned."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    loc = tuple(first["loc"])
    field = str(loc[-1]) if loc else ""
    if first["type"] == "extra_forbidden":
        message = f"unknown field {field!r}"
    elif first["type"] == "missing":
        message = f"missing required field {field!r}"
    else:
        message = str(first["msg"]).removeprefix("Value error, ")
    return ValidationProblem(loc=loc, message=" ".join(message.split("\n")), more=len(errors) - 1)


def one_line(exc: Exception) -> str:
    """A short reason for an error inside a larger message: the first validation problem, or the first line."""
    if isinstance(exc, ValidationError):
        return str(validation_problem(exc))
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
