"""Two sides on the same probes: one model alternates between the configs, two models stream at once."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from studio.core.inference.base import (
    CancelToken,
    GenerationParams,
    GenerationResult,
    Message,
    StopReason,
    StreamEvent,
    TokenEvent,
)
from studio.core.inference.fake import FakeBackend
from studio.core.inference.pair import PairEvent, Side, stream_pair

PARAMS = GenerationParams(max_tokens=12, temperature=0.0)


def _results(events: list[PairEvent]) -> list[tuple[int, int]]:
    return [(e.side, e.probe) for e in events if isinstance(e.event, GenerationResult)]


def test_one_model_answers_a_then_b_for_each_probe() -> None:
    model = FakeBackend()
    events = list(
        stream_pair([Side(model, "Config A."), Side(model, "Config B.")], ["p1", "p2"], PARAMS, CancelToken())
    )
    assert _results(events) == [(0, 0), (1, 0), (0, 1), (1, 1)]
    systems = [request[0][0].content for request in model.requests]
    assert systems == ["Config A.", "Config B.", "Config A.", "Config B."]
    replies = {(e.side, e.probe): e.event.text for e in events if isinstance(e.event, GenerationResult)}
    for (side, probe), text in replies.items():
        streamed = "".join(
            e.event.text for e in events if isinstance(e.event, TokenEvent) and (e.side, e.probe) == (side, probe)
        )
        assert streamed == text


class _Gate(FakeBackend):
    """A fake model that records which threads it streamed on and can wait for the other side."""

    def __init__(self, name: str, barrier: threading.Barrier | None = None, fail: bool = False) -> None:
        super().__init__(name=name, token_delay_s=0.001)
        self.barrier = barrier
        self.fail = fail
        self.threads: set[str] = set()

    def stream(
        self, messages: Sequence[Message], params: GenerationParams, cancel: CancelToken | None = None
    ) -> Iterator[StreamEvent]:
        self.threads.add(threading.current_thread().name)
        if self.barrier is not None:
            self.barrier.wait(timeout=5)  # both sides must be streaming at the same time to pass
        if self.fail:
            raise RuntimeError(f"{self.info.name} broke")
        yield from super().stream(messages, params, cancel)


def test_two_models_stream_at_the_same_time_on_their_own_threads() -> None:
    barrier = threading.Barrier(2)
    a, b = _Gate("a", barrier), _Gate("b", barrier)
    events = list(stream_pair([Side(a, "Config."), Side(b, "Config.")], ["p1"], PARAMS, CancelToken()))
    assert sorted(_results(events)) == [(0, 0), (1, 0)]
    assert a.threads.isdisjoint(b.threads) and threading.current_thread().name not in a.threads | b.threads


def test_a_failing_side_stops_the_pair_and_is_reported() -> None:
    good, bad = FakeBackend(token_delay_s=0.002), _Gate("bad", fail=True)
    with pytest.raises(RuntimeError, match="bad broke"):
        list(stream_pair([Side(good, "A"), Side(bad, "B")], ["p1", "p2", "p3"], PARAMS, CancelToken()))
    assert not [t for t in threading.enumerate() if t.name.startswith("studio-pair")]


def test_cancel_stops_both_sides() -> None:
    cancel = CancelToken()
    slow_a, slow_b = FakeBackend(token_delay_s=0.02), FakeBackend(token_delay_s=0.02)  # 8+ tokens: 160+ ms a reply
    events = []
    for event in stream_pair([Side(slow_a, "A"), Side(slow_b, "B")], ["p1", "p2"], PARAMS, cancel):
        events.append(event)
        cancel.cancel()
    stops = [e.event.stop_reason for e in events if isinstance(e.event, GenerationResult)]
    assert stops and all(reason is StopReason.CANCELLED for reason in stops)
    assert all(probe == 0 for _side, probe in _results(events))  # the second prompt was never sent


@pytest.mark.real_model
def test_switching_configs_on_one_model_reuses_their_cached_prefixes(embedded_model: Path, tmp_path: Path) -> None:
    from studio.core.inference.llama_backend import LlamaCppBackend, LlamaSettings

    settings = LlamaSettings(gpu="cpu", max_context=512, n_threads=2, cache_dir=tmp_path / "cache")
    with LlamaCppBackend(embedded_model, settings, name="smollm2") as model:
        sides = [
            Side(model, "You help a game studio write dark fiction. Answer in one short sentence."),
            Side(model, "You help a children's publisher. Keep everything gentle. Answer in one short sentence."),
        ]
        params = GenerationParams(max_tokens=6, temperature=0.0)
        events = list(stream_pair(sides, ["Name a colour.", "Name an animal."], params, CancelToken()))
    results = {(e.side, e.probe): e.event for e in events if isinstance(e.event, GenerationResult)}
    assert results[(0, 0)].cached_tokens == 0 and results[(1, 0)].cached_tokens == 0
    for side in (0, 1):
        second = results[(side, 1)]
        assert second.cached_tokens == second.extra["prefix_tokens"] > 0, side  # the config's prefix came back
        assert second.extra["prefix_cache"] in {"memory", "disk"}
