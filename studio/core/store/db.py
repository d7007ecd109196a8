"""Opening the studio database: WAL, foreign keys, migrations, and refusal of newer databases."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import sqlite_utils

from studio.core.errors import StateError
from studio.core.store.migrations import ordered_migrations

MIGRATIONS_TABLE = "_migrations"


def _connect(path: Path | str) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), timeout=30.0, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA foreign_keys = ON")
    if str(path) != ":memory:":
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA busy_timeout = 30000")
    return conn


def open_database(path: Path | str) -> sqlite_utils.Database:
    """Open (creating if needed) and migrate the database at ``path``.

    Raises :class:`StateError` when the file was written by a newer version of the studio (it has migrations this
    version does not know), or is not a SQLite database.
    """
    try:
        conn = _connect(path)
        db = sqlite_utils.Database(conn)
        applied = _applied(db)
    except sqlite3.DatabaseError as exc:
        raise StateError(f"{path}: not a usable studio database ({exc})") from exc
    known = [name for name, _ in ordered_migrations()]
    unknown = sorted(set(applied) - set(known))
    if unknown:
        conn.close()
        raise StateError(
            f"{path}: written by a newer CoSA Studio (unknown migrations: {', '.join(unknown)}); "
            "upgrade the studio to open it"
        )
    for name, func in ordered_migrations():
        if name in applied:
            continue
        with db.atomic():
            func(db)
            db.table(MIGRATIONS_TABLE).insert({"name": name, "applied_utc": datetime.now(UTC).isoformat()})
    return db


def _applied(db: sqlite_utils.Database) -> list[str]:
    if MIGRATIONS_TABLE not in db.table_names():
        db.table(MIGRATIONS_TABLE).create({"name": str, "applied_utc": str}, pk="name")
    return [row["name"] for row in db.table(MIGRATIONS_TABLE).rows]
