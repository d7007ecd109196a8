"""Check runs: what was run (suite, configs, models, params, provenance) and every item's response and verdicts.

A run's items are created up front, one per (config, probe); the response and the judge verdicts are filled in as
they arrive, so an interrupted run resumes with the items still missing. Human verdicts are stored beside the
judge's, never over them.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlite_utils

from studio.core.choices import choices_hint
from studio.core.documents import ProbeSuite, SafetyConfig
from studio.core.errors import NotFoundError, StateError, one_line
from studio.core.store.migrations import migration
from studio.core.taxonomy import Category

ITEMS = "check_items"
#: The top of the judges' 0-5 helpfulness scale (``studio.core.evals.scoring.MAX_RATING``, which the store cannot
#: import); a stored rating outside it is damage.
MAX_RATING = 5


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


def _shown(value: Any, limit: int = 40) -> str:
    """A stored value as a message shows it: quoted, cut short when long."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


class _RowReader:
    """Typed values from one stored row; anything a studio write never stores is a StateError naming the run, the
    item (when there is one) and the column, never a traceback and never a value quietly made to look right."""

    def __init__(self, row: dict[str, Any], where: str) -> None:
        self.row = row
        self.where = where

    def damaged(self, column: str, expected: str) -> StateError:
        return StateError(
            f"{self.where}: column {column!r} holds {_shown(self.row.get(column))}, not {expected}; "
            "the database was edited or damaged"
        )

    def text(self, column: str) -> str:
        value = self.row[column]
        if not isinstance(value, str):
            raise self.damaged(column, "text")
        return value

    def optional_text(self, column: str) -> str | None:
        return None if self.row[column] is None else self.text(column)

    def integer(self, column: str) -> int:
        value = self.row[column]
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.damaged(column, "an integer")
        return value

    def rating(self, column: str) -> int | None:
        value = self.row[column]
        if value is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_RATING:
            raise self.damaged(column, f"a rating 0-{MAX_RATING}")
        return value

    def flag(self, column: str) -> bool | None:
        """A stored yes/no: NULL (not given), 0 or 1."""
        value = self.row[column]
        if value is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool) or value not in (0, 1):
            raise self.damaged(column, "0 or 1")
        return value == 1

    def seconds(self, column: str) -> float | None:
        value = self.row[column]
        if value is None:
            return None
        if not isinstance(value, int | float) or isinstance(value, bool) or not (math.isfinite(value) and value >= 0):
            raise self.damaged(column, "a number of seconds")
        return float(value)

    def _json(self, column: str, kind: type, expected: str) -> Any:
        raw = self.row[column]
        try:
            value = json.loads(raw) if isinstance(raw, str) else None
        except (ValueError, RecursionError):
            value = None
        if not isinstance(value, kind):
            raise self.damaged(column, expected)
        return value

    def mapping(self, column: str, *, named: bool = False) -> dict[str, Any]:
        """A JSON object; ``named``: one with a text ``name`` (a model's description)."""
        expected = "a JSON object with a name" if named else "a JSON object"
        value: dict[str, Any] = self._json(column, dict, expected)
        if named and not isinstance(value.get("name"), str):
            raise self.damaged(column, expected)
        return value

    def texts(self, column: str) -> tuple[str, ...]:
        values = self._json(column, list, "a JSON list of texts")
        if not all(isinstance(v, str) for v in values):
            raise self.damaged(column, "a JSON list of texts")
        return tuple(values)

    def categories(self, column: str) -> tuple[Category, ...]:
        expected = "a JSON list of risk category names"
        values = self._json(column, list, expected)
        known = {c.value for c in Category}
        if not all(isinstance(v, str) and v in known for v in values):
            raise self.damaged(column, expected)
        return tuple(Category(v) for v in values)


def _run_reader(row: dict[str, Any]) -> _RowReader:
    return _RowReader(row, f"run {row['id']!r}")


def _item_from_row(row: dict[str, Any]) -> ItemRecord:
    read = _RowReader(row, f"run {row['run_id']!r}, item {row['config_id']}/{row['probe_id']}")
    return ItemRecord(
        run_id=read.text("run_id"),
        config_id=read.text("config_id"),
        probe_id=read.text("probe_id"),
        position=read.integer("position"),
        prompt=read.text("prompt"),
        expected=read.text("expected"),
        categories=read.categories("categories_json"),
        response=read.optional_text("response"),
        stop_reason=read.optional_text("stop_reason"),
        generation_s=read.seconds("generation_s"),
        rating=read.rating("rating"),
        helpfulness_raw=read.optional_text("helpfulness_raw"),
        safe=read.flag("safe"),
        safety_raw=read.optional_text("safety_raw"),
        flagged=None if row["flagged_json"] is None else read.categories("flagged_json"),
        violated_clause=read.optional_text("violated_clause") or "",
        reason=read.optional_text("reason") or "",
        judged_utc=read.optional_text("judged_utc"),
        human_rating=read.rating("human_rating"),
        human_safe=read.flag("human_safe"),
        human_note=read.optional_text("human_note") or "",
        human_utc=read.optional_text("human_utc"),
        self_safe=read.flag("self_safe"),
        self_raw=read.optional_text("self_raw"),
        error=read.optional_text("error"),
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
        read = _run_reader(row)
        configs = [
            _RowReader(c, read.where)
            for c in self.db.query(
                "SELECT config_id, config_hash FROM check_run_configs WHERE run_id = ? ORDER BY position", [row["id"]]
            )
        ]
        status = read.text("status")
        statuses = [s.value for s in RunStatus]
        if status not in statuses:
            raise read.damaged("status", "a run status (" + ", ".join(statuses) + ")")
        self_check = read.flag("self_check")
        if self_check is None:
            raise read.damaged("self_check", "0 or 1")
        return RunRecord(
            id=read.text("id"),
            label=read.text("label"),
            status=RunStatus(status),
            created_utc=read.text("created_utc"),
            finished_utc=read.optional_text("finished_utc"),
            suite_id=read.text("suite_id"),
            suite_hash=read.text("suite_hash"),
            candidate=read.mapping("candidate_json", named=True),
            judge=read.mapping("judge_json", named=True),
            params=read.mapping("params_json"),
            judge_params=read.mapping("judge_params_json"),
            seed=read.integer("seed"),
            app_version=read.text("app_version"),
            decoding_mode=read.optional_text("decoding_mode"),
            config_ids=tuple(c.text("config_id") for c in configs),
            config_hashes=tuple(c.text("config_hash") for c in configs),
            self_check=self_check,
            warnings=() if row["warnings_json"] is None else read.texts("warnings_json"),
        )

    def _run_rows(self, columns: str, config_id: str | None) -> list[dict[str, Any]]:
        """``columns`` of the runs, newest first; with ``config_id`` only those that checked that config."""
        if config_id is None:
            return list(self.db.query(f"SELECT {columns} FROM check_runs r ORDER BY created_utc DESC, rowid DESC"))
        return list(
            self.db.query(
                f"SELECT {columns} FROM check_runs r JOIN check_run_configs c ON c.run_id = r.id "
                "WHERE c.config_id = ? ORDER BY r.created_utc DESC, r.rowid DESC",
                [config_id],
            )
        )

    def run_ids(self, config_id: str | None = None) -> list[str]:
        """The ids of :meth:`list_runs` without reading the runs (a listing can then show a damaged one as such)."""
        return [row["id"] for row in self._run_rows("r.id", config_id)]

    def readable_runs(self, config_id: str | None = None) -> tuple[list[RunRecord], list[tuple[str, str]]]:
        """The runs of :meth:`list_runs` that can be read, and (id, why) for each that cannot (a damaged row), so
        a listing shows the rest instead of failing as a whole."""
        records: list[RunRecord] = []
        damaged: list[tuple[str, str]] = []
        for run_id in self.run_ids(config_id):
            try:
                records.append(self.get_run(run_id))
            except StateError as exc:
                damaged.append((run_id, str(exc)))
        return records, damaged

    def list_runs(self, config_id: str | None = None) -> list[RunRecord]:
        """Runs, newest first; with ``config_id`` only those that checked that config."""
        return [self._record(row) for row in self._run_rows("r.*", config_id)]

    def suite(self, run_id: str) -> ProbeSuite:
        row = next(self.db.query("SELECT suite_json FROM check_runs WHERE id = ?", [run_id]), None)
        if row is None:
            raise self._missing(run_id)
        try:
            return ProbeSuite.model_validate_json(row["suite_json"])
        except (ValueError, TypeError) as exc:  # pydantic's ValidationError is a ValueError
            raise _stored_document_damaged(f"run {run_id!r}", "suite_json", "the probe suite", exc) from None

    def configs(self, run_id: str) -> list[SafetyConfig]:
        rows = self.db.query(
            "SELECT config_id, config_json FROM check_run_configs WHERE run_id = ? ORDER BY position", [run_id]
        )
        configs: list[SafetyConfig] = []
        for row in rows:
            try:
                configs.append(SafetyConfig.model_validate_json(row["config_json"]))
            except (ValueError, TypeError) as exc:
                where = f"run {run_id!r}, config {row['config_id']!r}"
                raise _stored_document_damaged(where, "config_json", "the checked config", exc) from None
        return configs

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


def _stored_document_damaged(where: str, column: str, what: str, exc: Exception) -> StateError:
    return StateError(
        f"{where}: column {column!r} does not hold {what} ({one_line(exc)}); the database was edited or damaged"
    )
