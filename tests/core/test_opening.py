"""Opening models: user settings honoured everywhere, flags override only what they name, nothing leaks."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import ClassVar

import pytest

from studio.core.errors import NotFoundError
from studio.core.inference import opening
from studio.core.inference.base import Backend
from studio.core.inference.fake import FakeBackend
from studio.core.inference.opening import LoadOptions, llama_settings, load_options, open_candidate_and_judge
from studio.core.inference.timing import StreamClock, decode_rate
from studio.core.settings import InferenceSettings, StudioSettings, load_settings, save_settings
from studio.core.store import Store


def test_user_settings_apply_and_flags_override_only_what_they_name() -> None:
    user = InferenceSettings(gpu="cpu", max_context=2048, cache_budget_mb=7)
    settings = llama_settings(LoadOptions(), user)
    assert (settings.gpu, settings.max_context, settings.cache_budget_mb) == ("cpu", 2048, 7)
    assert settings.cache_dir is not None

    settings = llama_settings(LoadOptions(gpu=3, threads=2), user)
    assert (settings.gpu, settings.n_threads, settings.max_context, settings.cache_budget_mb) == (3, 2, 2048, 7)

    settings = llama_settings(LoadOptions(use_cache=False, max_context=512), user)
    assert (settings.cache_budget_mb, settings.cache_dir, settings.max_context) == (0, None, 512)


def test_saved_settings_are_read_when_none_are_given() -> None:
    save_settings(StudioSettings(inference=InferenceSettings(gpu=5, cache_budget_mb=9)))
    settings = llama_settings(LoadOptions())
    assert (settings.gpu, settings.cache_budget_mb) == (5, 9)
    assert load_settings().inference.gpu == 5


def test_command_flags_become_load_options() -> None:
    parser = argparse.ArgumentParser()
    opening.add_load_arguments(parser)
    options = load_options(parser.parse_args(["--gpu", "cpu", "--n-ctx", "1024"]))
    assert options == LoadOptions(gpu="cpu", max_context=1024)
    assert load_options(parser.parse_args([])) == LoadOptions()
    with pytest.raises(SystemExit):
        parser.parse_args(["--gpu", "-2"])


class _Tracked(FakeBackend):
    closed: ClassVar[list[str]] = []

    def close(self) -> None:
        self.closed.append(self.info.name)


def test_candidate_is_closed_when_the_judge_fails_to_load(monkeypatch: pytest.MonkeyPatch, store: Store) -> None:
    _Tracked.closed = []

    def fake_open(ref: str | None, *_: object, **__: object) -> Backend:
        if ref == "broken-judge":
            raise NotFoundError("'broken-judge' is neither a registered model nor an existing file")
        return _Tracked(ref or "default")

    monkeypatch.setattr(opening, "open_backend", fake_open)
    with (
        pytest.raises(NotFoundError),
        open_candidate_and_judge("cand", "broken-judge", LoadOptions(fake=True), store=store),
    ):
        pass
    assert _Tracked.closed == ["cand"]

    with open_candidate_and_judge("cand", "judge", LoadOptions(fake=True), store=store) as (candidate, judge):
        assert (candidate.info.name, judge.info.name) == ("cand", "judge")
    assert _Tracked.closed == ["cand", "judge", "cand"]

    with open_candidate_and_judge("cand", None, LoadOptions(fake=True), store=store) as (candidate, judge):
        assert judge is candidate
    assert _Tracked.closed == ["cand", "judge", "cand", "cand"]


@pytest.mark.real_model
def test_same_file_under_two_references_loads_once(embedded_model: Path, store: Store) -> None:
    with open_candidate_and_judge(
        str(embedded_model), str(embedded_model.resolve()), LoadOptions(threads=1), store=store
    ) as (
        candidate,
        judge,
    ):
        assert judge is candidate
        assert candidate.info.kind == "llama.cpp"


def test_decode_rate_counts_tokens_after_the_first() -> None:
    assert decode_rate(5, 1.0, 3.0) == 2.0
    assert decode_rate(1, 1.0, 1.0) is None
    assert decode_rate(3, None, None) is None
    clock = StreamClock(started=0.0)
    assert clock.ttft is None and clock.rate(0) is None
    clock.token(0.5)
    clock.token(1.5)
    assert clock.ttft == 0.5
    assert clock.rate(2) == 1.0
