"""Sealed check runs: a run's replies and judge verdicts, signed by the identity that ran the check.

The verdicts that an approval's gate reads live in ordinary tables (``check_items``), which anyone with the
database file can edit. So when a run stops, the runner signs a ``run`` statement over a digest of everything the
gate and the evidence read from it: the run's provenance (suite, configs, models, parameters, seed, status) and, for
every item, the probe, the reply and the judges' verdicts with their raw text. Human verdicts are not in the digest:
each has its own signed override statement.

The gate (:func:`studio.core.approval.lifecycle.evaluate_gate`) only counts a run whose newest seal by a trusted
identity matches the tables as they are now; an approval names the seal it rests on, and an export carries it.

The digest is computed from the raw column values, so a damaged or edited value changes the digest instead of
having to be parsed first. Every column is covered but the human verdicts, so nothing the gate, the evidence or a
reviewer reads (whether an item counts as judged, when the run finished, its warnings) can change unnoticed.

A run is sealed whenever it stops (finished, cancelled or failed), and a run with a seal is resumed only while its
newest trusted seal still matches: otherwise resuming would sign someone's edits with the key of whoever resumes.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import sqlite_utils

from studio.core import identity as ids
from studio.core.store.audit import AuditLog
from studio.core.store.statements import Checked, StatementRepo

#: The columns of ``check_runs`` that a seal covers: all of them.
RUN_COLUMNS = (
    "id",
    "label",
    "status",
    "created_utc",
    "finished_utc",
    "suite_id",
    "suite_hash",
    "suite_json",
    "candidate_json",
    "judge_json",
    "params_json",
    "judge_params_json",
    "seed",
    "app_version",
    "decoding_mode",
    "self_check",
    "warnings_json",
)
CONFIG_COLUMNS = ("position", "config_id", "config_version", "config_hash", "config_json")
#: The columns of ``check_items`` a seal covers: all but the human verdicts (each has its own signed override).
ITEM_COLUMNS = (
    "config_id",
    "probe_id",
    "position",
    "prompt",
    "expected",
    "categories_json",
    "response",
    "stop_reason",
    "generation_s",
    "rating",
    "helpfulness_raw",
    "safe",
    "safety_raw",
    "flagged_json",
    "violated_clause",
    "reason",
    "judged_utc",
    "self_safe",
    "self_raw",
    "error",
)


def run_digest(db: sqlite_utils.Database, run_id: str) -> str | None:
    """sha256 over the sealed columns of run ``run_id`` (None when there is no such run)."""
    run = list(db.query(f"SELECT {', '.join(RUN_COLUMNS)} FROM check_runs WHERE id = ?", [run_id]))
    if not run:
        return None
    configs = db.query(
        f"SELECT {', '.join(CONFIG_COLUMNS)} FROM check_run_configs WHERE run_id = ? ORDER BY position, config_id",
        [run_id],
    )
    items = db.query(
        f"SELECT {', '.join(ITEM_COLUMNS)} FROM check_items WHERE run_id = ? ORDER BY position, config_id, probe_id",
        [run_id],
    )
    document = {
        "run": [run[0][c] for c in RUN_COLUMNS],
        "configs": [[row[c] for c in CONFIG_COLUMNS] for row in configs],
        "items": [[row[c] for c in ITEM_COLUMNS] for row in items],
    }
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":"), default=_raw)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _raw(value: object) -> Any:
    """Column values JSON cannot hold as they are (BLOBs an edit may have left): their hex, marked as such."""
    if isinstance(value, bytes):
        return {"blob": value.hex()}
    return repr(value)


def seal_run(db: sqlite_utils.Database, run_id: str, home: Any = None) -> dict[str, Any]:
    """Sign the finished run ``run_id`` as it is stored now, with an audit row; returns the statement."""
    digest = run_digest(db, run_id)
    if digest is None:
        raise ValueError(f"no check run {run_id!r} to seal")
    configs = [
        {"config_id": row["config_id"], "version": row["config_version"], "content_sha256": row["config_hash"]}
        for row in db.query(
            "SELECT config_id, config_version, config_hash FROM check_run_configs WHERE run_id = ? ORDER BY position",
            [run_id],
        )
    ]
    signer = ids.acting_identity(home)
    with db.atomic():
        statement = StatementRepo(db).sign_and_add(signer, "run", run_id=run_id, run_sha256=digest, configs=configs)
        AuditLog(db, home).append(
            signer.name, "seal run", run_id, None, {"run_sha256": digest, "statement": ids.digest(statement)}
        )
    return statement


def seal_problem(statements: StatementRepo, run_id: str) -> tuple[Checked | None, str | None]:
    """The seal that holds for run ``run_id`` as stored now, or None and the reason there is none."""
    digest = run_digest(statements.db, run_id)
    if digest is None:
        return None, f"run {run_id} is not stored here"
    seals = statements.about_run(run_id)
    if not seals:
        return None, f"run {run_id} has no signed record of its verdicts (run the check again)"
    trusted = [s for s in seals if s.signer is not None]
    if not trusted:
        return None, f"run {run_id} was sealed by {seals[-1].signer_label()}"
    newest = trusted[-1]
    if newest.get("run_sha256") != digest:
        return None, (
            f"run {run_id}'s replies or verdicts differ from what {newest.signer_label()} signed when it finished "
            "(the database was edited)"
        )
    return newest, None


def resume_problem(statements: StatementRepo, run_id: str) -> str | None:
    """Why run ``run_id`` must not be resumed: it has a trusted seal and no longer matches the newest one (None
    when it matches, or when it was never sealed: a run stopped by a crash)."""
    if not any(s.signer is not None for s in statements.about_run(run_id)):
        return None
    _, problem = seal_problem(statements, run_id)
    return None if problem is None else f"{problem}; it cannot be resumed, start a new check"
