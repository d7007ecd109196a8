"""Opening the studio database: WAL, foreign keys, migrations, refusal of newer databases, and write transactions
that never lose a write to another process.

Every write transaction takes SQLite's write lock up front (``BEGIN IMMEDIATE``). A deferred ``BEGIN`` first reads
and then upgrades to a write lock; when another process wrote in between, SQLite answers "database is locked" at
once, without waiting for the busy timeout, and the write is lost. Taking the lock first makes a second writer wait
(busy timeout) and then retry a bounded number of times; only a lock held for the whole wait fails, with a one-line
message.

The schema version is kept twice: the named migrations in ``_migrations`` and SQLite's ``user_version`` (the
number of applied migrations). A database with a migration this version does not know, or a higher
``user_version``, was written by a newer studio and is refused.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable, Generator
from datetime import UTC, datetime
from pathlib import Path

import sqlite_utils

from studio.core.errors import StateError
from studio.core.store.migrations import ordered_migrations

MIGRATIONS_TABLE = "_migrations"

#: How long one attempt to take the write lock waits for another writer (SQLite busy timeout, seconds).
BUSY_TIMEOUT_S = 20.0
#: Attempts to take the write lock before giving up.
WRITE_ATTEMPTS = 3


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _is_unwritable(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "readonly" in text or "read-only" in text or "unable to open" in text or "disk i/o" in text


class StudioDatabase(sqlite_utils.Database):
    """A ``sqlite_utils.Database`` whose outermost :meth:`atomic` block is a ``BEGIN IMMEDIATE`` transaction.

    Work that must follow a successful commit (writing the audit head file) is registered with
    :meth:`after_commit`; it runs once the outermost transaction committed and is dropped on rollback. Work that
    must be durable before the commit (the audit log's pending head) is registered with :meth:`before_commit`; it
    runs inside the outermost transaction, just before ``COMMIT``, and an exception from it rolls the transaction
    back.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        super().__init__(conn)
        self._after_commit: list[Callable[[], None]] = []
        self._before_commit: list[Callable[[], None]] = []
        #: Notes that last one outermost transaction (emptied when it begins), e.g. that the audit log was checked.
        self.transaction_state: dict[str, object] = {}
        #: Results of integrity checks that hold while no other writer has changed the database (see above).
        self.verified: dict[str, object] = {}
        #: (total_changes, data_version) as this connection's last transaction committed them.
        self._committed: tuple[int, int] | None = None

    def before_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` just before the current transaction commits (at once when none is open)."""
        if self.conn.in_transaction:
            self._before_commit.append(callback)
        else:
            callback()

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` after the current transaction commits (at once when none is open)."""
        if self.conn.in_transaction:
            self._after_commit.append(callback)
        else:
            callback()

    @contextlib.contextmanager
    def atomic(self) -> Generator[StudioDatabase, None, None]:
        if self.conn.in_transaction:
            pending, staged = len(self._after_commit), len(self._before_commit)
            try:
                with super().atomic():
                    yield self
            except BaseException:
                del self._after_commit[pending:]
                del self._before_commit[staged:]
                raise
            return
        self._begin_immediate()
        self.transaction_state = {}
        if self._committed != self._write_mark():
            self.verified.clear()
        try:
            yield self
            ready, self._before_commit = self._before_commit, []
            for callback in ready:
                callback()
            # Read under the write lock: no other connection can commit between this and COMMIT.
            mark = self._write_mark()
            self.conn.execute("COMMIT")
            self._committed = mark
        except BaseException:
            self._after_commit.clear()
            self._before_commit.clear()
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            callback()

    def _write_mark(self) -> tuple[int, int]:
        """This connection's count of changed rows and SQLite's count of other connections' commits."""
        return self.conn.total_changes, self.conn.execute("PRAGMA data_version").fetchone()[0]

    def _begin_immediate(self) -> None:
        for attempt in range(WRITE_ATTEMPTS):
            try:
                self.conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if _is_unwritable(exc):
                    raise StateError(f"{_file_of(self)}: cannot write the studio database ({exc})") from None
                if not _is_busy(exc):
                    raise
                time.sleep(0.05 * (attempt + 1))
        raise StateError(
            f"{_file_of(self)}: the database stayed locked by another studio process for over "
            f"{BUSY_TIMEOUT_S * WRITE_ATTEMPTS:.0f} s; nothing was written, try again"
        )


def _file_of(db: sqlite_utils.Database) -> str:
    for row in db.conn.execute("PRAGMA database_list"):
        if row[1] == "main":
            return str(row[2] or ":memory:")
    return "the database"


def _connect(path: Path | str) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, check_same_thread=False, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    conn.execute("PRAGMA foreign_keys = ON")
    if str(path) != ":memory:":
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
    return conn


def open_database(path: Path | str) -> StudioDatabase:
    """Open (creating if needed) and migrate the database at ``path``.

    Raises :class:`StateError` when the file was written by a newer version of the studio (it has migrations this
    version does not know, or a higher ``user_version``), is not a SQLite database, or cannot be written.
    """
    conn: sqlite3.Connection | None = None
    try:
        conn = _connect(path)
        db = StudioDatabase(conn)
        _migrate(db, path)
    except sqlite3.OperationalError as exc:
        _close(conn)
        if _is_unwritable(exc):
            folder = Path(path).parent
            raise StateError(
                f"{path}: cannot open the studio database for writing ({exc}); make sure {folder} is writable "
                "or point STUDIO_HOME at a writable folder"
            ) from None
        raise StateError(f"{path}: not a usable studio database ({exc})") from None
    except sqlite3.DatabaseError as exc:
        _close(conn)
        raise StateError(f"{path}: not a usable studio database ({exc})") from None
    except StateError:
        _close(conn)
        raise
    return db


def _close(conn: sqlite3.Connection | None) -> None:
    if conn is not None:
        conn.close()


def _migrate(db: StudioDatabase, path: Path | str) -> None:
    known = ordered_migrations()
    _refuse_newer(db, path, [name for name, _ in known])
    for name, func in known:
        if name in _applied(db):
            continue
        with db.atomic():
            # Another process may have applied it while this one waited for the write lock.
            if name in _applied(db):
                continue
            func(db)
            db.table(MIGRATIONS_TABLE).insert({"name": name, "applied_utc": datetime.now(UTC).isoformat()})
    applied = len(_applied(db))
    if _user_version(db) != applied:
        with db.atomic():
            db.execute(f"PRAGMA user_version = {applied}")


def _refuse_newer(db: StudioDatabase, path: Path | str, known: list[str]) -> None:
    unknown = sorted(set(_applied(db)) - set(known))
    if unknown:
        raise StateError(
            f"{path}: written by a newer CoSA Studio (unknown migrations: {', '.join(unknown)}); "
            "upgrade the studio to open it"
        )
    version = _user_version(db)
    if version > len(known):
        raise StateError(
            f"{path}: written by a newer CoSA Studio (schema version {version}, this one knows {len(known)}); "
            "upgrade the studio to open it"
        )


def _user_version(db: sqlite_utils.Database) -> int:
    return int(db.conn.execute("PRAGMA user_version").fetchone()[0])


def _applied(db: sqlite_utils.Database) -> list[str]:
    db.execute(f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (name TEXT PRIMARY KEY, applied_utc TEXT)")
    return [row[0] for row in db.execute(f"SELECT name FROM {MIGRATIONS_TABLE}").fetchall()]
