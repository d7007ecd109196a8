"""Registered model files and the cache of their sha256 digests."""

from __future__ import annotations

from typing import Any

import sqlite_utils

from studio.core.store.migrations import migration

MODELS_TABLE = "models"
HASHES_TABLE = "model_file_hashes"


@migration("0010_models")
def _create_models(db: sqlite_utils.Database) -> None:
    db.execute(
        f"""CREATE TABLE {MODELS_TABLE} (
            name TEXT PRIMARY KEY,
            path TEXT NOT NULL UNIQUE,
            sha256 TEXT NOT NULL,
            architecture TEXT NOT NULL,
            quant TEXT,
            size_bytes INTEGER NOT NULL,
            context_length INTEGER,
            has_chat_template INTEGER NOT NULL,
            source TEXT NOT NULL,
            is_default INTEGER NOT NULL DEFAULT 0,
            added_utc TEXT NOT NULL
        )"""
    )
    db.execute(f"CREATE UNIQUE INDEX {MODELS_TABLE}_one_default ON {MODELS_TABLE} (is_default) WHERE is_default = 1")
    db.execute(
        f"""CREATE TABLE {HASHES_TABLE} (
            path TEXT PRIMARY KEY,
            size_bytes INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            sha256 TEXT NOT NULL
        )"""
    )


def model_rows(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    return list(db.query(f"SELECT * FROM {MODELS_TABLE} ORDER BY added_utc, rowid"))


def model_row(db: sqlite_utils.Database, name: str) -> dict[str, Any] | None:
    rows = list(db.query(f"SELECT * FROM {MODELS_TABLE} WHERE name = ?", [name]))
    return rows[0] if rows else None


def model_row_by_path(db: sqlite_utils.Database, path: str) -> dict[str, Any] | None:
    rows = list(db.query(f"SELECT * FROM {MODELS_TABLE} WHERE path = ?", [path]))
    return rows[0] if rows else None


def model_rows_by_sha256(db: sqlite_utils.Database, sha256: str) -> list[dict[str, Any]]:
    """Entries of one file content: the default first, then the oldest (older databases may hold duplicates)."""
    return list(
        db.query(f"SELECT * FROM {MODELS_TABLE} WHERE sha256 = ? ORDER BY is_default DESC, added_utc, rowid", [sha256])
    )


def update_model_path(db: sqlite_utils.Database, name: str, path: str) -> None:
    with db.atomic():
        db.execute(f"UPDATE {MODELS_TABLE} SET path = ? WHERE name = ?", [path, name])


def default_model_row(db: sqlite_utils.Database) -> dict[str, Any] | None:
    rows = list(db.query(f"SELECT * FROM {MODELS_TABLE} WHERE is_default = 1"))
    return rows[0] if rows else None


def insert_model(db: sqlite_utils.Database, row: dict[str, Any], *, make_default: bool) -> None:
    """Insert a model row; with ``make_default`` it becomes the only default."""
    with db.atomic():
        if make_default:
            db.execute(f"UPDATE {MODELS_TABLE} SET is_default = 0 WHERE is_default = 1")
        db.execute(
            f"""INSERT INTO {MODELS_TABLE} (name, path, sha256, architecture, quant, size_bytes, context_length,
                has_chat_template, source, is_default, added_utc)
                VALUES (:name, :path, :sha256, :architecture, :quant, :size_bytes, :context_length,
                :has_chat_template, :source, :is_default, :added_utc)""",
            {**row, "is_default": int(make_default)},
        )


def delete_model(db: sqlite_utils.Database, name: str) -> None:
    with db.atomic():
        db.execute(f"DELETE FROM {MODELS_TABLE} WHERE name = ?", [name])


def set_default_model(db: sqlite_utils.Database, name: str) -> None:
    with db.atomic():
        db.execute(f"UPDATE {MODELS_TABLE} SET is_default = 0 WHERE is_default = 1")
        db.execute(f"UPDATE {MODELS_TABLE} SET is_default = 1 WHERE name = ?", [name])


def cached_sha256(db: sqlite_utils.Database, path: str, size_bytes: int, mtime_ns: int) -> str | None:
    rows = list(
        db.query(
            f"SELECT sha256 FROM {HASHES_TABLE} WHERE path = ? AND size_bytes = ? AND mtime_ns = ?",
            [path, size_bytes, mtime_ns],
        )
    )
    return str(rows[0]["sha256"]) if rows else None


def store_sha256(db: sqlite_utils.Database, path: str, size_bytes: int, mtime_ns: int, sha256: str) -> None:
    with db.atomic():
        db.execute(
            f"""INSERT INTO {HASHES_TABLE} (path, size_bytes, mtime_ns, sha256) VALUES (?, ?, ?, ?)
                ON CONFLICT(path) DO UPDATE SET size_bytes = excluded.size_bytes, mtime_ns = excluded.mtime_ns,
                sha256 = excluded.sha256""",
            [path, size_bytes, mtime_ns, sha256],
        )
