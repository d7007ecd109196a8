"""Probe exchanges: one prompt sent under one config version to one model, with its reply and timings.

Every reply produced in the probe pane is stored, so it can be listed again after a restart and marked by a person
as following, violating or partially following the config.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlite_utils

from studio.core.errors import InputError, NotFoundError
from studio.core.generation import GenerationParams, GenerationResult
from studio.core.store.migrations import migration

TABLE = "exchanges"


class Verdict(StrEnum):
    """A person's judgement of one reply against the config it was produced under."""

    FOLLOWS = "follows"
    VIOLATES = "violates"
    PARTIALLY = "partially"


@migration("0020_exchanges")
def _create_exchanges(db: sqlite_utils.Database) -> None:
    db.table(TABLE).create(
        {
            "id": int,
            "config_id": str,
            "config_version": int,
            "config_hash": str,
            "model_name": str,
            "model_sha256": str,
            "prompt": str,
            "reply": str,
            "params_json": str,
            "prompt_tokens": int,
            "completion_tokens": int,
            "cached_tokens": int,
            "ttft_s": float,
            "tokens_per_s": float,
            "total_s": float,
            "stop_reason": str,
            "verdict": str,
            "created_utc": str,
        },
        pk="id",
        not_null={"config_hash", "model_name", "prompt", "reply", "params_json", "stop_reason", "created_utc"},
    )
    db.table(TABLE).create_index(["config_id", "config_version"], index_name="exchanges_by_config")
    db.table(TABLE).create_index(["created_utc"], index_name="exchanges_by_time")


@migration("0022_exchange_config_text")
def _add_config_text(db: sqlite_utils.Database) -> None:
    """Keep the system text itself, so a probe of unsaved edits (no version) can still be traced."""
    db.table(TABLE).add_column("config_text", str)


@dataclass(frozen=True)
class Exchange:
    """One stored probe exchange."""

    id: int
    config_id: str | None
    config_version: int | None
    config_hash: str
    model_name: str
    model_sha256: str | None
    prompt: str
    reply: str
    params: dict[str, Any]
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    ttft_s: float | None
    tokens_per_s: float | None
    total_s: float
    stop_reason: str
    verdict: Verdict | None
    created_utc: datetime
    config_text: str | None = None


def _row_to_exchange(row: dict[str, Any]) -> Exchange:
    verdict = row["verdict"]
    return Exchange(
        id=int(row["id"]),
        config_id=row["config_id"],
        config_version=row["config_version"],
        config_hash=row["config_hash"],
        model_name=row["model_name"],
        model_sha256=row["model_sha256"],
        prompt=row["prompt"],
        reply=row["reply"],
        params=json.loads(row["params_json"]),
        prompt_tokens=int(row["prompt_tokens"] or 0),
        completion_tokens=int(row["completion_tokens"] or 0),
        cached_tokens=int(row["cached_tokens"] or 0),
        ttft_s=row["ttft_s"],
        tokens_per_s=row["tokens_per_s"],
        total_s=float(row["total_s"] or 0.0),
        stop_reason=row["stop_reason"],
        verdict=Verdict(verdict) if verdict else None,
        created_utc=datetime.fromisoformat(row["created_utc"]),
        config_text=row.get("config_text"),
    )


class ExchangeRepo:
    """Stores and lists probe exchanges."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self._db = db

    def record(
        self,
        *,
        config_id: str | None,
        config_version: int | None,
        config_hash: str,
        model_name: str,
        model_sha256: str | None,
        prompt: str,
        params: GenerationParams,
        result: GenerationResult,
        config_text: str | None = None,
    ) -> Exchange:
        """Store the outcome of one generation and return it with its new id."""
        row: dict[str, Any] = {
            "config_id": config_id,
            "config_version": config_version,
            "config_hash": config_hash,
            "model_name": model_name,
            "model_sha256": model_sha256,
            "prompt": prompt,
            "reply": result.text,
            "params_json": json.dumps(params.as_record(), sort_keys=True),
            "prompt_tokens": result.prompt_tokens,
            "completion_tokens": result.completion_tokens,
            "cached_tokens": result.cached_tokens,
            "ttft_s": result.time_to_first_token_s,
            "tokens_per_s": result.decode_tokens_per_s,
            "total_s": result.total_s,
            "stop_reason": result.stop_reason.value,
            "verdict": None,
            "created_utc": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "config_text": config_text,
        }
        with self._db.atomic():
            table = self._db.table(TABLE)
            new_id = table.insert(row).last_rowid
        if new_id is None:
            raise RuntimeError("the exchange row was not stored")
        return self.get(new_id)

    def get(self, exchange_id: int) -> Exchange:
        rows = list(self._db.query(f"SELECT * FROM {TABLE} WHERE id = ?", [exchange_id]))
        if not rows:
            raise NotFoundError(f"no probe exchange with id {exchange_id}")
        return _row_to_exchange(rows[0])

    def mark(self, exchange_id: int, verdict: Verdict | str | None) -> Exchange:
        """Set (or with ``None`` clear) a person's verdict on an exchange."""
        if verdict is not None and not isinstance(verdict, Verdict):
            try:
                verdict = Verdict(verdict)
            except ValueError:
                choices = ", ".join(v.value for v in Verdict)
                raise InputError(None, f"unknown verdict {verdict!r} (expected {choices})", where="verdict") from None
        self.get(exchange_id)
        with self._db.atomic():
            self._db.execute(
                f"UPDATE {TABLE} SET verdict = ? WHERE id = ?",
                [verdict.value if verdict is not None else None, exchange_id],
            )
        return self.get(exchange_id)

    def list(self, config_id: str | None = None, limit: int = 500) -> list[Exchange]:
        """The most recent exchanges first, optionally only those of one config."""
        if config_id is None:
            rows = self._db.query(f"SELECT * FROM {TABLE} ORDER BY id DESC LIMIT ?", [limit])
        else:
            rows = self._db.query(
                f"SELECT * FROM {TABLE} WHERE config_id = ? ORDER BY id DESC LIMIT ?", [config_id, limit]
            )
        return [_row_to_exchange(row) for row in rows]

    def count(self) -> int:
        return int(self._db.execute(f"SELECT COUNT(*) FROM {TABLE}").fetchone()[0])
