"""The backend protocol: a backend turns chat messages into a stream of token events ending with a result.

Nothing here knows about threads of a GUI. Cancellation is cooperative: a :class:`CancelToken` is checked between
tokens, so a cancelled request stops within one token.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

# Plain values of one generation, defined outside inference so that the store can record them; part of this API.
from studio.core.generation import DecodingMode as DecodingMode
from studio.core.generation import GenerationParams as GenerationParams
from studio.core.generation import GenerationResult as GenerationResult
from studio.core.generation import StopReason as StopReason

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class Message:
    role: Role
    content: str


def chat(config_text: str | None, prompt: str) -> list[Message]:
    """The messages for one probe: the config in the system turn (if any), the prompt in the user turn."""
    messages = [Message("system", config_text)] if config_text else []
    messages.append(Message("user", prompt))
    return messages


def follow_up_messages(system: str | None, prompt: str, reply: str, question: str) -> list[Message]:
    """One exchange continued: the config, the prompt, the reply as the assistant gave it, then ``question``."""
    return [*chat(system, prompt), Message("assistant", reply), Message("user", question)]


@dataclass(frozen=True)
class FollowUp:
    """A question asked right after a reply, in the same conversation (a judge's question about that reply)."""

    question: str
    params: GenerationParams


class CancelToken:
    """Cooperative cancellation flag shared between the requester and the thread doing the work."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``, waking early on cancel; True when cancelled."""
        return self._event.wait(seconds)


@dataclass(frozen=True)
class TokenEvent:
    """One piece of generated text (usually one token)."""

    text: str
    index: int


StreamEvent = TokenEvent | GenerationResult


@dataclass(frozen=True)
class BackendInfo:
    """What is loaded, for status bars and provenance."""

    name: str
    kind: str  # "llama.cpp", "openai", "fake"
    model_path: str | None = None
    model_sha256: str | None = None
    context_length: int = 0
    device: str = "cpu"  # "cpu", "cuda", "metal", "remote"
    gpu_layers: int = 0
    chat_template_sha256: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Backend(Protocol):
    """A model that streams replies to chat messages."""

    @property
    def info(self) -> BackendInfo: ...

    def stream(
        self,
        messages: Sequence[Message],
        params: GenerationParams,
        cancel: CancelToken | None = None,
    ) -> Iterator[StreamEvent]:
        """Yield :class:`TokenEvent` s, then exactly one :class:`GenerationResult` as the last item."""
        ...

    def count_tokens(self, text: str) -> int: ...

    def close(self) -> None: ...


def max_concurrency(backend: Backend) -> int:
    """How many requests a backend serves at once: a server endpoint says so (``max_concurrency``); a local model
    serves one stream at a time (its batching is :class:`BatchBackend`)."""
    value = getattr(backend, "max_concurrency", 1)
    return value if isinstance(value, int) and value > 1 else 1


@runtime_checkable
class BatchBackend(Backend, Protocol):
    """A backend that can decode many prompts sharing one system turn together."""

    def stream_batch(
        self,
        system: str | None,
        prompts: Sequence[str],
        params: GenerationParams,
        cancel: CancelToken | None = None,
    ) -> Iterator[tuple[int, StreamEvent]]:
        """Yield ``(prompt_index, event)``; each prompt ends with its own :class:`GenerationResult`."""
        ...

    def stream_requests(
        self,
        requests: Sequence[Sequence[Message]],
        params: GenerationParams | Sequence[GenerationParams],
        cancel: CancelToken | None = None,
    ) -> Iterator[tuple[int, StreamEvent]]:
        """Like :meth:`stream_batch` for whole chats (one params for all, or one per chat)."""
        ...


@runtime_checkable
class ExchangeBackend(BatchBackend, Protocol):
    """A batching backend that can ask follow-up questions about each reply while the other replies decode."""

    def stream_exchanges(
        self,
        system: str | None,
        prompts: Sequence[str],
        params: GenerationParams,
        follow_ups: Sequence[FollowUp],
        cancel: CancelToken | None = None,
    ) -> Iterator[tuple[int, int, StreamEvent]]:
        """Yield ``(prompt_index, step, event)``. Step 0 is the reply to the prompt; step ``k`` answers
        ``follow_ups[k - 1]``, asked in the conversation :func:`follow_up_messages` builds from that reply (never
        after another follow-up's answer). Every step ends with its own :class:`GenerationResult`; a cancelled
        reply gets no follow-ups."""
        ...


def complete_many(
    backend: Backend,
    requests: Sequence[Sequence[Message]],
    params: GenerationParams | Sequence[GenerationParams],
    cancel: CancelToken | None = None,
) -> Iterator[tuple[int, GenerationResult]]:
    """The result of every chat as it finishes (any order): decoded together where the backend batches, sent side
    by side where it is a server that takes several requests at once (failures then come as one
    :class:`~studio.core.inference.concurrent.RequestsFailed` at the end)."""
    if isinstance(backend, BatchBackend):
        for index, event in backend.stream_requests(requests, params, cancel):
            if isinstance(event, GenerationResult):
                yield index, event
        return
    if max_concurrency(backend) > 1:
        from studio.core.inference.concurrent import complete_concurrently

        yield from complete_concurrently(backend, requests, params, cancel)
        return
    for index, messages in enumerate(requests):
        own = params if isinstance(params, GenerationParams) else params[index]
        yield index, complete(backend, messages, own, cancel)


def complete(
    backend: Backend,
    messages: Sequence[Message],
    params: GenerationParams,
    cancel: CancelToken | None = None,
) -> GenerationResult:
    """Run a stream to the end and return its result."""
    result: GenerationResult | None = None
    for event in backend.stream(messages, params, cancel):
        if isinstance(event, GenerationResult):
            result = event
    if result is None:
        raise RuntimeError("backend stream ended without a result")
    return result
