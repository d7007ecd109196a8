"""Errors shown to users, and the exit codes of the command-line tools.

Every error a user can cause carries where it happened (file, line, column, or row) and renders as one line.
"""

from __future__ import annotations

from enum import IntEnum
from pathlib import Path


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
