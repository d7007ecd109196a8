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


class ModelRepo:
    """Rows of registered model files and cached file digests; the rules live in ``inference.registry``."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db

    def rows(self) -> list[dict[str, Any]]:
        return list(self.db.query(f"SELECT * FROM {MODELS_TABLE} ORDER BY added_utc, rowid"))

    def row(self, name: str) -> dict[str, Any] | None:
        rows = list(self.db.query(f"SELECT * FROM {MODELS_TABLE} WHERE name = ?", [name]))
        return rows[0] if rows else None

    def row_by_path(self, path: str) -> dict[str, Any] | None:
        rows = list(self.db.query(f"SELECT * FROM {MODELS_TABLE} WHERE path = ?", [path]))
        return rows[0] if rows else None

    def rows_by_sha256(self, sha256: str) -> list[dict[str, Any]]:
        """Entries of one file content: the default first, then the oldest (older databases may hold duplicates)."""
        return list(
            self.db.query(
                f"SELECT * FROM {MODELS_TABLE} WHERE sha256 = ? ORDER BY is_default DESC, added_utc, rowid", [sha256]
            )
        )

    def update_path(self, name: str, path: str) -> None:
        with self.db.atomic():
            self.db.execute(f"UPDATE {MODELS_TABLE} SET path = ? WHERE name = ?", [path, name])

    def default_row(self) -> dict[str, Any] | None:
        rows = list(self.db.query(f"SELECT * FROM {MODELS_TABLE} WHERE is_default = 1"))
        return rows[0] if rows else None

    def insert(self, row: dict[str, Any], *, make_default: bool) -> None:
        """Insert a model row; with ``make_default`` it becomes the only default."""
        with self.db.atomic():
            if make_default:
                self.db.execute(f"UPDATE {MODELS_TABLE} SET is_default = 0 WHERE is_default = 1")
            self.db.execute(
                f"""INSERT INTO {MODELS_TABLE} (name, path, sha256, architecture, quant, size_bytes, context_length,
                    has_chat_template, source, is_default, added_utc)
                    VALUES (:name, :path, :sha256, :architecture, :quant, :size_bytes, :context_length,
                    :has_chat_template, :source, :is_default, :added_utc)""",
                {**row, "is_default": int(make_default)},
            )

    def delete(self, name: str) -> None:
        with self.db.atomic():
            self.db.execute(f"DELETE FROM {MODELS_TABLE} WHERE name = ?", [name])

    def set_default(self, name: str) -> None:
        with self.db.atomic():
            self.db.execute(f"UPDATE {MODELS_TABLE} SET is_default = 0 WHERE is_default = 1")
            self.db.execute(f"UPDATE {MODELS_TABLE} SET is_default = 1 WHERE name = ?", [name])

    def cached_sha256(self, path: str, size_bytes: int, mtime_ns: int) -> str | None:
        rows = list(
            self.db.query(
                f"SELECT sha256 FROM {HASHES_TABLE} WHERE path = ? AND size_bytes = ? AND mtime_ns = ?",
                [path, size_bytes, mtime_ns],
            )
        )
        return str(rows[0]["sha256"]) if rows else None

    def store_sha256(self, path: str, size_bytes: int, mtime_ns: int, sha256: str) -> None:
        with self.db.atomic():
            self.db.execute(
                f"""INSERT INTO {HASHES_TABLE} (path, size_bytes, mtime_ns, sha256) VALUES (?, ?, ?, ?)
                    ON CONFLICT(path) DO UPDATE SET size_bytes = excluded.size_bytes, mtime_ns = excluded.mtime_ns,
                    sha256 = excluded.sha256""",
                [path, size_bytes, mtime_ns, sha256],
            )
