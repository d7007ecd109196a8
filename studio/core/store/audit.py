"""The append-only, hash-chained audit log.

Every row stores the hash of the row before it and its own hash over its content and that link, so editing or
deleting any row breaks the chain. Triggers refuse UPDATE and DELETE through SQLite; the chain catches changes made
around them (a dropped trigger, an edited file). The newest (seq, hash) is also written to a head file beside the
database so that removing rows from the end is detected too.

The head file is signed by the identity that made the write (see :mod:`studio.core.identity`), so recomputing
the chain after rewriting, reordering or deleting rows does not help without a trusted private key. Every write path
appends through :meth:`AuditLog.append`; the head is advanced once the transaction commits (never ahead of the
table), under a file lock so that concurrent processes only ever move it forward. A log with rows and no head file
fails verification: deleting the head must not switch the check off.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from studio.core import identity as ids
from studio.core.fileio import atomic_write_text
from studio.core.store.migrations import migration

GENESIS = "0" * 64
HEAD_FORMAT = "cosa-studio/audit-head/v1"
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


@dataclass(frozen=True)
class Head:
    seq: int
    hash: str
    signer: str


class AuditLog:
    """Append and verify.

    The head file lives beside the database file (``<db>.audit-head``); an in-memory database has none.
    """

    def __init__(self, db: sqlite_utils.Database, home: Path | None = None) -> None:
        self._db = db
        self._home = home
        self._head_path = head_path_for(db)

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
        signer = ids.acting_identity(self._home) if self._head_path is not None else None
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
            if signer is not None:
                # Written once the caller's outermost transaction commits, so a rollback never leaves the head
                # ahead of the table.
                _after_commit(self._db, lambda: self._advance_head(seq, digest, signer))
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
        """Recompute the chain and check it against the signed head; an empty list means the log is intact."""
        problems: list[AuditProblem] = []
        prev = GENESIS
        expected_seq = 1
        hashes: dict[int, str] = {}
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
            hashes[seq] = row["hash"]
        problems.extend(self._check_head(hashes))
        return problems

    def head(self) -> Head | None:
        """The signed head as recorded (None when there is no usable head file)."""
        data = self._read_head()
        if not isinstance(data, dict):
            return None
        signer = data.get("signer")
        key = signer.get("key_id") if isinstance(signer, dict) else None
        try:
            return Head(int(data["seq"]), str(data["hash"]), str(key))
        except (KeyError, TypeError, ValueError):
            return None

    def _check_head(self, hashes: dict[int, str]) -> list[AuditProblem]:
        if self._head_path is None:
            return []
        last_seq = max(hashes, default=0)
        data = self._read_head()
        if data is None:
            if last_seq == 0:
                return []
            return [
                AuditProblem(
                    None,
                    f"the head file {self._head_path} is missing, so removed or rewritten rows cannot be detected "
                    "(restore it from a backup)",
                )
            ]
        problem = self._head_signature_problem(data)
        if problem:
            return [AuditProblem(None, f"the head file {self._head_path} {problem}")]
        head = self.head()
        if head is None:
            return [AuditProblem(None, f"the head file {self._head_path} is unreadable")]
        if head.seq > last_seq:
            return [
                AuditProblem(
                    None,
                    f"the log ends at row {last_seq} but the signed head records row {head.seq} "
                    "(rows were removed from the end)",
                )
            ]
        if hashes.get(head.seq) != head.hash:
            return [AuditProblem(head.seq, "row differs from the signed head (rows were rewritten or reordered)")]
        if head.seq < last_seq:
            return [
                AuditProblem(
                    None,
                    f"rows {head.seq + 1}..{last_seq} come after the signed head (added by hand, or written by a "
                    "process that stopped before signing; check them with `studio audit log`)",
                )
            ]
        return []

    def _head_signature_problem(self, data: object) -> str | None:
        if not isinstance(data, dict) or data.get("format") != HEAD_FORMAT:
            return "is not a signed audit head"
        signer = data.get("signer")
        public = ids.public_key_from_b64(signer.get("public_key")) if isinstance(signer, dict) else None
        if public is None or not ids.signature_valid(public, data.get("signature"), ids.canonical_bytes(data)):
            return "was altered (its signature does not match)"
        if ids.key_id(public) not in ids.trusted_keys(self._home):
            return f"is signed by key {ids.key_id(public)}, which is not a trusted identity here"
        return None

    def _advance_head(self, seq: int, digest: str, signer: ids.Identity) -> None:
        """Move the head forward to (seq, digest); a head already further along is left alone."""
        assert self._head_path is not None
        lock_path = self._head_path.with_name(self._head_path.name + ".lock")
        with _locked(lock_path):
            current = self.head()
            if current is not None and current.seq >= seq:
                return
            document = signer.sign({"format": HEAD_FORMAT, "seq": seq, "hash": digest})
            atomic_write_text(self._head_path, json.dumps(document, sort_keys=True) + "\n")

    def _read_head(self) -> object:
        if self._head_path is None or not self._head_path.is_file():
            return None
        try:
            return json.loads(self._head_path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            return "unreadable"


def _after_commit(db: sqlite_utils.Database, callback: Any) -> None:
    register = getattr(db, "after_commit", None)
    if register is not None:
        register(callback)
    else:
        callback()


@contextlib.contextmanager
def _locked(path: Path) -> Any:
    """An exclusive advisory lock on ``path`` (POSIX); elsewhere, no lock."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - non-POSIX
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
