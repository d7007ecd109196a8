"""Probe suites and their versions. A changed suite is saved as a new version; stored versions never change."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import sqlite_utils
from pydantic import ValidationError

from studio.core.choices import choices_hint
from studio.core.documents import ProbeSuite, utc_now
from studio.core.errors import NotFoundError, StateError, one_line
from studio.core.store.configs import first_row
from studio.core.store.migrations import migration


@migration("0002_suites")
def _create_suite_tables(db: sqlite_utils.Database) -> None:
    db.execute("CREATE TABLE suites (id TEXT PRIMARY KEY, created TEXT NOT NULL)")
    db.execute(
        """
        CREATE TABLE suite_versions (
            suite_id TEXT NOT NULL REFERENCES suites(id),
            version INTEGER NOT NULL CHECK (version >= 1),
            title TEXT NOT NULL,
            probe_count INTEGER NOT NULL,
            content_hash TEXT NOT NULL,
            saved TEXT NOT NULL,
            document TEXT NOT NULL,
            PRIMARY KEY (suite_id, version)
        )
        """
    )


class SuiteRepo:
    """Versioned storage of :class:`ProbeSuite` documents."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db

    def exists(self, suite_id: str) -> bool:
        return first_row(self.db, "SELECT 1 AS found FROM suites WHERE id = ?", [suite_id]) is not None

    def ids(self) -> list[str]:
        """Every stored suite id, sorted."""
        return [row["id"] for row in self.db.query("SELECT id FROM suites ORDER BY id")]

    def get(self, suite_id: str, version: int | None = None) -> ProbeSuite:
        """One version of a suite (the latest when ``version`` is None); NotFoundError if absent."""
        if version is None:
            row = first_row(
                self.db, "SELECT * FROM suite_versions WHERE suite_id = ? ORDER BY version DESC LIMIT 1", [suite_id]
            )
        else:
            row = first_row(
                self.db, "SELECT * FROM suite_versions WHERE suite_id = ? AND version = ?", [suite_id, version]
            )
        if row is None:
            if version is None or not self.exists(suite_id):
                raise NotFoundError(
                    f"no probe suite with id {suite_id!r}{choices_hint(suite_id, self.ids(), label='stored')}"
                )
            raise NotFoundError(f"probe suite {suite_id!r} has no version {version}")
        return _suite_from_row(row)

    def list(self) -> list[ProbeSuite]:
        """The latest version of each suite, by id."""
        rows = self.db.query(
            "SELECT v.* FROM suite_versions v JOIN (SELECT suite_id, MAX(version) AS version FROM suite_versions "
            "GROUP BY suite_id) latest USING (suite_id, version) ORDER BY v.suite_id"
        )
        return [_suite_from_row(row) for row in rows]

    def save(self, suite: ProbeSuite) -> ProbeSuite:
        """Store a suite: created when new (keeping its version number), a new version (latest + 1) when anything
        but the version number differs from the latest, else the latest unchanged."""
        with self.db.atomic():
            if not self.exists(suite.id):
                self.db.execute("INSERT INTO suites (id, created) VALUES (?, ?)", [suite.id, utc_now().isoformat()])
                self._insert_version(suite)
                return suite
            latest = self.get(suite.id)
            if suite.model_dump(exclude={"version"}) == latest.model_dump(exclude={"version"}):
                return latest
            stored = ProbeSuite.model_validate({**suite.model_dump(), "version": latest.version + 1})
            self._insert_version(stored)
        return stored

    def _insert_version(self, suite: ProbeSuite) -> None:
        try:
            self.db.execute(
                "INSERT INTO suite_versions (suite_id, version, title, probe_count, content_hash, saved, document) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    suite.id,
                    suite.version,
                    suite.title,
                    len(suite.probes),
                    suite.content_hash(),
                    utc_now().isoformat(),
                    suite.model_dump_json(),
                ],
            )
        except sqlite3.IntegrityError as exc:
            raise StateError(
                f"probe suite {suite.id!r} version {suite.version} was stored concurrently; try again ({exc})"
            ) from None


def _suite_from_row(row: dict[str, Any]) -> ProbeSuite:
    try:
        return ProbeSuite.model_validate(json.loads(row["document"]))
    except (ValueError, ValidationError) as exc:
        raise StateError(
            f"stored probe suite {row['suite_id']!r} version {row['version']} cannot be read ({one_line(exc)})"
        ) from None
