"""The store under pressure: concurrent writers lose nothing, every write path advances the signed audit head,
and bad homes, unknown schema versions and deeply nested YAML end in one clean line, never a traceback."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from studio.cli.main import main
from studio.core.store import Store
from studio.core.store.audit import AuditLog

REPO = Path(__file__).resolve().parents[2]

CONFIG_YAML = """\
id: {id}
title: Support bot {id}
kind: free-form
text: |
  Help customers with account security.
"""


def _write_config(path: Path, config_id: str) -> Path:
    path.write_text(CONFIG_YAML.format(id=config_id), encoding="utf-8")
    return path


WRITER = """
import sys
from pathlib import Path
from studio.cli.main import main

n = int(sys.argv[1])
folder = Path(sys.argv[2])
for i in range(50):
    if i % 2:
        path = folder / f"w{n}-{i}.yaml"
        path.write_text(sys.argv[3].format(id=f"w{n}-{i}"), encoding="utf-8")
        code = main(["config", "import", str(path)])
    else:
        code = main(["config", "edit", "shared", "--set-notes", f"writer {n} edit {i}"])
    if code != 0:
        print(f"write {i} failed with {code}", file=sys.stderr)
"""


@pytest.mark.parametrize("writers", [2, 4])
def test_concurrent_writers_lose_nothing(studio_home: Path, tmp_path: Path, writers: int) -> None:
    assert main(["config", "import", str(_write_config(tmp_path / "shared.yaml", "shared"))]) == 0
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(WRITER), str(n), str(tmp_path), CONFIG_YAML],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for n in range(writers)
    ]
    for proc in procs:
        _out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0
        assert err == "", err  # no traceback, no failed write
    with Store.open() as store:
        assert len(store.configs.history("shared")) == 1 + 25 * writers
        imported = [c.id for c in store.configs.list() if c.id != "shared"]
        assert len(imported) == 25 * writers
        log = AuditLog(store.db)
        assert log.verify() == []
        head = log.head()
        assert head is not None and head.seq == len(log.entries()) == 1 + 50 * writers


# -- the audit head -------------------------------------------------------------------------------------------------


def _tamper(db_path: Path, *statements: str) -> None:
    conn = sqlite3.connect(db_path)
    conn.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
    conn.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
    for statement in statements:
        conn.execute(statement)
    conn.commit()
    conn.close()


def _import_two(tmp_path: Path) -> Path:
    assert main(["config", "import", str(_write_config(tmp_path / "a.yaml", "a"))]) == 0
    assert main(["config", "import", str(_write_config(tmp_path / "b.yaml", "b"))]) == 0
    return tmp_path


def test_config_import_and_benchmark_import_advance_the_head(studio_home: Path, tmp_path: Path) -> None:
    _import_two(tmp_path)
    rows = [{"prompt": "Describe a duel.", "scenario": "A game studio. Combat is fine.", "type": "allowed"}]
    bench = tmp_path / "bench.jsonl"
    bench.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert main(["import-benchmark", "cosapien", str(bench)]) == 0
    with Store.open() as store:
        log = AuditLog(store.db)
        head = log.head()
        assert head is not None and head.seq == len(log.entries()) == 3
        assert log.verify() == []


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ("DELETE FROM audit_log WHERE seq = 2", "rows were removed from the end"),
        ("DELETE FROM audit_log", "rows were removed from the end"),
        ("UPDATE audit_log SET seq = 3 WHERE seq = 1", "link to the previous row is broken"),
    ],
)
def test_removing_or_reordering_rows_is_caught(
    studio_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], statement: str, expected: str
) -> None:
    _import_two(tmp_path)
    _tamper(studio_home / "studio.db", statement)
    capsys.readouterr()
    assert main(["audit", "verify"]) == 1
    assert expected in capsys.readouterr().out


def test_a_missing_head_is_a_failure_not_a_pass(
    studio_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _import_two(tmp_path)
    (studio_home / "studio.db.audit-head").unlink()
    capsys.readouterr()
    assert main(["audit", "verify"]) == 1
    out = capsys.readouterr().out
    assert "head file" in out and "is missing" in out


def test_a_rewritten_chain_with_a_recomputed_head_is_caught(
    studio_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rewrite a row, recompute every hash after it and write a matching head without a trusted key."""
    from studio.core.store.audit import GENESIS, entry_hash

    _import_two(tmp_path)
    db_path = studio_home / "studio.db"
    conn = sqlite3.connect(db_path)
    rows = conn.execute("SELECT seq, utc, actor, action, subject, version, details FROM audit_log ORDER BY seq")
    forged = []
    prev = GENESIS
    for seq, utc, actor, action, subject, version, details in rows.fetchall():
        actor = "mallory" if seq == 1 else actor
        digest = entry_hash(prev, seq, utc, actor, action, subject, version, details)
        forged.append((actor, prev, digest, seq))
        prev = digest
    conn.close()
    _tamper(
        db_path,
        *(f"UPDATE audit_log SET actor='{a}', prev_hash='{p}', hash='{h}' WHERE seq={s}" for a, p, h, s in forged),
    )
    head_path = studio_home / "studio.db.audit-head"
    head = json.loads(head_path.read_text(encoding="utf-8"))
    head["hash"] = prev
    head_path.write_text(json.dumps(head), encoding="utf-8")
    capsys.readouterr()
    assert main(["audit", "verify"]) == 1
    assert "was altered" in capsys.readouterr().out


def test_a_head_signed_by_an_untrusted_key_is_caught(
    studio_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from studio.core.identity import Identity

    _import_two(tmp_path)
    _tamper(studio_home / "studio.db", "DELETE FROM audit_log WHERE seq = 2")
    mallory = Identity("mallory", Ed25519PrivateKey.generate())
    with Store.open() as store:
        first = AuditLog(store.db).entries()[0]
    head = mallory.sign({"format": "cosa-studio/audit-head/v1", "seq": 1, "hash": first.hash})
    (studio_home / "studio.db.audit-head").write_text(json.dumps(head), encoding="utf-8")
    capsys.readouterr()
    assert main(["audit", "verify"]) == 1
    assert "not a trusted identity here" in capsys.readouterr().out


def _forge_history(db_path: Path) -> None:
    """Replace every audit row with a made-up chain (hashes recomputed, no key needed)."""
    from studio.core.store.audit import GENESIS, entry_hash

    _tamper(db_path, "DELETE FROM audit_log")
    prev, rows = GENESIS, []
    for seq in (1, 2):
        args = (seq, f"2026-01-0{seq}T00:00:00+00:00", "mallory", "create", f"fake-{seq}", 1, "{}")
        digest = entry_hash(prev, *args)
        rows.append(
            f"INSERT INTO audit_log VALUES ({seq}, '{args[1]}', 'mallory', 'create', 'fake-{seq}', 1, '{{}}', "
            f"'{prev}', '{digest}')"
        )
        prev = digest
    _tamper(db_path, *rows)


@pytest.mark.parametrize("damage", ["forged history, head deleted", "rows added by hand", "head deleted"])
def test_no_write_signs_over_a_log_that_does_not_hold(
    studio_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str
) -> None:
    """A new head would make the damage look intact, so the studio writes nothing until someone accepts the log."""
    _import_two(tmp_path)
    db_path, head = studio_home / "studio.db", studio_home / "studio.db.audit-head"
    if damage == "forged history, head deleted":
        _forge_history(db_path)
        head.unlink()
    elif damage == "rows added by hand":
        with Store.open() as store:
            last = AuditLog(store.db).entries()[-1]
        from studio.core.store.audit import entry_hash

        digest = entry_hash(last.hash, 3, "2026-01-03T00:00:00+00:00", "mallory", "approve", "a", 1, "{}")
        _tamper(
            db_path,
            f"INSERT INTO audit_log VALUES (3, '2026-01-03T00:00:00+00:00', 'mallory', 'approve', 'a', "
            f"1, '{{}}', '{last.hash}', '{digest}')",
        )
    else:
        head.unlink()
    capsys.readouterr()
    assert main(["config", "import", str(_write_config(tmp_path / "c.yaml", "c"))]) == 5
    err = capsys.readouterr().err
    assert "the audit log does not hold" in err and "nothing was written" in err
    with Store.open() as store:
        assert not store.configs.exists("c")
    assert main(["audit", "verify"]) == 1  # still reported, not papered over

    capsys.readouterr()
    assert main(["audit", "accept", "--note", "restored from the Monday backup"]) == 0
    assert "accepted" in capsys.readouterr().out
    assert main(["audit", "verify"]) == 0
    with Store.open() as store:
        accepted = AuditLog(store.db).entries()[-1]
    assert (accepted.action, accepted.details["note"]) == ("accept", "restored from the Monday backup")
    assert accepted.details["problems"]
    assert main(["config", "import", str(_write_config(tmp_path / "c.yaml", "c"))]) == 0
    assert main(["audit", "verify"]) == 0


def test_emptying_the_log_and_its_head_is_caught_by_the_statements(
    studio_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _import_two(tmp_path)
    _tamper(studio_home / "studio.db", "DELETE FROM audit_log")
    (studio_home / "studio.db.audit-head").unlink()
    capsys.readouterr()
    assert main(["audit", "verify"]) == 1
    assert "2 signed statement(s) have no audit row" in capsys.readouterr().out


def test_an_old_head_put_back_over_a_cut_log_is_caught_by_the_statements(
    studio_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["config", "import", str(_write_config(tmp_path / "a.yaml", "a"))]) == 0
    head = studio_home / "studio.db.audit-head"
    old_head = head.read_bytes()
    assert main(["config", "import", str(_write_config(tmp_path / "b.yaml", "b"))]) == 0
    _tamper(studio_home / "studio.db", "DELETE FROM audit_log WHERE seq = 2")
    head.write_bytes(old_head)
    capsys.readouterr()
    assert main(["audit", "verify"]) == 1
    out = capsys.readouterr().out
    assert "1 signed statement(s) have no audit row: version of b" in out


@pytest.mark.parametrize("seq", ["1e400", "true", '"1"', "-1e400"])
def test_a_head_with_a_number_that_is_no_row_number_is_unreadable_not_a_crash(
    studio_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], seq: str
) -> None:
    _import_two(tmp_path)
    for name in ("studio.db.audit-head", "studio.db.audit-head.pending"):
        (studio_home / name).write_text(f'{{"format": "cosa-studio/audit-head/v1", "seq": {seq}, "hash": "x"}}')
    capsys.readouterr()
    assert main(["audit", "verify"]) == 1
    captured = capsys.readouterr()
    assert "head file" in captured.out and "Traceback" not in captured.err


def test_a_value_stored_as_another_type_is_an_edit_not_a_crash(
    studio_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _import_two(tmp_path)
    _tamper(studio_home / "studio.db", "UPDATE audit_log SET utc = CAST(utc AS BLOB) WHERE seq = 1")
    capsys.readouterr()
    assert main(["audit", "verify"]) == 1
    captured = capsys.readouterr()
    assert "row 1: content does not match its hash" in captured.out and "Traceback" not in captured.err
    assert main(["audit", "accept", "--note", "an editor stored a date as bytes"]) == 0
    assert main(["audit", "verify"]) == 0


def test_a_lock_that_cannot_be_taken_is_one_line_and_writes_nothing(
    studio_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _import_two(tmp_path)
    (studio_home / "studio.db.audit-head.lock").unlink(missing_ok=True)
    (studio_home / "studio.db.audit-head.lock").mkdir()
    capsys.readouterr()
    assert main(["config", "import", str(_write_config(tmp_path / "c.yaml", "c"))]) == 5
    err = capsys.readouterr().err
    assert "cannot lock the audit head" in err and "Traceback" not in err
    with Store.open() as store:
        assert not store.configs.exists("c")


# -- a writer that stops between its commit and the head write ------------------------------------------------------

STOPS_AFTER_COMMIT = """
import os, signal, sys
from pathlib import Path
from studio.cli.main import main
from studio.core.store.audit import AuditLog

# The process is killed the moment its rows are committed, before the head file is written.
AuditLog._advance_head = lambda self, seq, digest, signer: os.kill(os.getpid(), signal.SIGKILL)
main(["config", "import", sys.argv[1]])
"""


def _import_then_die(tmp_path: Path, config_id: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    path = _write_config(tmp_path / f"{config_id}.yaml", config_id)
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(STOPS_AFTER_COMMIT), str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == -9, proc.stderr


def _raw_log(studio_home: Path) -> AuditLog:
    """The audit log of the home's database, opened without the store (so nothing is recovered on open)."""
    return AuditLog(sqlite_utils_db(studio_home / "studio.db"))


def sqlite_utils_db(path: Path) -> Any:
    import sqlite_utils

    return sqlite_utils.Database(path)


def test_rows_committed_by_a_writer_killed_before_the_head_write_still_verify(
    studio_home: Path, tmp_path: Path
) -> None:
    _import_two(tmp_path)
    head_before = _raw_log(studio_home).head()
    _import_then_die(tmp_path, "c")
    raw = _raw_log(studio_home)
    assert raw.head() == head_before  # the head was not written ...
    assert len(raw.entries()) == head_before.seq + 1  # ... but the row was committed
    assert (studio_home / "studio.db.audit-head.pending").is_file()
    assert raw.verify() == []  # covered by the signed pending head
    with Store.open() as store:  # opening the store promotes it
        head = store.audit.head()
        assert head is not None and head.seq == len(store.audit.entries()) == head_before.seq + 1
        assert store.audit.verify() == []
    assert not (studio_home / "studio.db.audit-head.pending").exists()
    # The next ordinary write moves on from there.
    assert main(["config", "import", str(_write_config(tmp_path / "d.yaml", "d"))]) == 0
    with Store.open() as store:
        assert store.audit.verify() == []
        assert store.audit.head().seq == head_before.seq + 2  # type: ignore[union-attr]


def test_an_ordinary_write_leaves_no_pending_head(
    studio_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from studio.core.store import audit

    written: list[str] = []
    write = audit.atomic_write_text
    monkeypatch.setattr(
        audit, "atomic_write_text", lambda path, text: (written.append(Path(path).name), write(path, text))
    )
    _import_two(tmp_path)
    assert not (studio_home / "studio.db.audit-head.pending").exists()
    assert (studio_home / "studio.db.audit-head").is_file()
    # Each write signs its head once, as the pending head, and then moves that file into place.
    assert written == ["studio.db.audit-head.pending"] * 2
    with Store.open() as store:
        assert store.audit.verify() == []
        assert store.audit.head().seq == 2  # type: ignore[union-attr]


def test_rows_added_by_hand_after_a_crash_are_still_caught(
    studio_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The pending head covers the rows it was signed for, not rows appended after them."""
    from studio.core.store.audit import entry_hash

    _import_two(tmp_path)
    _import_then_die(tmp_path, "c")
    last = _raw_log(studio_home).entries()[-1]
    seq, utc, details = last.seq + 1, last.utc, "{}"
    digest = entry_hash(last.hash, seq, utc, "mallory", "config.approve", "c", 1, details)
    _tamper(
        studio_home / "studio.db",
        "INSERT INTO audit_log (seq, utc, actor, action, subject, version, details, prev_hash, hash) VALUES "
        f"({seq}, '{utc}', 'mallory', 'config.approve', 'c', 1, '{details}', '{last.hash}', '{digest}')",
    )
    assert [p.message for p in _raw_log(studio_home).verify()] == [
        f"rows {seq}..{seq} come after the signed head (added by hand, or written by a process that stopped "
        "before signing; check them with `studio audit log`)"
    ]
    capsys.readouterr()
    assert main(["audit", "verify"]) == 1  # opening the store promoted what the pending head covers, no more
    assert f"rows {seq}..{seq} come after the signed head" in capsys.readouterr().out


def test_a_pending_head_from_an_untrusted_key_or_for_another_row_counts_for_nothing(
    studio_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from studio.core.identity import Identity, default_identity

    _import_two(tmp_path)
    _import_then_die(tmp_path, "c")
    pending_path = studio_home / "studio.db.audit-head.pending"
    last = _raw_log(studio_home).entries()[-1]
    mallory = Identity("mallory", Ed25519PrivateKey.generate())
    forged = mallory.sign({"format": "cosa-studio/audit-head/v1", "seq": last.seq, "hash": last.hash})
    pending_path.write_text(json.dumps(forged), encoding="utf-8")
    assert "come after the signed head" in _raw_log(studio_home).verify()[0].message
    # Signed by the right key, but for a row the table does not hold (a transaction that rolled back).
    ghost = default_identity().sign({"format": "cosa-studio/audit-head/v1", "seq": last.seq, "hash": "0" * 64})
    pending_path.write_text(json.dumps(ghost), encoding="utf-8")
    assert "come after the signed head" in _raw_log(studio_home).verify()[0].message
    capsys.readouterr()
    assert main(["audit", "verify"]) == 1
    assert pending_path.is_file()  # not promoted


def test_a_pending_head_does_not_hide_an_altered_head(studio_home: Path, tmp_path: Path) -> None:
    _import_two(tmp_path)
    _import_then_die(tmp_path, "c")
    head_path = studio_home / "studio.db.audit-head"
    head = json.loads(head_path.read_text(encoding="utf-8"))
    head["seq"] = 1
    head_path.write_text(json.dumps(head), encoding="utf-8")
    assert "was altered" in _raw_log(studio_home).verify()[0].message
    with Store.open() as store:
        assert "was altered" in store.audit.verify()[0].message


# -- bad homes, newer databases, bad input ----------------------------------------------------------------------


def _one_clean_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    return err


def test_a_home_that_cannot_be_created_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    monkeypatch.setenv("STUDIO_HOME", str(blocker / "home"))
    assert main(["config", "list"]) == 5
    assert "cannot create the studio folder" in _one_clean_line(capsys)


def test_a_database_that_cannot_be_opened_is_one_line(studio_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (studio_home / "studio.db").mkdir()
    assert main(["config", "list"]) == 5
    assert "STUDIO_HOME" in _one_clean_line(capsys)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_home_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "ro"
    home.mkdir()
    home.chmod(0o500)
    monkeypatch.setenv("STUDIO_HOME", str(home))
    try:
        assert main(["config", "list"]) == 5
        _one_clean_line(capsys)
    finally:
        home.chmod(0o700)


def test_a_newer_user_version_is_refused(studio_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Store.open().close()
    conn = sqlite3.connect(studio_home / "studio.db")
    conn.execute("PRAGMA user_version = 9999")
    conn.commit()
    conn.close()
    assert main(["config", "list"]) == 5
    assert "schema version 9999" in _one_clean_line(capsys)


def test_user_version_counts_the_migrations(studio_home: Path) -> None:
    from studio.core.store.migrations import ordered_migrations

    Store.open().close()
    conn = sqlite3.connect(studio_home / "studio.db")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(ordered_migrations())
    conn.close()


def _deep_yaml(levels: int) -> str:
    return "id: deep\nnotes: " + "[" * levels + "]" * levels + "\n"


@pytest.mark.parametrize("command", [["config", "import"], ["suite", "import"], ["config", "validate"]])
def test_yaml_nested_400_levels_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text(_deep_yaml(400), encoding="utf-8")
    assert main([*command, str(path)]) == 3
    assert "nested more than" in capsys.readouterr().err


def test_an_invalid_benchmark_prefix_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [{"prompt": "Describe a duel.", "scenario": "A game studio.", "type": "allowed"}]
    bench = tmp_path / "bench.jsonl"
    bench.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert main(["import-benchmark", "cosapien", str(bench), "--prefix", "../../x"]) == 3
    assert "--prefix" in _one_clean_line(capsys)
