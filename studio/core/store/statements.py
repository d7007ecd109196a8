"""Signed statements: every act that matters, signed by the identity that did it, over content hashes.

A statement is a small JSON document: ``kind`` (``version``, ``submit``, ``override``, ``approve``, ``reject``,
``retire``, ``run``), what it is about (config id and content sha256, a check run, or run, config and probe), the
act's own fields, the ``signer`` block and an Ed25519 ``signature`` over everything else
(:func:`studio.core.identity.canonical_bytes`). Statements refer to each other by
:func:`studio.core.identity.digest`. The table keeps them as signed; nothing that decides an approval is ever read
from an unsigned row, and every statement is checked again when it is read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlite_utils

from studio.core import identity as ids
from studio.core.documents import SafetyConfig
from studio.core.store.migrations import migration

FORMAT = "cosa-studio/statement/v1"
KINDS = ("version", "submit", "override", "approve", "reject", "retire", "run")


@migration("0042_signed_statements")
def _create_statements(db: sqlite_utils.Database) -> None:
    db.execute(
        """CREATE TABLE statements (
            digest TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            config_id TEXT,
            content_sha256 TEXT,
            run_id TEXT,
            probe_id TEXT,
            key_id TEXT NOT NULL,
            utc TEXT NOT NULL,
            body TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX statements_by_content ON statements(config_id, content_sha256, kind)")
    db.execute("CREATE INDEX statements_by_item ON statements(run_id, config_id, probe_id)")
    for event in ("UPDATE", "DELETE"):
        db.execute(
            f"CREATE TRIGGER statements_no_{event.lower()} BEFORE {event} ON statements "
            "BEGIN SELECT RAISE(ABORT, 'signed statements are never changed'); END"
        )


def make_statement(signer: ids.Identity, kind: str, **fields: Any) -> dict[str, Any]:
    """A signed statement of ``kind`` by ``signer``."""
    if kind not in KINDS:
        raise ValueError(f"unknown statement kind {kind!r}")
    body = {"format": FORMAT, "kind": kind, "utc": datetime.now(UTC).isoformat(timespec="seconds"), **fields}
    return signer.sign(body)


@dataclass(frozen=True)
class Checked:
    """A statement whose signature holds; ``signer`` is the trusted key, or None when the key is not trusted."""

    body: dict[str, Any]
    digest: str
    key_id: str
    signer: ids.KnownKey | None

    @property
    def kind(self) -> str:
        return str(self.body.get("kind"))

    def get(self, name: str, default: Any = None) -> Any:
        return self.body.get(name, default)

    def signer_label(self) -> str:
        if self.signer is not None:
            return self.signer.label()
        claimed = self.body.get("signer", {}).get("name", "?") if isinstance(self.body.get("signer"), dict) else "?"
        return f"{claimed} ({self.key_id}, not trusted here)"


def check_statement(body: object, trusted: dict[str, ids.KnownKey]) -> Checked | None:
    """The statement with its trusted signer, or None when it is malformed or its signature does not hold."""
    if not isinstance(body, dict) or body.get("format") != FORMAT or body.get("kind") not in KINDS:
        return None
    signer = body.get("signer")
    public = ids.public_key_from_b64(signer.get("public_key")) if isinstance(signer, dict) else None
    if public is None or not isinstance(signer, dict) or signer.get("key_id") != ids.key_id(public):
        return None
    if not ids.signature_valid(public, body.get("signature"), ids.canonical_bytes(body)):
        return None
    kid = ids.key_id(public)
    return Checked(body, ids.digest(body), kid, trusted.get(kid))


class StatementRepo:
    """Insert-only storage of signed statements, read back only through :func:`check_statement`."""

    def __init__(self, db: sqlite_utils.Database, trusted: dict[str, ids.KnownKey] | None = None) -> None:
        self.db = db
        self._trusted = trusted
        self._reread = trusted is not None  # keys given by the caller are never read again
        self._positions: dict[str, int] = {}
        self._positions_key: tuple[object, object] | None = None

    @property
    def trusted(self) -> dict[str, ids.KnownKey]:
        if self._trusted is None:
            self._trusted = ids.trusted_keys()
        return self._trusted

    def add(self, body: dict[str, Any]) -> str:
        """Store a signed statement (once); returns its digest."""
        key = ids.digest(body)
        signer = body.get("signer") or {}
        self.db.execute(
            "INSERT OR IGNORE INTO statements (digest, kind, config_id, content_sha256, run_id, probe_id, key_id, "
            "utc, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                key,
                body.get("kind"),
                body.get("config_id"),
                body.get("content_sha256"),
                body.get("run_id"),
                body.get("probe_id"),
                signer.get("key_id", ""),
                body.get("utc", ""),
                json.dumps(body, sort_keys=True, ensure_ascii=False),
            ],
        )
        return key

    def sign_and_add(self, signer: ids.Identity, kind: str, **fields: Any) -> dict[str, Any]:
        body = make_statement(signer, kind, **fields)
        self.add(body)
        return body

    def _checked(self, rows: Any) -> list[Checked]:
        found = []
        for row in rows:
            try:
                body = json.loads(row["body"])
            except (ValueError, RecursionError):
                continue
            checked = check_statement(body, self.trusted)
            if checked is not None and checked.signer is None and not self._reread:
                # A key may have become trusted since the keys were read (the default identity is created on first
                # use, a colleague's card trusted): read them once more before calling a signer untrusted.
                self._reread, self._trusted = True, ids.trusted_keys()
                checked = check_statement(body, self._trusted)
            # A row whose stored digest differs from its body was edited: it is not the statement it claims to be.
            if checked is not None and checked.digest == row["digest"]:
                found.append(checked)
        return found

    def _in_log_order(self, found: list[Checked]) -> list[Checked]:
        """``found`` in the order of the audit rows that recorded them (the hash-chained log, which cannot be
        reordered unnoticed), not of the table's rows (which can); statements no row names (brought in by an
        import) keep their table order after the others."""
        if len(found) < 2:
            return found
        positions = self._audit_positions()
        ranked = sorted(enumerate(found), key=lambda pair: (positions.get(pair[1].digest, 1 << 62), pair[0]))
        return [checked for _, checked in ranked]

    def _audit_positions(self) -> dict[str, int]:
        """The audit row that names each statement digest (read again when the log has grown)."""
        if not any(
            True for _ in self.db.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit_log'")
        ):
            return {}
        end = next(iter(self.db.query("SELECT max(seq) AS seq, count(*) AS n FROM audit_log")))
        key = (end["seq"], end["n"])
        if self._positions_key != key:
            positions: dict[str, int] = {}
            for row in self.db.query(
                "SELECT seq, json_extract(details, '$.statement') AS digest FROM audit_log "
                "WHERE json_valid(details) ORDER BY seq"
            ):
                if isinstance(row["digest"], str):
                    positions.setdefault(row["digest"], row["seq"])
            self._positions, self._positions_key = positions, key
        return self._positions

    def get(self, digest: str) -> Checked | None:
        found = self._checked(self.db.query("SELECT * FROM statements WHERE digest = ?", [digest]))
        return found[0] if found else None

    def about_version(self, config: SafetyConfig, kind: str) -> list[Checked]:
        """Valid statements of ``kind`` about exactly this document (content and every field a person reads),
        oldest first. A version that differs only in its title or notes has statements of its own."""
        rows = self.db.query(
            "SELECT * FROM statements WHERE config_id = ? AND content_sha256 = ? AND kind = ? ORDER BY rowid",
            [config.id, config.content_hash(), kind],
        )
        wanted = (config.id, config.content_hash(), config.document_hash())
        return self._in_log_order(
            [
                c
                for c in self._checked(rows)
                if (c.get("config_id"), c.get("content_sha256"), c.get("document_sha256")) == wanted
            ]
        )

    def about_item(self, run_id: str, config_id: str, probe_id: str) -> list[Checked]:
        """Valid override statements about one item of a run, oldest first."""
        rows = self.db.query(
            "SELECT * FROM statements WHERE kind = 'override' AND run_id = ? AND config_id = ? AND probe_id = ? "
            "ORDER BY rowid",
            [run_id, config_id, probe_id],
        )
        return self._in_log_order(
            [
                c
                for c in self._checked(rows)
                if (c.get("run_id"), c.get("config_id"), c.get("probe_id")) == (run_id, config_id, probe_id)
            ]
        )

    def about_run(self, run_id: str) -> list[Checked]:
        """Valid seals of check run ``run_id`` (``run`` statements), oldest first."""
        rows = self.db.query("SELECT * FROM statements WHERE kind = 'run' AND run_id = ? ORDER BY rowid", [run_id])
        return self._in_log_order([c for c in self._checked(rows) if c.get("run_id") == run_id])
