"""The append-only, hash-chained audit log.

Every row stores the hash of the row before it and its own hash over its content and that link, so editing or
deleting any row breaks the chain. Triggers refuse UPDATE and DELETE through SQLite; the chain catches changes made
around them (a dropped trigger, an edited file). The newest (seq, hash) is also written to a head file beside the
database so that removing rows from the end is detected too.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from studio.core.fileio import atomic_write_text
from studio.core.store.migrations import migration

GENESIS = "0" * 64
TABLE = "audit_log"


@migration("0040_audit_log")
def _create_audit_log(db: sqlite_utils.Database) -> None:
    db.execute(
        f"""CREATE TABLE {TABLE} (
            seq INTEGER PRIMARY KEY,
            utc TEXT NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            subject TEXT NOT NULL,
            version INTEGER,
            details TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL UNIQUE
        )"""
    )
    db.execute(
        f"CREATE TRIGGER {TABLE}_no_update BEFORE UPDATE ON {TABLE} "
        "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END"
    )
    db.execute(
        f"CREATE TRIGGER {TABLE}_no_delete BEFORE DELETE ON {TABLE} "
        "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END"
    )


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    utc: str
    actor: str
    action: str
    subject: str
    version: int | None
    details: dict[str, Any]
    prev_hash: str
    hash: str


def entry_hash(
    prev_hash: str, seq: int, utc: str, actor: str, action: str, subject: str, version: int | None, details: str
) -> str:
    payload = json.dumps(
        [prev_hash, seq, utc, actor, action, subject, version, details], ensure_ascii=False, separators=(",", ":")
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def head_path_for(db: sqlite_utils.Database) -> Path | None:
    """``<database file>.audit-head``, or None for an in-memory database."""
    for row in db.query("PRAGMA database_list"):
        if row["name"] == "main" and row["file"]:
            file = Path(row["file"])
            return file.with_name(file.name + ".audit-head")
    return None


@dataclass(frozen=True)
class AuditProblem:
    seq: int | None
    message: str


class AuditLog:
    """Append and verify.

    The head file lives beside the database file (``<db>.audit-head``); an in-memory database has none.
    """

    def __init__(self, db: sqlite_utils.Database) -> None:
        self._db = db
        self._head_path = head_path_for(db)
        self._pending_head: tuple[int, str] | None = None

    def flush_head(self) -> None:
        """Record the newest row in the head file after the caller's transaction committed."""
        if self._pending_head is not None and not self._db.conn.in_transaction:
            self._write_head(*self._pending_head)
            self._pending_head = None

    def append(
        self,
        actor: str,
        action: str,
        subject: str,
        version: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> AuditEntry:
        details_text = json.dumps(details or {}, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        utc = datetime.now(UTC).isoformat(timespec="microseconds")
        with self._db.atomic():
            last = list(self._db.query(f"SELECT seq, hash FROM {TABLE} ORDER BY seq DESC LIMIT 1"))
            seq = last[0]["seq"] + 1 if last else 1
            prev = last[0]["hash"] if last else GENESIS
            digest = entry_hash(prev, seq, utc, actor, action, subject, version, details_text)
            self._db.execute(
                f"INSERT INTO {TABLE} (seq, utc, actor, action, subject, version, details, prev_hash, hash) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [seq, utc, actor, action, subject, version, details_text, prev, digest],
            )
        if self._db.conn.in_transaction:
            # Inside a caller's transaction: the head is written by flush_head() once that transaction commits,
            # so a rollback can never leave the head ahead of the table.
            self._pending_head = (seq, digest)
        else:
            self._write_head(seq, digest)
        return AuditEntry(seq, utc, actor, action, subject, version, details or {}, prev, digest)

    def entries(self, subject: str | None = None) -> list[AuditEntry]:
        sql = f"SELECT * FROM {TABLE}"
        params: list[Any] = []
        if subject is not None:
            sql += " WHERE subject = ?"
            params.append(subject)
        sql += " ORDER BY seq"
        return [
            AuditEntry(
                row["seq"],
                row["utc"],
                row["actor"],
                row["action"],
                row["subject"],
                row["version"],
                json.loads(row["details"]),
                row["prev_hash"],
                row["hash"],
            )
            for row in self._db.query(sql, params)
        ]

    def verify(self) -> list[AuditProblem]:
        """Recompute the chain; an empty list means the log is intact."""
        problems: list[AuditProblem] = []
        prev = GENESIS
        expected_seq = 1
        last_seq, last_hash = 0, GENESIS
        for row in self._db.query(f"SELECT * FROM {TABLE} ORDER BY seq"):
            seq = row["seq"]
            if seq != expected_seq:
                problems.append(AuditProblem(seq, f"rows {expected_seq}..{seq - 1} are missing"))
            if row["prev_hash"] != prev:
                problems.append(AuditProblem(seq, "link to the previous row is broken (a row was removed or edited)"))
            digest = entry_hash(
                row["prev_hash"],
                seq,
                row["utc"],
                row["actor"],
                row["action"],
                row["subject"],
                row["version"],
                row["details"],
            )
            if digest != row["hash"]:
                problems.append(AuditProblem(seq, "content does not match its hash (the row was edited)"))
            prev = row["hash"]
            expected_seq = seq + 1
            last_seq, last_hash = seq, row["hash"]
        head = self._read_head()
        if head is not None and not self._head_consistent(head, last_seq, last_hash):
            problems.append(
                AuditProblem(
                    None,
                    f"the log ends at row {last_seq} but the head file records row {head[0]} "
                    "(rows were removed from the end or the head was altered)",
                )
            )
        return problems

    def _head_consistent(self, head: tuple[int, str], last_seq: int, last_hash: str) -> bool:
        """The head may lag the table by rows appended just before a crash, never lead it."""
        seq, digest = head
        if seq == last_seq:
            return digest == last_hash
        if 0 < seq < last_seq:
            rows = list(self._db.query(f"SELECT hash FROM {TABLE} WHERE seq = ?", [seq]))
            return bool(rows) and rows[0]["hash"] == digest
        return False

    def _write_head(self, seq: int, digest: str) -> None:
        if self._head_path is None:
            return
        atomic_write_text(self._head_path, f"{seq} {digest}\n")

    def _read_head(self) -> tuple[int, str] | None:
        if self._head_path is None or not self._head_path.is_file():
            return None
        try:
            seq_text, digest = self._head_path.read_text(encoding="utf-8").split()
            return int(seq_text), digest
        except ValueError:
            return (-1, "unreadable head file")
