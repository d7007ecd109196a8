"""The audit log's write-time check in a long-lived process (the GUI): what one write found intact is not checked
again by the next write of the same connection, unless something else wrote in between. Every edit made between two
writes, by another process or outside this connection's transactions, still stops the next write."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from studio.core.documents import ConfigKind, SafetyConfig
from studio.core.errors import StateError
from studio.core.store import Store
from studio.core.store.audit import AuditLog


def _config(config_id: str) -> SafetyConfig:
    return SafetyConfig(
        id=config_id,
        title=f"Support bot {config_id}",
        kind=ConfigKind.FREE_FORM,
        text="Help customers with account security.\n",
        author="tester",
    )


@pytest.fixture
def full_checks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the full checks of the chain (one entry per check)."""
    calls: list[int] = []
    original = AuditLog._chain_and_head

    def counted(self: AuditLog) -> list[object]:
        calls.append(1)
        return original(self)  # type: ignore[return-value]

    monkeypatch.setattr(AuditLog, "_chain_and_head", counted)
    return calls


def _other_process(db_path: Path, *statements: str) -> None:
    """Edits through a connection of its own, around the append-only triggers (as the sqlite3 shell would)."""
    conn = sqlite3.connect(db_path)
    for trigger in ("audit_log_no_update", "audit_log_no_delete", "statements_no_update", "statements_no_delete"):
        conn.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    for statement in statements:
        conn.execute(statement)
    conn.commit()
    conn.close()


def test_writes_in_one_process_check_the_whole_log_once(store: Store, full_checks: list[int]) -> None:
    for n in range(4):
        store.configs.create(_config(f"c{n}"))
    assert len(full_checks) == 1
    assert store.audit.verify() == []
    head = store.audit.head()
    assert head is not None and head.seq == 4


def test_a_write_by_another_connection_makes_the_next_write_check_everything(
    store: Store, full_checks: list[int]
) -> None:
    store.configs.create(_config("c0"))
    assert store.path is not None
    with Store.open() as other:  # another studio process, honest
        other.configs.create(_config("c1"))
    store.configs.create(_config("c2"))
    assert len(full_checks) == 3
    assert store.audit.verify() == []


EDITS = {
    "an old row rewritten": "UPDATE audit_log SET actor = 'mallory' WHERE seq = 1",
    "an old row removed": "DELETE FROM audit_log WHERE seq = 1",
    "a statement deleted": "DELETE FROM statements WHERE config_id = 'c0'",
    "a statement row hidden": "UPDATE statements SET content_sha256 = 'x' WHERE config_id = 'c0'",
}


@pytest.mark.parametrize("edit", list(EDITS))
def test_an_edit_by_another_process_between_two_writes_stops_the_next_one(store: Store, edit: str) -> None:
    store.configs.create(_config("c0"))
    store.configs.create(_config("c1"))
    assert store.path is not None
    _other_process(store.path, EDITS[edit])
    with pytest.raises(StateError, match="the audit log does not hold"):
        store.configs.create(_config("c2"))
    assert not store.configs.exists("c2")


def _same_connection(store: Store, statement: str) -> None:
    for trigger in ("audit_log_no_update", "audit_log_no_delete", "statements_no_update", "statements_no_delete"):
        store.db.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    store.db.execute(statement)


@pytest.mark.parametrize("edit", list(EDITS))
def test_an_edit_through_the_same_connection_outside_a_transaction_stops_the_next_write(
    store: Store, edit: str
) -> None:
    store.configs.create(_config("c0"))
    store.configs.create(_config("c1"))
    _same_connection(store, EDITS[edit])
    with pytest.raises(StateError, match="the audit log does not hold"):
        store.configs.create(_config("c2"))


def test_an_edit_followed_by_a_write_without_audit_rows_still_stops_the_next_audited_write(store: Store) -> None:
    store.configs.create(_config("c0"))
    store.configs.create(_config("c1"))
    _same_connection(store, EDITS["an old row rewritten"])
    with store.db.atomic():  # an ordinary transaction of the studio's own that writes no audit row
        store.db.execute("CREATE TABLE IF NOT EXISTS scratch (x INTEGER)")
        store.db.execute("INSERT INTO scratch VALUES (1)")
    with pytest.raises(StateError, match="row 1: content does not match"):
        store.configs.create(_config("c2"))


HEAD_EDITS: dict[str, Callable[[Path], None]] = {
    "head deleted": lambda head: head.unlink(),
    "head altered": lambda head: head.write_text(
        json.dumps({**json.loads(head.read_text(encoding="utf-8")), "seq": 1}), encoding="utf-8"
    ),
}


@pytest.mark.parametrize("edit", list(HEAD_EDITS))
def test_the_head_file_is_checked_on_every_write(store: Store, full_checks: list[int], edit: str) -> None:
    store.configs.create(_config("c0"))
    store.configs.create(_config("c1"))
    assert store.path is not None
    HEAD_EDITS[edit](store.path.with_name(store.path.name + ".audit-head"))
    with pytest.raises(StateError, match="head file"):
        store.configs.create(_config("c2"))
    assert len(full_checks) == 1  # caught by the head check of the cached path, not by a full check


def test_a_refused_write_leaves_the_next_one_checking_everything(store: Store, full_checks: list[int]) -> None:
    store.configs.create(_config("c0"))
    store.configs.create(_config("c1"))
    with pytest.raises(ValueError), store.db.atomic():
        store.configs.create(_config("c2"))
        raise ValueError("the caller gave up")
    assert not store.configs.exists("c2")
    store.configs.create(_config("c3"))
    assert len(full_checks) == 2
    assert store.audit.verify() == []
