"""Unsaved editor text, written every few seconds so that it survives a crash.

A draft is keyed by the editor slot it belongs to: ``config:<id>`` for a stored config, ``new:<token>`` for a
config that was never saved. ``base_json`` keeps the config document the text was being edited from, so a draft of
a never-saved config can be restored with its kind, categories and template. Saving a config discards its draft;
a draft still present at start-up is offered back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlite_utils

from studio.core.store.migrations import migration

TABLE = "drafts"


@migration("0021_drafts")
def _create_drafts(db: sqlite_utils.Database) -> None:
    db.table(TABLE).create(
        {
            "key": str,
            "config_id": str,
            "base_version": int,
            "base_json": str,
            "title": str,
            "text": str,
            "updated_utc": str,
        },
        pk="key",
        not_null={"title", "text", "updated_utc"},
    )


@dataclass(frozen=True)
class Draft:
    key: str
    config_id: str | None
    base_version: int | None
    base_json: str | None
    title: str
    text: str
    updated_utc: datetime


def draft_key(config_id: str | None, token: str) -> str:
    """The draft slot of a stored config, or of a new one identified by ``token``."""
    return f"config:{config_id}" if config_id else f"new:{token}"


def _row_to_draft(row: dict[str, Any]) -> Draft:
    return Draft(
        key=row["key"],
        config_id=row["config_id"],
        base_version=row["base_version"],
        base_json=row["base_json"],
        title=row["title"],
        text=row["text"],
        updated_utc=datetime.fromisoformat(row["updated_utc"]),
    )


class DraftRepo:
    """Autosaved editor drafts."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self._db = db

    def put(
        self,
        key: str,
        *,
        text: str,
        title: str,
        config_id: str | None = None,
        base_version: int | None = None,
        base_json: str | None = None,
    ) -> Draft:
        """Create or replace the draft in slot ``key``."""
        row = {
            "key": key,
            "config_id": config_id,
            "base_version": base_version,
            "base_json": base_json,
            "title": title,
            "text": text,
            "updated_utc": datetime.now(UTC).isoformat(timespec="milliseconds"),
        }
        with self._db.atomic():
            self._db.table(TABLE).upsert(row, pk="key")
        return _row_to_draft(row)

    def get(self, key: str) -> Draft | None:
        rows = list(self._db.query(f"SELECT * FROM {TABLE} WHERE key = ?", [key]))
        return _row_to_draft(rows[0]) if rows else None

    def discard(self, key: str) -> None:
        with self._db.atomic():
            self._db.execute(f"DELETE FROM {TABLE} WHERE key = ?", [key])

    def list(self) -> list[Draft]:
        """All drafts, newest first."""
        return [_row_to_draft(r) for r in self._db.query(f"SELECT * FROM {TABLE} ORDER BY updated_utc DESC")]
