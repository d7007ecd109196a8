"""One probe, two sides: the same prompts sent under two configs, two versions of a config or two models, with the
replies of both sides streamed as one sequence of events.

One model serving both sides has one owner thread (see :mod:`llama_backend`), so its requests alternate: A then B
for each prompt. Each switch puts the other config's prefix back from the prefix cache instead of reading the
config again. Two models have two owner threads; each side then streams on a thread of its own, at the same time.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from studio.core.inference.base import Backend, CancelToken, GenerationParams, StreamEvent, chat

SIDES = 2


@dataclass(frozen=True)
class Side:
    """One side of the comparison: the backend that answers and the config text it answers under."""

    backend: Backend
    system: str


@dataclass(frozen=True)
class PairEvent:
    """A token or a final result of side ``side`` (0 = A, 1 = B) on prompt number ``probe``."""

    side: int
    probe: int
    event: StreamEvent


def stream_pair(
    sides: Sequence[Side], prompts: Sequence[str], params: GenerationParams, cancel: CancelToken
) -> Iterator[PairEvent]:
    """Every prompt under both sides; stops before the next token once ``cancel`` is set."""
    if len(sides) != SIDES:
        raise ValueError("a side-by-side comparison has exactly two sides")
    if sides[0].backend is sides[1].backend:
        yield from _alternating(sides, prompts, params, cancel)
    else:
        yield from _concurrent(sides, prompts, params, cancel)


def _one_side(
    index: int, side: Side, prompts: Sequence[str], params: GenerationParams, cancel: CancelToken
) -> Iterator[PairEvent]:
    for probe, prompt in enumerate(prompts):
        if cancel.cancelled:
            return
        for event in side.backend.stream(chat(side.system, prompt), params, cancel):
            yield PairEvent(index, probe, event)


def _alternating(
    sides: Sequence[Side], prompts: Sequence[str], params: GenerationParams, cancel: CancelToken
) -> Iterator[PairEvent]:
    for probe, prompt in enumerate(prompts):
        for index, side in enumerate(sides):
            for event in _one_side(index, side, [prompt], params, cancel):
                yield PairEvent(index, probe, event.event)


_DONE = object()


def _concurrent(
    sides: Sequence[Side], prompts: Sequence[str], params: GenerationParams, cancel: CancelToken
) -> Iterator[PairEvent]:
    """Both sides at once, each on its own thread; events arrive in the order they were produced. A failure on
    either side stops the other and is raised here."""
    events: queue.Queue[object] = queue.Queue()
    stop = CancelToken()

    def feed(index: int, side: Side) -> None:
        try:
            for event in _one_side(index, side, prompts, params, _Either(cancel, stop)):
                events.put(event)
        except BaseException as exc:  # handed to the consuming thread
            events.put(exc)
        finally:
            events.put(_DONE)

    threads = [
        threading.Thread(target=feed, args=(index, side), name=f"studio-pair-{index}")
        for index, side in enumerate(sides)
    ]
    for thread in threads:
        thread.start()
    try:
        running = len(threads)
        while running:
            item = events.get()
            if item is _DONE:
                running -= 1
            elif isinstance(item, BaseException):
                raise item
            else:
                assert isinstance(item, PairEvent)
                yield item
    finally:
        stop.cancel()
        for thread in threads:
            thread.join()


class _Either(CancelToken):
    """Cancelled when either the caller's token or the pair's own stop token is."""

    def __init__(self, first: CancelToken, second: CancelToken) -> None:
        super().__init__()
        self._tokens = (first, second)

    def cancel(self) -> None:
        self._tokens[1].cancel()

    @property
    def cancelled(self) -> bool:
        return any(token.cancelled for token in self._tokens)
