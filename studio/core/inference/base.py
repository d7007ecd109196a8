"""The backend protocol: a backend turns chat messages into a stream of token events ending with a result.

Nothing here knows about threads of a GUI. Cancellation is cooperative: a :class:`CancelToken` is checked between
tokens, so a cancelled request stops within one token.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, Protocol, runtime_checkable

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


@dataclass(frozen=True)
class GenerationParams:
    temperature: float = 0.0
    top_p: float = 0.95
    top_k: int = 40
    max_tokens: int = 256
    seed: int = 0
    repeat_penalty: float = 1.1
    stop: tuple[str, ...] = ()
    #: A JSON Schema the output must satisfy (grammar-constrained where the backend supports it).
    json_schema: dict[str, Any] | None = None

    def as_record(self) -> dict[str, Any]:
        """Plain dict for provenance records."""
        return {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "top_k": self.top_k,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
            "repeat_penalty": self.repeat_penalty,
            "stop": list(self.stop),
            "json_schema": self.json_schema,
        }


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


class StopReason(StrEnum):
    STOP = "stop"  # end-of-generation token or a stop string
    LENGTH = "length"  # max_tokens reached (or the context filled up)
    CANCELLED = "cancelled"


class DecodingMode(StrEnum):
    SEQUENTIAL = "sequential"
    BATCHED = "batched"
    REMOTE = "remote"
    FAKE = "fake"


@dataclass(frozen=True)
class TokenEvent:
    """One piece of generated text (usually one token)."""

    text: str
    index: int


@dataclass(frozen=True)
class GenerationResult:
    """The end of a stream: what was generated and how fast."""

    text: str
    stop_reason: StopReason
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    time_to_first_token_s: float | None
    decode_tokens_per_s: float | None
    total_s: float
    mode: DecodingMode = DecodingMode.SEQUENTIAL
    extra: dict[str, Any] = field(default_factory=dict)


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
