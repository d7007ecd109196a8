"""Check runs: what was run (suite, configs, models, params, provenance) and every item's response and verdicts.

A run's items are created up front, one per (config, probe); the response and the judge verdicts are filled in as
they arrive, so an interrupted run resumes with the items still missing. Human verdicts are stored beside the
judge's, never over them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlite_utils

from studio.core.choices import choices_hint
from studio.core.documents import ProbeSuite, SafetyConfig
from studio.core.errors import NotFoundError
from studio.core.store.migrations import migration
from studio.core.taxonomy import Category

ITEMS = "check_items"


class RunStatus(StrEnum):
    RUNNING = "running"
    FINISHED = "finished"
    CANCELLED = "cancelled"
    FAILED = "failed"


@migration("0030_check_runs")
def _create_run_tables(db: sqlite_utils.Database) -> None:
    db.execute(
        """
        CREATE TABLE check_runs (
            id TEXT PRIMARY KEY,
            label TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL,
            created_utc TEXT NOT NULL,
            finished_utc TEXT,
            suite_id TEXT NOT NULL,
            suite_hash TEXT NOT NULL,
            suite_json TEXT NOT NULL,
            candidate_json TEXT NOT NULL,
            judge_json TEXT NOT NULL,
            params_json TEXT NOT NULL,
            judge_params_json TEXT NOT NULL,
            seed INTEGER NOT NULL,
            app_version TEXT NOT NULL,
            decoding_mode TEXT
        )
        """
    )
    db.execute(
        """
        CREATE TABLE check_run_configs (
            run_id TEXT NOT NULL REFERENCES check_runs(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            config_id TEXT NOT NULL,
            config_version INTEGER NOT NULL,
            config_hash TEXT NOT NULL,
            config_json TEXT NOT NULL,
            PRIMARY KEY (run_id, config_id)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE check_items (
            run_id TEXT NOT NULL REFERENCES check_runs(id) ON DELETE CASCADE,
            config_id TEXT NOT NULL,
            probe_id TEXT NOT NULL,
            position INTEGER NOT NULL,
            prompt TEXT NOT NULL,
            expected TEXT NOT NULL,
            categories_json TEXT NOT NULL,
            response TEXT,
            stop_reason TEXT,
            generation_s REAL,
            rating INTEGER,
            helpfulness_raw TEXT,
            safe INTEGER,
            safety_raw TEXT,
            flagged_json TEXT,
            violated_clause TEXT,
            reason TEXT,
            judged_utc TEXT,
            human_rating INTEGER,
            human_safe INTEGER,
            human_note TEXT,
            human_utc TEXT,
            PRIMARY KEY (run_id, config_id, probe_id)
        )
        """
    )
    db.execute("CREATE INDEX check_run_configs_by_config ON check_run_configs(config_id)")
    db.execute("CREATE INDEX check_runs_by_time ON check_runs(created_utc)")


@migration("0031_self_verdicts")
def _add_self_verdicts(db: sqlite_utils.Database) -> None:
    """The candidate's own verdict on each of its replies, for the Cascade variant of CoSA-Score."""
    db.execute("ALTER TABLE check_runs ADD COLUMN self_check INTEGER NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE check_items ADD COLUMN self_safe INTEGER")
    db.execute("ALTER TABLE check_items ADD COLUMN self_raw TEXT")


@migration("0032_item_errors_and_run_warnings")
def _add_errors_and_warnings(db: sqlite_utils.Database) -> None:
    """Why an item has no reply or verdict yet (cleared when it gets one), and what a run warned about."""
    db.execute("ALTER TABLE check_items ADD COLUMN error TEXT")
    db.execute("ALTER TABLE check_runs ADD COLUMN warnings_json TEXT")


def utc_stamp() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


@dataclass(frozen=True)
class RunRecord:
    """One check run and what produced it."""

    id: str
    label: str
    status: RunStatus
    created_utc: str
    finished_utc: str | None
    suite_id: str
    suite_hash: str
    candidate: dict[str, Any]
    judge: dict[str, Any]
    params: dict[str, Any]
    judge_params: dict[str, Any]
    seed: int
    app_version: str
    decoding_mode: str | None
    config_ids: tuple[str, ...]
    config_hashes: tuple[str, ...]
    self_check: bool = False
    warnings: tuple[str, ...] = ()

    def provenance(self) -> dict[str, Any]:
        return {
            "run_id": self.id,
            "created_utc": self.created_utc,
            "finished_utc": self.finished_utc,
            "status": self.status.value,
            "suite": {"id": self.suite_id, "sha256": self.suite_hash},
            "configs": [{"id": c, "sha256": h} for c, h in zip(self.config_ids, self.config_hashes, strict=True)],
            "candidate": self.candidate,
            "judge": self.judge,
            "params": self.params,
            "judge_params": self.judge_params,
            "seed": self.seed,
            "app_version": self.app_version,
            "decoding_mode": self.decoding_mode,
            "self_check": self.self_check,
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class ItemSeed:
    """An item to create: one probe under one config."""

    config_id: str
    probe_id: str
    prompt: str
    expected: str
    categories: tuple[Category, ...]


@dataclass(frozen=True)
class ItemRecord:
    """One stored item with its response, the judge verdicts and the human verdicts (``None`` = not given)."""

    run_id: str
    config_id: str
    probe_id: str
    position: int
    prompt: str
    expected: str
    categories: tuple[Category, ...]
    response: str | None
    stop_reason: str | None
    generation_s: float | None
    rating: int | None
    helpfulness_raw: str | None
    safe: bool | None
    safety_raw: str | None
    flagged: tuple[Category, ...] | None
    violated_clause: str
    reason: str
    judged_utc: str | None
    human_rating: int | None
    human_safe: bool | None
    human_note: str
    human_utc: str | None
    self_safe: bool | None = None
    self_raw: str | None = None
    #: The last failure of this item's request (a dead server, a timeout); None once it succeeded.
    error: str | None = None

    @property
    def judged(self) -> bool:
        return self.judged_utc is not None

    @property
    def reviewed(self) -> bool:
        return self.human_utc is not None


def _bool(value: Any) -> bool | None:
    return None if value is None else bool(value)


def _item_from_row(row: dict[str, Any]) -> ItemRecord:
    flagged = row["flagged_json"]
    return ItemRecord(
        run_id=row["run_id"],
        config_id=row["config_id"],
        probe_id=row["probe_id"],
        position=row["position"],
        prompt=row["prompt"],
        expected=row["expected"],
        categories=tuple(Category(c) for c in json.loads(row["categories_json"])),
        response=row["response"],
        stop_reason=row["stop_reason"],
        generation_s=row["generation_s"],
        rating=row["rating"],
        helpfulness_raw=row["helpfulness_raw"],
        safe=_bool(row["safe"]),
        safety_raw=row["safety_raw"],
        flagged=None if flagged is None else tuple(Category(c) for c in json.loads(flagged)),
        violated_clause=row["violated_clause"] or "",
        reason=row["reason"] or "",
        judged_utc=row["judged_utc"],
        human_rating=row["human_rating"],
        human_safe=_bool(row["human_safe"]),
        human_note=row["human_note"] or "",
        human_utc=row["human_utc"],
        self_safe=_bool(row["self_safe"]),
        self_raw=row["self_raw"],
        error=row["error"],
    )


class RunStore:
    """All reads and writes of check runs."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db

    # -- writing -------------------------------------------------------------------------------------------------

    def create_run(
        self,
        run_id: str,
        *,
        label: str,
        suite: ProbeSuite,
        configs: list[SafetyConfig],
        candidate: dict[str, Any],
        judge: dict[str, Any],
        params: dict[str, Any],
        judge_params: dict[str, Any],
        seed: int,
        app_version: str,
        items: list[ItemSeed],
        self_check: bool = False,
        warnings: tuple[str, ...] = (),
    ) -> None:
        with self.db.atomic():
            self.db.execute(
                "INSERT INTO check_runs (id, label, status, created_utc, suite_id, suite_hash, suite_json, "
                "candidate_json, judge_json, params_json, judge_params_json, seed, app_version, self_check, "
                "warnings_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    run_id,
                    label,
                    RunStatus.RUNNING.value,
                    utc_stamp(),
                    suite.id,
                    suite.content_hash(),
                    suite.model_dump_json(),
                    json.dumps(candidate, sort_keys=True),
                    json.dumps(judge, sort_keys=True),
                    json.dumps(params, sort_keys=True),
                    json.dumps(judge_params, sort_keys=True),
                    seed,
                    app_version,
                    int(self_check),
                    json.dumps(list(warnings)),
                ],
            )
            for position, config in enumerate(configs):
                self.db.execute(
                    "INSERT INTO check_run_configs (run_id, position, config_id, config_version, config_hash, "
                    "config_json) VALUES (?, ?, ?, ?, ?, ?)",
                    [run_id, position, config.id, config.version, config.content_hash(), config.model_dump_json()],
                )
            for position, item in enumerate(items):
                self.db.execute(
                    "INSERT INTO check_items (run_id, config_id, probe_id, position, prompt, expected, "
                    "categories_json) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        run_id,
                        item.config_id,
                        item.probe_id,
                        position,
                        item.prompt,
                        item.expected,
                        json.dumps([c.value for c in item.categories]),
                    ],
                )

    def save_response(
        self, run_id: str, config_id: str, probe_id: str, response: str, stop_reason: str, seconds: float
    ) -> None:
        self.db.execute(
            "UPDATE check_items SET response = ?, stop_reason = ?, generation_s = ?, error = NULL "
            "WHERE run_id = ? AND config_id = ? AND probe_id = ?",
            [response, stop_reason, seconds, run_id, config_id, probe_id],
        )

    def save_item_error(self, run_id: str, config_id: str, probe_id: str, message: str) -> None:
        """Note why an item's request failed; the item stays pending, so resuming the run tries it again."""
        self.db.execute(
            "UPDATE check_items SET error = ? WHERE run_id = ? AND config_id = ? AND probe_id = ?",
            [message, run_id, config_id, probe_id],
        )

    def save_judgement(
        self,
        run_id: str,
        config_id: str,
        probe_id: str,
        *,
        rating: int | None,
        helpfulness_raw: str,
        safe: bool | None,
        safety_raw: str,
        flagged: frozenset[Category] | None,
        violated_clause: str,
        reason: str,
    ) -> None:
        flagged_json = None if flagged is None else json.dumps([c.value for c in Category if c in flagged])
        self.db.execute(
            "UPDATE check_items SET rating = ?, helpfulness_raw = ?, safe = ?, safety_raw = ?, flagged_json = ?, "
            "violated_clause = ?, reason = ?, judged_utc = ?, error = NULL "
            "WHERE run_id = ? AND config_id = ? AND probe_id = ?",
            [
                rating,
                helpfulness_raw,
                None if safe is None else int(safe),
                safety_raw,
                flagged_json,
                violated_clause,
                reason,
                utc_stamp(),
                run_id,
                config_id,
                probe_id,
            ],
        )

    def save_self_verdict(self, run_id: str, config_id: str, probe_id: str, *, safe: bool | None, raw: str) -> None:
        """The candidate's own safety verdict on its reply (used by the Cascade variant)."""
        self.db.execute(
            "UPDATE check_items SET self_safe = ?, self_raw = ? WHERE run_id = ? AND config_id = ? AND probe_id = ?",
            [None if safe is None else int(safe), raw, run_id, config_id, probe_id],
        )

    def set_human(
        self,
        run_id: str,
        config_id: str,
        probe_id: str,
        *,
        rating: int | None,
        safe: bool | None,
        note: str = "",
    ) -> None:
        """Store a human verdict beside the judge's; ``None`` for both clears the review."""
        cleared = rating is None and safe is None
        cursor = self.db.execute(
            "UPDATE check_items SET human_rating = ?, human_safe = ?, human_note = ?, human_utc = ? "
            "WHERE run_id = ? AND config_id = ? AND probe_id = ?",
            [
                rating,
                None if safe is None else int(safe),
                None if cleared else note,
                None if cleared else utc_stamp(),
                run_id,
                config_id,
                probe_id,
            ],
        )
        if cursor.rowcount == 0:
            raise self._missing_item(run_id, config_id, probe_id)

    def finish_run(self, run_id: str, status: RunStatus, decoding_mode: str | None) -> None:
        self.db.execute(
            "UPDATE check_runs SET status = ?, finished_utc = ?, decoding_mode = COALESCE(?, decoding_mode) "
            "WHERE id = ?",
            [status.value, utc_stamp() if status is not RunStatus.RUNNING else None, decoding_mode, run_id],
        )

    # -- reading -------------------------------------------------------------------------------------------------

    def _missing(self, run_id: str) -> NotFoundError:
        recent = [row["id"] for row in self.db.query("SELECT id FROM check_runs ORDER BY created_utc DESC, rowid DESC")]
        return NotFoundError(f"no check run with id {run_id!r}{choices_hint(run_id, recent, label='latest runs')}")

    def _missing_item(self, run_id: str, config_id: str, probe_id: str) -> NotFoundError:
        configs = self.get_run(run_id).config_ids
        if config_id not in configs:
            return NotFoundError(f"run {run_id!r} did not check config {config_id!r}{choices_hint(config_id, configs)}")
        probes = [item.probe_id for item in self.items(run_id, config_id)]
        return NotFoundError(
            f"run {run_id!r} has no item {probe_id!r} under config {config_id!r}{choices_hint(probe_id, probes)}"
        )

    def get_run(self, run_id: str) -> RunRecord:
        row = next(self.db.query("SELECT * FROM check_runs WHERE id = ?", [run_id]), None)
        if row is None:
            raise self._missing(run_id)
        return self._record(row)

    def _record(self, row: dict[str, Any]) -> RunRecord:
        configs = list(
            self.db.query(
                "SELECT config_id, config_hash FROM check_run_configs WHERE run_id = ? ORDER BY position", [row["id"]]
            )
        )
        return RunRecord(
            id=row["id"],
            label=row["label"],
            status=RunStatus(row["status"]),
            created_utc=row["created_utc"],
            finished_utc=row["finished_utc"],
            suite_id=row["suite_id"],
            suite_hash=row["suite_hash"],
            candidate=json.loads(row["candidate_json"]),
            judge=json.loads(row["judge_json"]),
            params=json.loads(row["params_json"]),
            judge_params=json.loads(row["judge_params_json"]),
            seed=row["seed"],
            app_version=row["app_version"],
            decoding_mode=row["decoding_mode"],
            config_ids=tuple(c["config_id"] for c in configs),
            config_hashes=tuple(c["config_hash"] for c in configs),
            self_check=bool(row["self_check"]),
            warnings=tuple(json.loads(row["warnings_json"] or "[]")),
        )

    def list_runs(self, config_id: str | None = None) -> list[RunRecord]:
        """Runs, newest first; with ``config_id`` only those that checked that config."""
        if config_id is None:
            rows = self.db.query("SELECT * FROM check_runs ORDER BY created_utc DESC, rowid DESC")
        else:
            rows = self.db.query(
                "SELECT r.* FROM check_runs r JOIN check_run_configs c ON c.run_id = r.id WHERE c.config_id = ? "
                "ORDER BY r.created_utc DESC, r.rowid DESC",
                [config_id],
            )
        return [self._record(row) for row in list(rows)]

    def suite(self, run_id: str) -> ProbeSuite:
        row = next(self.db.query("SELECT suite_json FROM check_runs WHERE id = ?", [run_id]), None)
        if row is None:
            raise self._missing(run_id)
        return ProbeSuite.model_validate_json(row["suite_json"])

    def configs(self, run_id: str) -> list[SafetyConfig]:
        rows = self.db.query("SELECT config_json FROM check_run_configs WHERE run_id = ? ORDER BY position", [run_id])
        return [SafetyConfig.model_validate_json(row["config_json"]) for row in rows]

    def items(self, run_id: str, config_id: str | None = None) -> list[ItemRecord]:
        sql = "SELECT * FROM check_items WHERE run_id = ?"
        params: list[Any] = [run_id]
        if config_id is not None:
            sql += " AND config_id = ?"
            params.append(config_id)
        return [_item_from_row(row) for row in self.db.query(sql + " ORDER BY position", params)]

    def item(self, run_id: str, config_id: str, probe_id: str) -> ItemRecord:
        row = next(
            self.db.query(
                "SELECT * FROM check_items WHERE run_id = ? AND config_id = ? AND probe_id = ?",
                [run_id, config_id, probe_id],
            ),
            None,
        )
        if row is None:
            raise self._missing_item(run_id, config_id, probe_id)
        return _item_from_row(row)
