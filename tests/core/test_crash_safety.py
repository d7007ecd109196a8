"""kill -9 at awkward moments: a real child process is killed mid-write and the survivors are checked.

Each child prints one line per durable step *after* the step committed; the parent kills it with SIGKILL once a
few steps are through, then checks that every reported step is present and nothing is corrupt.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from studio.core.fileio import atomic_write_text
from studio.core.store import Store

REPO = Path(__file__).resolve().parents[2]


def _spawn(code: str, env_home: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "STUDIO_HOME": str(env_home), "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _kill_after(proc: subprocess.Popen[str], lines: int, timeout: float = 120.0) -> list[str]:
    """Read ``lines`` progress lines, SIGKILL the child, and return everything it reported."""
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while len(seen) < lines and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line.strip())
    os.kill(proc.pid, signal.SIGKILL)
    rest, err = proc.communicate()
    assert proc.returncode == -signal.SIGKILL, f"child ended on its own: {err}"
    seen.extend(x.strip() for x in rest.splitlines() if x.strip())
    assert len(seen) >= lines, f"child reported too little before the kill: {seen} {err}"
    return seen


def test_kill_during_config_saves_keeps_every_committed_version(studio_home: Path) -> None:
    proc = _spawn(
        """
        from studio.core.approval.lifecycle import Lifecycle
        from studio.core.documents import ConfigKind, SafetyConfig
        from studio.core.identity import create_identity
        from studio.core.settings import StudioSettings
        from studio.core.store import Store
        writer = create_identity("writer")
        store = Store.open()
        config = store.configs.create(SafetyConfig(id="c", title="C", kind=ConfigKind.FREE_FORM, text="v1"))
        lifecycle = Lifecycle(store, StudioSettings())
        n = 1
        while True:
            n += 1
            config = store.configs.save(config.model_copy(update={"text": f"version {n}\\n" * 200}))
            lifecycle.submit("c", writer, config.version)
            print(config.version, flush=True)
        """,
        studio_home,
    )
    reported = [int(x) for x in _kill_after(proc, 25)]
    with Store.open() as store:
        assert list(store.db.query("PRAGMA integrity_check")) == [{"integrity_check": "ok"}]
        history = store.configs.history("c")
        versions = [c.version for c in history]
        assert versions == list(range(1, len(versions) + 1))
        assert max(reported) <= versions[-1]
        for config in history[1:]:
            assert config.text == f"version {config.version}\n" * 200
        assert store.audit.verify() == []


def test_kill_during_atomic_file_writes_never_leaves_a_partial_file(studio_home: Path, tmp_path: Path) -> None:
    target = tmp_path / "export.yaml"
    atomic_write_text(target, "A" * 2_000_000)
    proc = _spawn(
        f"""
        from studio.core.fileio import atomic_write_text
        n = 0
        while True:
            n += 1
            atomic_write_text({str(target)!r}, ("A" if n % 2 else "B") * 2_000_000)
            print(n, flush=True)
        """,
        studio_home,
    )
    _kill_after(proc, 10)
    text = target.read_text(encoding="utf-8")
    assert text in {"A" * 2_000_000, "B" * 2_000_000}


def test_kill_during_a_check_then_resume_redoes_nothing(studio_home: Path) -> None:
    proc = _spawn(
        """
        from studio.core.documents import ConfigKind, Expectation, Probe, ProbeSuite, SafetyConfig
        from studio.core.evals.runner import CheckRunner, CheckSpec, ItemDone
        from studio.core.inference.fake import FakeBackend
        from studio.core.store import Store
        store = Store.open()
        suite = ProbeSuite(id="s", title="S", probes=[
            Probe(text=f"question {i}", expected=Expectation.ALLOWED) for i in range(40)])
        config = SafetyConfig(id="c", title="C", kind=ConfigKind.FREE_FORM, text="Be helpful.")
        runner = CheckRunner(store.runs, FakeBackend("cand", token_delay_s=0.002), FakeBackend("judge"))
        for event in runner.check(CheckSpec(suite=suite, configs=(config,))):
            if isinstance(event, ItemDone):
                print(event.run_id, event.probe_id, flush=True)
        """,
        studio_home,
    )
    reported = _kill_after(proc, 5)
    run_id = reported[0].split()[0]
    judged_before = {line.split()[1] for line in reported}

    from studio.core.evals.runner import CheckRunner
    from studio.core.inference.fake import FakeBackend
    from studio.core.store.runs import RunStatus

    with Store.open() as store:
        runs = store.runs
        before = {i.probe_id: i for i in runs.items(run_id)}
        assert judged_before <= {p for p, i in before.items() if i.judged}
        candidate = FakeBackend("cand")
        events = list(CheckRunner(store.runs, candidate, FakeBackend("judge")).execute(run_id))
        assert runs.get_run(run_id).status is RunStatus.FINISHED
        after = runs.items(run_id)
        assert all(i.judged for i in after)
        already_answered = sum(1 for i in before.values() if i.response is not None)
        assert len(candidate.requests) == 40 - already_answered
        for item in after:
            if before[item.probe_id].judged:
                assert item.response == before[item.probe_id].response
                assert item.judged_utc == before[item.probe_id].judged_utc
        assert events[-1].status is RunStatus.FINISHED


def test_kill_while_typing_loses_at_most_the_last_autosave(studio_home: Path) -> None:
    proc = _spawn(
        """
        from studio.core.store import Store
        from studio.core.store.drafts import DraftRepo
        store = Store.open()
        drafts = DraftRepo(store.db)
        text = ""
        n = 0
        while True:
            n += 1
            text += f"line {n}\\n"
            drafts.put("new:typing", text=text, title="Typing")
            print(n, flush=True)
        """,
        studio_home,
    )
    reported = [int(x) for x in _kill_after(proc, 30)]
    from studio.core.store.drafts import DraftRepo

    with Store.open() as store:
        draft = DraftRepo(store.db).get("new:typing")
        assert draft is not None
        lines = draft.text.splitlines()
        assert len(lines) >= max(reported)
        assert lines == [f"line {i}" for i in range(1, len(lines) + 1)]


@pytest.mark.parametrize("bad", [b"", b"\x00" * 100, b"SQLite format 3\x00" + b"\xff" * 200])
def test_a_damaged_database_file_is_refused_not_overwritten(studio_home: Path, bad: bytes) -> None:
    from studio.core.errors import StateError

    db_path = studio_home / "broken.db"
    db_path.write_bytes(bad)
    if bad == b"":
        with Store.open(db_path) as store:  # an empty file is a new database
            assert store.configs.list() == []
        return
    with pytest.raises(StateError, match="not a usable studio database"):
        Store.open(db_path)
    assert db_path.read_bytes() == bad
