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

A process can stop between its commit and the head write (killed, power lost). So that its rows are not then taken
for rows added by hand, the same signed statement is written first, just before the commit, as a pending head
(``<db>.audit-head.pending``). A pending head counts only while the table holds exactly the row it names, with that
hash: a transaction that rolled back leaves one that names no row or another row, and it is ignored. Opening the
store (:meth:`AuditLog.recover`) promotes a pending head that matches the table to the head; a head write removes
a pending head it covers.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from studio.core import identity as ids
from studio.core.errors import StateError
from studio.core.fileio import atomic_write_text, publish_file
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
        [prev_hash, seq, utc, actor, action, subject, version, details],
        ensure_ascii=False,
        separators=(",", ":"),
        default=_stored_value,  # a value of another type than written (a BLOB) hashes to something else, no crash
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def _row_hash(row: dict[str, Any]) -> str:
    """The hash a stored row should carry, from its stored fields."""
    return entry_hash(
        row["prev_hash"],
        row["seq"],
        row["utc"],
        row["actor"],
        row["action"],
        row["subject"],
        row["version"],
        row["details"],
    )


def _stored_value(value: object) -> object:
    return {"blob": value.hex()} if isinstance(value, bytes) else repr(value)


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
class _Checked:
    """How far the log was found intact, as committed: its last row and the last statement row."""

    seq: int
    hash: str
    statement_rowid: int


#: The key of :class:`_Checked` in ``StudioDatabase.verified``.
_CHECKED = "audit log"


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
            if signer is not None:
                self._refuse_broken_log()
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
                # The pending head is durable before the commit, so a process that stops right after committing
                # still leaves its rows covered by a signature; the head is written once the caller's outermost
                # transaction commits, so a rollback never leaves it ahead of the table.
                _at_commit(self._db, "before_commit", lambda: self._write_pending(seq, digest, signer))
                _at_commit(self._db, "after_commit", lambda: self._advance_head(seq, digest, signer))
        return AuditEntry(seq, utc, actor, action, subject, version, details or {}, prev, digest)

    def _refuse_broken_log(self) -> None:
        """Before the first row a transaction adds: StateError when the log as committed does not hold.

        Signing a new head over a log that was rewritten, cut or extended by hand would make the forgery look
        intact, so nothing is written until someone has looked at the log and accepted it (:meth:`accept`).
        """
        state = getattr(self._db, "transaction_state", None)
        if state is None or state.get("audit checked"):
            return
        # What an earlier write of this connection found intact still holds while nobody else has written since
        # (``StudioDatabase.verified`` is emptied otherwise): then only what was added after it is checked, and the
        # head file, which lives outside the database, is checked in full either way.
        verified: dict[str, object] | None = getattr(self._db, "verified", None)
        checked = verified.get(_CHECKED) if verified is not None else None
        if isinstance(checked, _Checked):
            found = self._problems_since(checked)
        else:
            # Statements this transaction stored before its first row are not named yet, so the check of statements
            # against rows is left to `studio audit verify`; it keeps reporting rows removed before this write.
            # Rows naming statements that are gone are checked here: deleting a retirement must not let an export
            # through.
            found = self._chain_and_head() + self._deleted_statements() + self._edited_statement_rows()
        problems = self._unaccepted(found)
        if problems:
            first = problems[0]
            where = f"row {first.seq}: " if first.seq is not None else ""
            raise StateError(
                f"the audit log does not hold ({where}{first.message}); nothing was written. Read the whole report "
                "with `studio audit verify`; once you know what happened, `studio audit accept` signs the log as it "
                "is, with a row saying so"
            )
        state["audit checked"] = True
        if verified is not None and self._head_path is not None:
            # The mark is read under the write lock, before COMMIT, so no other writer's rows can slip into it.
            _at_commit(self._db, "before_commit", lambda: state.__setitem__("audit mark", self._mark()))
            _at_commit(self._db, "after_commit", lambda: verified.__setitem__(_CHECKED, state["audit mark"]))

    def _mark(self) -> _Checked:
        last = list(self._db.query(f"SELECT seq, hash FROM {TABLE} ORDER BY seq DESC LIMIT 1"))
        rowid = 0
        if _has_statements(self._db):
            rowid = next(iter(self._db.query("SELECT COALESCE(MAX(rowid), 0) AS n FROM statements")))["n"]
        if not last:
            return _Checked(0, GENESIS, rowid)
        return _Checked(last[0]["seq"], last[0]["hash"], rowid)

    def _problems_since(self, checked: _Checked) -> list[AuditProblem]:
        """The checks of :meth:`_refuse_broken_log` on the rows and statements added after ``checked``."""
        if checked.seq and self._stored_hash(checked.seq) != checked.hash:
            return [AuditProblem(checked.seq, "row differs from what this studio checked (the row was edited)")]
        rows = list(self._db.query(f"SELECT * FROM {TABLE} WHERE seq > ? ORDER BY seq", [checked.seq]))
        problems, hashes = _chain_problems(rows, checked.hash, checked.seq + 1)
        last_seq = max(hashes, default=checked.seq)
        problems += self._head_problems(last_seq, lambda seq: hashes[seq] if seq in hashes else self._stored_hash(seq))
        problems += self._deleted_statements(rows)
        problems += self._edited_statement_rows(after_rowid=checked.statement_rowid)
        return problems

    def _stored_hash(self, seq: int) -> str | None:
        found = list(self._db.query(f"SELECT hash FROM {TABLE} WHERE seq = ?", [seq]))
        return found[0]["hash"] if found else None

    def accept(self, signer: ids.Identity, note: str) -> AuditEntry:
        """Sign the log as it is now, whatever verification says, with an ``accept`` row naming the problems.

        For a log whose head was lost (a database restored without it) or that was knowingly changed: the row keeps
        what was accepted, by whom and why, in the chain, and the signed head then covers the log again.
        """
        if self._head_path is None:
            raise StateError("an in-memory database has no audit head to sign")
        problems = [_problem_text(p) for p in self.verify()]
        details = {"problems": problems, "note": note, "statements": self._unlogged_digests()}
        with self._db.atomic(), ids.acting_as(signer):
            state = getattr(self._db, "transaction_state", None)
            if state is not None:
                state["audit checked"] = True
            entry = self.append(signer.name, "accept", "audit log", None, details)
            _at_commit(self._db, "after_commit", lambda: self._advance_head(entry.seq, entry.hash, signer, force=True))
        return entry

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
                _details(row["details"]),
                row["prev_hash"],
                row["hash"],
            )
            for row in self._db.query(sql, params)
        ]

    def verify(self) -> list[AuditProblem]:
        """Recompute the chain, check it against the signed head and look for signed statements that no row names;
        an empty list means the log is intact."""
        return self._unaccepted(
            self._chain_and_head()
            + self._deleted_statements()
            + self._edited_statement_rows()
            + self._unlogged_statements()
        )

    def _unaccepted(self, problems: list[AuditProblem]) -> list[AuditProblem]:
        """``problems`` less those an ``accept`` row further down the log lists word for word (see
        :meth:`accept`): someone with a trusted key looked at them and signed the log as it was. An accept row that
        was itself edited no longer matches its hash and accepts nothing; a problem that changed since is new."""
        if not problems:
            return problems
        accepted: list[tuple[int, set[str]]] = []
        for row in self._db.query(f"SELECT * FROM {TABLE} WHERE action = 'accept' ORDER BY seq"):
            listed = _details(row["details"]).get("problems")
            if _row_hash(row) == row["hash"] and isinstance(listed, list):
                accepted.append((row["seq"], {p for p in listed if isinstance(p, str)}))
        broken = {p.seq for p in problems if p.seq is not None}
        return [
            p
            for p in problems
            if not any(
                _problem_text(p) in texts and (p.seq is None or p.seq < seq) and seq not in broken
                for seq, texts in accepted
            )
        ]

    def _chain_and_head(self) -> list[AuditProblem]:
        problems, hashes = _chain_problems(self._db.query(f"SELECT * FROM {TABLE} ORDER BY seq"), GENESIS, 1)
        return problems + self._head_problems(max(hashes, default=0), hashes.get)

    def _head_problems(self, last_seq: int, hash_of: Callable[[int], str | None]) -> list[AuditProblem]:
        if self._head_path is None:
            return []
        # Under the writers' lock, so a head and pending head being moved into place are read as one.
        try:
            with _locked(self._lock_path()):
                return self._check_head(last_seq, hash_of)
        except (OSError, StateError):  # no lock to be had (a read-only home): read without it
            return self._check_head(last_seq, hash_of)

    def _deleted_statements(self, rows: Iterable[dict[str, Any]] | None = None) -> list[AuditProblem]:
        """Rows (all of them, or ``rows``) that name a signed statement the table no longer holds (statements
        deleted around the trigger)."""
        if not _has_statements(self._db):
            return []
        if rows is None:
            stored = {row["digest"] for row in self._db.query("SELECT digest FROM statements")}
            rows = self._db.query(f"SELECT seq, details FROM {TABLE} ORDER BY seq")
            is_stored: Callable[[str], bool] = stored.__contains__
        else:
            is_stored = self._statement_stored
        problems = []
        for row in rows:
            details = _details(row["details"])
            named = [details.get(key) for key in ("statement", "approval")]
            accepted = details.get("statements")
            named += accepted if isinstance(accepted, list) else []
            gone = [d for d in named if isinstance(d, str) and not is_stored(d)]
            if gone:
                problems.append(
                    AuditProblem(
                        row["seq"],
                        f"names signed statement {gone[0][:12]}, which is no longer stored (statements were deleted)",
                    )
                )
        return problems

    def _statement_stored(self, digest: str) -> bool:
        return any(True for _ in self._db.query("SELECT 1 FROM statements WHERE digest = ?", [digest]))

    def _edited_statement_rows(self, after_rowid: int | None = None) -> list[AuditProblem]:
        """Statement rows (all, or those after ``after_rowid``) whose index columns (how a statement is found: kind,
        config, content, run, probe, key) or digest differ from the signed body: a statement hidden from the
        lookups by an edit of its columns."""
        if not _has_statements(self._db):
            return []
        edited = []
        sql = "SELECT digest, kind, config_id, content_sha256, run_id, probe_id, key_id, body FROM statements"
        query = (sql, []) if after_rowid is None else (f"{sql} WHERE rowid > ?", [after_rowid])
        for row in self._db.query(*query):
            body = _details(row["body"])
            signer = body.get("signer")
            try:
                body_digest = ids.digest(body) if body else None
            except (ValueError, TypeError, RecursionError):
                body_digest = None
            expected = (
                body_digest,
                body.get("kind"),
                body.get("config_id"),
                body.get("content_sha256"),
                body.get("run_id"),
                body.get("probe_id"),
                signer.get("key_id", "") if isinstance(signer, dict) else "",
            )
            stored = tuple(row[c] for c in ("digest", "kind", "config_id", "content_sha256", "run_id", "probe_id"))
            if (*stored, row["key_id"]) != expected:
                edited.append(str(row["digest"])[:12])
        if not edited:
            return []
        return [
            AuditProblem(
                None,
                f"{len(edited)} signed statement row(s) were edited, their columns no longer match the signed "
                f"text: {', '.join(edited[:3])}",
            )
        ]

    def _unlogged(self) -> list[dict[str, Any]]:
        """The statement rows (digest, kind, config_id, run_id) that no audit row names."""
        if not _has_statements(self._db):
            return []
        named: set[str] = set()
        for row in self._db.query(f"SELECT details FROM {TABLE}"):
            details = _details(row["details"])
            for key in ("statement", "approval"):
                if isinstance(details.get(key), str):
                    named.add(details[key])
            accepted = details.get("statements")  # an ``accept`` row: the statements accepted as they are
            if isinstance(accepted, list):
                named.update(d for d in accepted if isinstance(d, str))
        for row in self._db.query("SELECT digest, body FROM statements WHERE kind = 'approve'"):
            if row["digest"] in named:
                named.update(_statements_named_by(row["body"]))
        return [
            row
            for row in self._db.query("SELECT digest, kind, config_id, run_id FROM statements ORDER BY rowid")
            if row["digest"] not in named
        ]

    def _unlogged_digests(self) -> list[str]:
        return [str(row["digest"]) for row in self._unlogged()]

    def _unlogged_statements(self) -> list[AuditProblem]:
        """Signed statements that no audit row names: rows that recorded them were removed (with the head put back
        or deleted). An audit row names its statement (``statement``), or an approval whose statements it
        brought in (``approval``, an import): those are the approval's authorship, submission, seal and overrides."""
        missing = self._unlogged()
        if not missing:
            return []
        shown = ", ".join(
            f"{row['kind']} of {row['config_id'] or row['run_id'] or '?'} ({str(row['digest'])[:12]})"
            for row in missing[:3]
        )
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        return [
            AuditProblem(
                None,
                f"{len(missing)} signed statement(s) have no audit row: {shown}{more} (audit rows were removed)",
            )
        ]

    def head(self) -> Head | None:
        """The signed head as recorded (None when there is no usable head file)."""
        return _parse_head(self._read_head())

    def recover(self) -> bool:
        """Promote a pending head that matches the table and is ahead of the head; True when it did.

        A pending head that names no row, or a row with another hash, is left alone (a rolled-back transaction, or
        a row that was changed since), and so is one not signed by a trusted identity.
        """
        pending_path = self._pending_path()
        if pending_path is None or not pending_path.is_file():
            return False
        with _locked(self._lock_path()):
            last = next(iter(self._db.query(f"SELECT COALESCE(MAX(seq), 0) AS seq FROM {TABLE}")))["seq"]
            if self._covering_pending(self._read_head(), last, self._stored_hash) is None:
                return False
            publish_file(pending_path, self._head_path)  # type: ignore[arg-type]
            return True

    def _covering_pending(self, data: object, last_seq: int, hash_of: Callable[[int], str | None]) -> object:
        """The pending head document when it takes over from the head document ``data``, else None.

        It must be signed by a trusted identity and name a row of the table with that row's hash, and be ahead of a
        head that is trusted and matches the table, or, when there is no head file at all, name the last row. A
        head that was altered or does not match the table is never replaced (that is what verification reports).
        """
        pending_data = _read_json(self._pending_path())
        pending = _parse_head(pending_data)
        if (
            not last_seq
            or pending is None
            or hash_of(pending.seq) != pending.hash
            or self._head_signature_problem(pending_data) is not None
        ):
            return None
        if data is None:
            return pending_data if pending.seq == last_seq else None
        head = _parse_head(data)
        if (
            self._head_signature_problem(data) is None
            and head is not None
            and hash_of(head.seq) == head.hash
            and head.seq < pending.seq
        ):
            return pending_data
        return None

    def _pending_path(self) -> Path | None:
        return None if self._head_path is None else self._head_path.with_name(self._head_path.name + ".pending")

    def _lock_path(self) -> Path:
        assert self._head_path is not None
        return self._head_path.with_name(self._head_path.name + ".lock")

    def _check_head(self, last_seq: int, hash_of: Callable[[int], str | None]) -> list[AuditProblem]:
        if self._head_path is None:
            return []
        data = self._read_head()
        # Rows that a process committed and signed as pending, then stopped before writing the head, are covered by
        # that pending head (see the module docstring).
        pending = self._covering_pending(data, last_seq, hash_of)
        if pending is not None:
            data = pending
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
        head = _parse_head(data)
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
        if hash_of(head.seq) != head.hash:
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

    def _write_pending(self, seq: int, digest: str, signer: ids.Identity) -> None:
        """Durably record (seq, digest), signed, as the pending head; runs inside the transaction that adds it."""
        pending_path = self._pending_path()
        assert pending_path is not None
        document = signer.sign({"format": HEAD_FORMAT, "seq": seq, "hash": digest})
        with _locked(self._lock_path()):
            atomic_write_text(pending_path, json.dumps(document, sort_keys=True) + "\n")

    def _advance_head(self, seq: int, digest: str, signer: ids.Identity, *, force: bool = False) -> None:
        """Move the head forward to (seq, digest); a head already further along is left alone (unless ``force``:
        an accepted log). When the pending head is this very document (the usual case: this write signed it before
        its commit), it is moved into place rather than written again; a pending head that the head covers is
        removed."""
        assert self._head_path is not None
        pending_path = self._pending_path()
        assert pending_path is not None
        with _locked(self._lock_path()):
            current = self.head()
            pending_data = _read_json(pending_path)
            if current is None or current.seq < seq or force:
                # Ed25519 signatures are deterministic: the same signer signing the same head gives the same bytes.
                document = signer.sign({"format": HEAD_FORMAT, "seq": seq, "hash": digest})
                if pending_data == document:
                    publish_file(pending_path, self._head_path)
                    return
                atomic_write_text(self._head_path, json.dumps(document, sort_keys=True) + "\n")
                current = Head(seq, digest, "")
            pending = _parse_head(pending_data)
            if pending is not None and pending.seq <= current.seq:
                pending_path.unlink(missing_ok=True)

    def _read_head(self) -> object:
        return _read_json(self._head_path)


def _read_json(path: Path | None) -> object:
    """The JSON in ``path``; None when there is no such file, "unreadable" when it cannot be read or parsed."""
    if path is None or not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return "unreadable"


def _chain_problems(
    rows: Iterable[dict[str, Any]], prev: str, expected_seq: int
) -> tuple[list[AuditProblem], dict[int, str]]:
    """Breaks in the chain of ``rows`` (in seq order), which should start at ``expected_seq`` after a row whose
    hash is ``prev``; and each row's stored hash by seq."""
    problems: list[AuditProblem] = []
    hashes: dict[int, str] = {}
    for row in rows:
        seq = row["seq"]
        if seq != expected_seq:
            problems.append(AuditProblem(seq, f"rows {expected_seq}..{seq - 1} are missing"))
        if row["prev_hash"] != prev:
            problems.append(AuditProblem(seq, "link to the previous row is broken (a row was removed or edited)"))
        if _row_hash(row) != row["hash"]:
            problems.append(AuditProblem(seq, "content does not match its hash (the row was edited)"))
        prev = row["hash"]
        expected_seq = seq + 1
        hashes[seq] = row["hash"]
    return problems, hashes


def _parse_head(data: object) -> Head | None:
    """The (seq, hash, signer key) of a head document, or None when it has not that shape."""
    if not isinstance(data, dict):
        return None
    signer = data.get("signer")
    key = signer.get("key_id") if isinstance(signer, dict) else None
    seq, digest = data.get("seq"), data.get("hash")
    if not isinstance(seq, int) or isinstance(seq, bool) or not isinstance(digest, str):
        return None
    return Head(seq, digest, str(key))


def _problem_text(problem: AuditProblem) -> str:
    return problem.message if problem.seq is None else f"row {problem.seq}: {problem.message}"


def _has_statements(db: sqlite_utils.Database) -> bool:
    return any(True for _ in db.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'statements'"))


def _details(text: object) -> dict[str, Any]:
    """An audit row's details; {} when the stored text is not a JSON object (the chain check reports the edit)."""
    try:
        value = json.loads(text) if isinstance(text, str) else None
    except (ValueError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


def _statements_named_by(body: object) -> list[str]:
    """The digests an approval statement names: authorship, submission, run seal and overrides."""
    try:
        approval = json.loads(body) if isinstance(body, str) else {}
    except (ValueError, RecursionError):
        return []
    if not isinstance(approval, dict):
        return []
    named = [approval.get(k) for k in ("version_statement", "submit_statement", "run_statement")]
    overrides = approval.get("override_statements")
    named += overrides if isinstance(overrides, list) else []
    return [d for d in named if isinstance(d, str)]


def _at_commit(db: sqlite_utils.Database, when: str, callback: Any) -> None:
    """Register ``callback`` with the database's ``before_commit`` or ``after_commit`` (``when``); a database
    without them (a plain ``sqlite_utils.Database``) runs it at once."""
    register = getattr(db, when, None)
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
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise StateError(f"{path}: cannot lock the audit head ({exc.strerror or exc}); nothing was written") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
