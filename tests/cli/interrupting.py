"""A check whose candidate is interrupted part-way, for the cancel and resume tests of the command line."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import pytest

from studio.core.inference import fake
from studio.core.inference.base import CancelToken, GenerationParams, Message, StreamEvent
from studio.core.inference.fake import FakeBackend


def candidate_interrupted_at(monkeypatch: pytest.MonkeyPatch, reply: int, interrupt: Callable[[], None]) -> None:
    """``--backend fake`` checks get a candidate that calls ``interrupt`` as it starts its ``reply``-th reply; the
    judge is the plain test model. Undo with ``monkeypatch.setattr(fake, "FakeBackend", FakeBackend)``."""

    class Interrupted(FakeBackend):
        replies = 0

        def stream(
            self, messages: Sequence[Message], params: GenerationParams, cancel: CancelToken | None = None
        ) -> Iterator[StreamEvent]:
            self.replies += 1
            if self.replies == reply:
                interrupt()
            yield from super().stream(messages, params, cancel)

    monkeypatch.setattr(fake, "FakeBackend", lambda name: (Interrupted if "candidate" in name else FakeBackend)(name))
