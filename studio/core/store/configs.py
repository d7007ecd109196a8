"""Safety configs and their version history.

A config is a row of ``configs``; each saved change adds a row to ``config_versions`` and never rewrites an
earlier one. Only a version's lifecycle status changes in place (:meth:`ConfigRepo.set_status`). Each stored
version gets a signed ``version`` statement by the acting identity: who put this exact text into the store.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import sqlite_utils
from pydantic import ValidationError

from studio.core.choices import choices_hint
from studio.core.documents import ConfigStatus, SafetyConfig, utc_now
from studio.core.errors import NotFoundError, StateError, one_line
from studio.core.identity import acting_identity, digest
from studio.core.store.audit import AuditLog
from studio.core.store.migrations import migration
from studio.core.store.statements import StatementRepo

#: Fields that describe a stored version rather than its content; a change to only these is not a new version.
VERSION_FIELDS = frozenset({"version", "status", "created", "updated"})


@migration("0001_configs")
def _create_config_tables(db: sqlite_utils.Database) -> None:
    db.execute(
        """
        CREATE TABLE configs (
            id TEXT PRIMARY KEY,
            created TEXT NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE config_versions (
            config_id TEXT NOT NULL REFERENCES configs(id),
            version INTEGER NOT NULL CHECK (version >= 1),
            status TEXT NOT NULL,
            kind TEXT NOT NULL,
            title TEXT NOT NULL,
            content_hash TEXT NOT NULL,
            updated TEXT NOT NULL,
            document TEXT NOT NULL,
            PRIMARY KEY (config_id, version)
        )
        """
    )
    db.execute("CREATE INDEX config_versions_status ON config_versions(status)")


def same_content(a: SafetyConfig, b: SafetyConfig) -> bool:
    """Whether two configs differ only in version bookkeeping (version, status, timestamps)."""
    return a.model_dump(exclude=set(VERSION_FIELDS)) == b.model_dump(exclude=set(VERSION_FIELDS))


class ConfigRepo:
    """Versioned storage of :class:`SafetyConfig` documents."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db
        self._audit = AuditLog(db)

    # -- reading -----------------------------------------------------------------------------------------------

    def exists(self, config_id: str) -> bool:
        return first_row(self.db, "SELECT 1 AS found FROM configs WHERE id = ?", [config_id]) is not None

    def ids(self) -> list[str]:
        """Every stored config id, sorted."""
        return [row["id"] for row in self.db.query("SELECT id FROM configs ORDER BY id")]

    def _missing(self, config_id: str) -> NotFoundError:
        return NotFoundError(f"no config with id {config_id!r}{choices_hint(config_id, self.ids(), label='stored')}")

    def get(self, config_id: str, version: int | None = None) -> SafetyConfig:
        """One version of a config (the latest when ``version`` is None); NotFoundError if absent."""
        if version is None:
            return self.latest(config_id)
        row = first_row(
            self.db, "SELECT * FROM config_versions WHERE config_id = ? AND version = ?", [config_id, version]
        )
        if row is None:
            if not self.exists(config_id):
                raise self._missing(config_id)
            raise NotFoundError(f"config {config_id!r} has no version {version}")
        return _config_from_row(row)

    def latest(self, config_id: str) -> SafetyConfig:
        found = self._latest_or_none(config_id)
        if found is None:
            raise self._missing(config_id)
        return found

    def history(self, config_id: str) -> list[SafetyConfig]:
        """Every version of a config, oldest first."""
        rows = list(self.db.query("SELECT * FROM config_versions WHERE config_id = ? ORDER BY version", [config_id]))
        if not rows:
            raise self._missing(config_id)
        return [_config_from_row(row) for row in rows]

    def list(
        self, search: str | None = None, status: ConfigStatus | None = None, tag: str | None = None
    ) -> list[SafetyConfig]:
        """The latest version of each config, by id; optionally filtered.

        ``search`` matches id, title, text, notes and tags case-insensitively; ``status`` and ``tag`` must match
        the latest version exactly.
        """
        sql = (
            "SELECT v.* FROM config_versions v JOIN (SELECT config_id, MAX(version) AS version "
            "FROM config_versions GROUP BY config_id) latest USING (config_id, version)"
        )
        params: list[Any] = []
        if status is not None:
            sql += " WHERE v.status = ?"
            params.append(ConfigStatus(status).value)
        sql += " ORDER BY v.config_id"
        configs = [_config_from_row(row) for row in self.db.query(sql, params)]
        if tag is not None:
            configs = [c for c in configs if tag in c.tags]
        if search:
            needle = search.casefold()
            configs = [c for c in configs if needle in _searchable(c)]
        return configs

    # -- writing -----------------------------------------------------------------------------------------------

    def create(self, config: SafetyConfig) -> SafetyConfig:
        """Store a new config as a draft; StateError if its id is taken."""
        with self.db.atomic():
            if self.exists(config.id):
                raise StateError(f"a config with id {config.id!r} already exists")
            stored = _revalidate(config, status=ConfigStatus.DRAFT)
            self.db.execute("INSERT INTO configs (id, created) VALUES (?, ?)", [stored.id, stored.created.isoformat()])
            self._insert_version(stored, "create")
        return stored

    def save(self, config: SafetyConfig) -> SafetyConfig:
        """Save an edit: a new draft version when the content differs from the latest, else the latest as is.

        A config not stored yet is created.
        """
        with self.db.atomic():
            latest = self._latest_or_none(config.id)
            if latest is None:
                return self.create(config)
            if same_content(config, latest):
                return latest
            stored = _revalidate(
                config,
                version=latest.version + 1,
                status=ConfigStatus.DRAFT,
                created=latest.created,
                updated=utc_now(),
            )
            self._insert_version(stored, "edit")
        return stored

    def import_config(self, config: SafetyConfig) -> SafetyConfig:
        """Bring in a config from a file: created when new (keeping its version number), a new version when its
        content differs from the latest, else nothing changes. Imported versions are always drafts."""
        with self.db.atomic():
            if not self.exists(config.id):
                return self.create(config)
            return self.save(config)

    def set_status(self, config_id: str, version: int, status: ConfigStatus) -> SafetyConfig:
        """Change the lifecycle status of one version (the only in-place change a version ever gets)."""
        with self.db.atomic():
            self.get(config_id, version)
            self.db.execute(
                "UPDATE config_versions SET status = ? WHERE config_id = ? AND version = ?",
                [ConfigStatus(status).value, config_id, version],
            )
            return self.get(config_id, version)

    def delete(self, config_id: str, actor: str) -> None:
        """Remove a config that never went beyond a draft: no version reviewed or approved, no check run. A
        config with such history is evidence others may rely on and can only be retired (StateError)."""
        with self.db.atomic():
            history = self.history(config_id)
            if any(version.status is not ConfigStatus.DRAFT for version in history):
                raise StateError(f"config {config_id!r} has been through review; retire it instead of deleting it")
            if first_row(self.db, "SELECT 1 AS found FROM check_run_configs WHERE config_id = ?", [config_id]):
                raise StateError(f"config {config_id!r} has check runs that refer to it; retire it instead")
            if first_row(self.db, "SELECT 1 AS found FROM approvals WHERE config_id = ?", [config_id]):
                raise StateError(f"config {config_id!r} has approval records; retire it instead")
            self.db.execute("DELETE FROM config_versions WHERE config_id = ?", [config_id])
            self.db.execute("DELETE FROM configs WHERE id = ?", [config_id])
            self._audit.append(actor or "unknown", "delete", config_id, None, {"versions": len(history)})

    # -- helpers -----------------------------------------------------------------------------------------------

    def _latest_or_none(self, config_id: str) -> SafetyConfig | None:
        query = "SELECT * FROM config_versions WHERE config_id = ? ORDER BY version DESC LIMIT 1"
        row = first_row(self.db, query, [config_id])
        return None if row is None else _config_from_row(row)

    def _insert_version(self, config: SafetyConfig, action: str) -> None:
        """Insert one version row and its audit entry (the caller holds the transaction)."""
        document = config.model_dump_json(exclude={"status"})
        try:
            self.db.execute(
                "INSERT INTO config_versions (config_id, version, status, kind, title, content_hash, updated, "
                "document) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    config.id,
                    config.version,
                    config.status.value,
                    config.kind.value,
                    config.title,
                    config.content_hash(),
                    config.updated.isoformat(),
                    document,
                ],
            )
        except sqlite3.IntegrityError as exc:
            raise StateError(
                f"config {config.id!r} version {config.version} was stored concurrently; try again ({exc})"
            ) from None
        signer = acting_identity()
        statement = StatementRepo(self.db).sign_and_add(
            signer,
            "version",
            config_id=config.id,
            version=config.version,
            content_sha256=config.content_hash(),
            document_sha256=config.document_hash(),
            author_field=config.author,
        )
        self._audit.append(
            signer.name,
            action,
            config.id,
            config.version,
            {"content_sha256": config.content_hash(), "statement": digest(statement)},
        )


def first_row(db: sqlite_utils.Database, sql: str, params: list[Any]) -> dict[str, Any] | None:
    """The first row of a query as a dict, or None; the cursor is always exhausted."""
    rows = list(db.query(sql, params))
    return rows[0] if rows else None


def _revalidate(config: SafetyConfig, **changes: Any) -> SafetyConfig:
    return SafetyConfig.model_validate({**config.model_dump(), **changes})


def _config_from_row(row: dict[str, Any]) -> SafetyConfig:
    try:
        data = json.loads(row["document"])
        data["status"] = row["status"]
        return SafetyConfig.model_validate(data)
    except (ValueError, ValidationError) as exc:
        raise StateError(
            f"stored config {row['config_id']!r} version {row['version']} cannot be read ({one_line(exc)})"
        ) from None


def _searchable(config: SafetyConfig) -> str:
    return "\n".join([config.id, config.title, config.text, config.notes, *config.tags]).casefold()
