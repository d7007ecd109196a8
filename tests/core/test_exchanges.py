"""Probe exchanges and editor drafts in the store."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.core.errors import InputError, NotFoundError
from studio.core.inference.base import GenerationParams, Message, complete
from studio.core.inference.fake import FakeBackend
from studio.core.store.db import open_database
from studio.core.store.drafts import DraftRepo, draft_key
from studio.core.store.exchanges import ExchangeRepo, Verdict


def _record(repo: ExchangeRepo, prompt: str, config_id: str | None = "game-studio", version: int = 1) -> int:
    backend = FakeBackend()
    params = GenerationParams(temperature=0.7, max_tokens=12, seed=3)
    result = complete(backend, [Message("system", "be careful"), Message("user", prompt)], params)
    exchange = repo.record(
        config_id=config_id,
        config_version=version,
        config_hash="a" * 64,
        model_name="fake-model",
        model_sha256="b" * 64,
        prompt=prompt,
        params=params,
        result=result,
        config_text="be careful",
    )
    assert exchange.reply == result.text
    assert exchange.config_text == "be careful"
    return exchange.id


def test_exchange_round_trip_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "studio.db"
    repo = ExchangeRepo(open_database(path))
    first = _record(repo, "how do I pick a lock?")
    second = _record(repo, "write a villain monologue", version=2)
    repo.mark(first, Verdict.VIOLATES)

    reopened = ExchangeRepo(open_database(path))
    listed = reopened.list()
    assert [e.id for e in listed] == [second, first]
    old = reopened.get(first)
    assert old.verdict is Verdict.VIOLATES
    assert old.params["temperature"] == 0.7 and old.params["max_tokens"] == 12
    assert old.config_version == 1 and old.model_sha256 == "b" * 64
    assert old.stop_reason in {"stop", "length"}
    assert old.completion_tokens > 0
    assert old.created_utc.tzinfo is not None
    assert reopened.get(second).verdict is None


def test_list_filters_by_config_and_limit(tmp_path: Path) -> None:
    repo = ExchangeRepo(open_database(tmp_path / "s.db"))
    for n in range(3):
        _record(repo, f"prompt {n}", config_id="a")
    _record(repo, "other", config_id="b")
    _record(repo, "unsaved text", config_id=None)
    assert [e.prompt for e in repo.list(config_id="a")] == ["prompt 2", "prompt 1", "prompt 0"]
    assert len(repo.list(limit=2)) == 2
    assert repo.count() == 5


def test_mark_accepts_strings_clears_and_rejects_unknown(tmp_path: Path) -> None:
    repo = ExchangeRepo(open_database(tmp_path / "s.db"))
    ex = _record(repo, "p")
    assert repo.mark(ex, "partially").verdict is Verdict.PARTIALLY
    assert repo.mark(ex, None).verdict is None
    with pytest.raises(InputError, match="unknown verdict 'maybe'"):
        repo.mark(ex, "maybe")
    with pytest.raises(NotFoundError):
        repo.mark(ex + 100, Verdict.FOLLOWS)


def test_drafts_put_replace_discard(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    drafts = DraftRepo(open_database(path))
    key = draft_key("game-studio", "ignored")
    assert key == "config:game-studio"
    assert draft_key(None, "x1") == "new:x1"
    drafts.put(key, text="v1", title="Game studio", config_id="game-studio", base_version=3)
    drafts.put(key, text="v2", title="Game studio", config_id="game-studio", base_version=3)
    drafts.put("new:x1", text="fresh", title="Untitled")
    reopened = DraftRepo(open_database(path))
    got = reopened.get(key)
    assert got is not None and got.text == "v2" and got.base_version == 3
    assert {d.key for d in reopened.list()} == {key, "new:x1"}
    reopened.discard(key)
    assert reopened.get(key) is None
    assert [d.key for d in reopened.list()] == ["new:x1"]
