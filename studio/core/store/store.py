"""The :class:`Store` facade: one open database and a repository per kind of stored thing.

A repository is any class built from a ``sqlite_utils.Database``; adding one to the store is one line in the class
body, e.g. ``exchanges = repository(ExchangeRepo)``. Each is created on first use and kept for the store's life.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Generic, Self, TypeVar, overload

import sqlite_utils

from studio.core import paths
from studio.core.errors import StateError
from studio.core.store.approvals import ApprovalRepo
from studio.core.store.audit import AuditLog
from studio.core.store.configs import ConfigRepo
from studio.core.store.db import open_database
from studio.core.store.drafts import DraftRepo
from studio.core.store.endpoints import EndpointRepo
from studio.core.store.exchanges import ExchangeRepo
from studio.core.store.models import ModelRepo
from studio.core.store.runs import RunStore
from studio.core.store.statements import StatementRepo
from studio.core.store.suites import SuiteRepo

RepoT = TypeVar("RepoT")


class repository(Generic[RepoT]):
    """A lazily created, cached repository attribute of :class:`Store`."""

    def __init__(self, factory: Callable[[sqlite_utils.Database], RepoT]) -> None:
        self.factory = factory
        self.name = ""

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type[Any]) -> Self: ...

    @overload
    def __get__(self, instance: Store, owner: type[Any]) -> RepoT: ...

    def __get__(self, instance: Store | None, owner: type[Any]) -> Self | RepoT:
        if instance is None:
            return self
        repo = self.factory(instance.db)
        instance.__dict__[self.name] = repo
        return repo


class Store:
    """The studio database with its repositories. Use as a context manager, or call :meth:`close`.

    Core functions take the store (or the one repository they need) from their caller; only the command-line entry
    points and the app context open it.
    """

    configs = repository(ConfigRepo)
    suites = repository(SuiteRepo)
    runs = repository(RunStore)
    audit = repository(AuditLog)
    drafts = repository(DraftRepo)
    exchanges = repository(ExchangeRepo)
    models = repository(ModelRepo)
    endpoints = repository(EndpointRepo)
    statements = repository(StatementRepo)
    approvals = repository(ApprovalRepo)

    def __init__(self, db: sqlite_utils.Database, path: Path | None = None) -> None:
        self.db = db
        self.path = path

    @classmethod
    def open(cls, path: Path | None = None) -> Store:
        """Open (creating and migrating if needed) the database at ``path``, by default the app's database.

        Raises StateError for a database written by a newer studio or a file that is not a studio database.
        """
        target = paths.database_path() if path is None else Path(path)
        store = cls(open_database(target), target)
        # A process that stopped between committing audit rows and signing the head left them under a signed
        # pending head; it becomes the head (see studio.core.store.audit). A home that cannot be written keeps it
        # as it is, and verification still counts it.
        with contextlib.suppress(OSError, StateError):
            store.audit.recover()
        return store

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
