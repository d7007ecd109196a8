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


def endpoint_rows(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    return list(db.query(f"SELECT * FROM {ENDPOINTS_TABLE} ORDER BY added_utc, rowid"))


def endpoint_row(db: sqlite_utils.Database, name: str) -> dict[str, Any] | None:
    rows = list(db.query(f"SELECT * FROM {ENDPOINTS_TABLE} WHERE name = ?", [name]))
    return rows[0] if rows else None


def insert_endpoint(db: sqlite_utils.Database, row: dict[str, Any]) -> None:
    with db.atomic():
        db.execute(
            f"""INSERT INTO {ENDPOINTS_TABLE} (name, base_url, model_id, api_key_env, key_in_keyring, concurrency,
                timeout_s, added_utc)
                VALUES (:name, :base_url, :model_id, :api_key_env, :key_in_keyring, :concurrency, :timeout_s,
                :added_utc)""",
            row,
        )


def update_endpoint(db: sqlite_utils.Database, name: str, **values: Any) -> None:
    """Change some columns of one endpoint (the column names come from code, never from users)."""
    columns = ", ".join(f"{column} = :{column}" for column in values)
    with db.atomic():
        db.execute(f"UPDATE {ENDPOINTS_TABLE} SET {columns} WHERE name = :name", {**values, "name": name})


def delete_endpoint(db: sqlite_utils.Database, name: str) -> None:
    with db.atomic():
        db.execute(f"DELETE FROM {ENDPOINTS_TABLE} WHERE name = ?", [name])
