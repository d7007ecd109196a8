"""Approval records: who approved which config version, under which gate, on which evidence."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from studio.core.errors import NotFoundError
from studio.core.store.migrations import migration


@migration("0041_approvals")
def _create_approvals(db: sqlite_utils.Database) -> None:
    db.execute(
        """CREATE TABLE approvals (
            config_id TEXT NOT NULL,
            version INTEGER NOT NULL,
            author TEXT NOT NULL,
            reviewer TEXT NOT NULL,
            approved_utc TEXT NOT NULL,
            single_person INTEGER NOT NULL,
            run_id TEXT NOT NULL,
            gate TEXT NOT NULL,
            evidence TEXT NOT NULL,
            comment TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (config_id, version),
            FOREIGN KEY (config_id, version) REFERENCES config_versions(config_id, version)
        )"""
    )


@dataclass(frozen=True)
class ApprovalRecord:
    config_id: str
    version: int
    author: str
    reviewer: str
    approved_utc: str
    single_person: bool
    run_id: str
    gate: dict[str, Any]
    evidence: dict[str, Any]
    comment: str


class ApprovalRepo:
    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db

    def add(self, record: ApprovalRecord) -> None:
        self.db.execute(
            "INSERT INTO approvals (config_id, version, author, reviewer, approved_utc, single_person, run_id, gate, "
            "evidence, comment) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                record.config_id,
                record.version,
                record.author,
                record.reviewer,
                record.approved_utc,
                int(record.single_person),
                record.run_id,
                json.dumps(record.gate, sort_keys=True),
                json.dumps(record.evidence, sort_keys=True),
                record.comment,
            ],
        )

    def get(self, config_id: str, version: int) -> ApprovalRecord:
        rows = list(self.db.query("SELECT * FROM approvals WHERE config_id = ? AND version = ?", [config_id, version]))
        if not rows:
            raise NotFoundError(f"config {config_id!r} version {version} has no approval record")
        row = rows[0]
        return ApprovalRecord(
            config_id=row["config_id"],
            version=row["version"],
            author=row["author"],
            reviewer=row["reviewer"],
            approved_utc=row["approved_utc"],
            single_person=bool(row["single_person"]),
            run_id=row["run_id"],
            gate=json.loads(row["gate"]),
            evidence=json.loads(row["evidence"]),
            comment=row["comment"],
        )
