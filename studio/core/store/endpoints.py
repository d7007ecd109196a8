"""Registered model servers (OpenAI-compatible endpoints). API keys are never stored here: a row says only where the
key is found (a named environment variable, or the OS keyring under the endpoint's name)."""

from __future__ import annotations

from typing import Any

import sqlite_utils

from studio.core.store.migrations import migration

ENDPOINTS_TABLE = "endpoints"


@migration("0011_endpoints")
def _create_endpoints(db: sqlite_utils.Database) -> None:
    db.execute(
        f"""CREATE TABLE {ENDPOINTS_TABLE} (
            name TEXT PRIMARY KEY,
            base_url TEXT NOT NULL,
            model_id TEXT NOT NULL,
            api_key_env TEXT,
            key_in_keyring INTEGER NOT NULL DEFAULT 0,
            concurrency INTEGER NOT NULL DEFAULT 4,
            timeout_s REAL NOT NULL DEFAULT 120,
            added_utc TEXT NOT NULL
        )"""
    )


class EndpointRepo:
    """Rows of registered endpoints; the rules (validation, keys) live in ``inference.endpoints``."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db

    def rows(self) -> list[dict[str, Any]]:
        return list(self.db.query(f"SELECT * FROM {ENDPOINTS_TABLE} ORDER BY added_utc, rowid"))

    def row(self, name: str) -> dict[str, Any] | None:
        rows = list(self.db.query(f"SELECT * FROM {ENDPOINTS_TABLE} WHERE name = ?", [name]))
        return rows[0] if rows else None

    def insert(self, row: dict[str, Any]) -> None:
        with self.db.atomic():
            self.db.execute(
                f"""INSERT INTO {ENDPOINTS_TABLE} (name, base_url, model_id, api_key_env, key_in_keyring, concurrency,
                    timeout_s, added_utc)
                    VALUES (:name, :base_url, :model_id, :api_key_env, :key_in_keyring, :concurrency, :timeout_s,
                    :added_utc)""",
                row,
            )

    def update(self, name: str, **values: Any) -> None:
        """Change some columns of one endpoint (the column names come from code, never from users)."""
        columns = ", ".join(f"{column} = :{column}" for column in values)
        with self.db.atomic():
            self.db.execute(f"UPDATE {ENDPOINTS_TABLE} SET {columns} WHERE name = :name", {**values, "name": name})

    def delete(self, name: str) -> None:
        with self.db.atomic():
            self.db.execute(f"DELETE FROM {ENDPOINTS_TABLE} WHERE name = ?", [name])
