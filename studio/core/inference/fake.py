"""A deterministic backend for fast tests and demos. It loads no model and its replies carry no meaning.

The reply depends only on the messages and the seed, so the same request always streams the same tokens.
With ``params.json_schema`` set it emits a JSON value that satisfies the (simple) schema, so judge code paths
can be exercised without a model.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Iterator, Sequence
from typing import Any

from studio.core.inference.base import (
    BackendInfo,
    CancelToken,
    DecodingMode,
    GenerationParams,
    GenerationResult,
    Message,
    StopReason,
    StreamEvent,
    TokenEvent,
)
from studio.core.inference.timing import StreamClock

#: ``BackendInfo.kind`` of the test model; a check run that records it is no approval evidence (see the gate).
KIND = "fake"

_WORDS = (
    "the policy allows a general answer here but not the specific steps so I will explain the safe parts "
    "and point to official resources while declining anything that would cause harm to a person"
).split()


def _sample_json(schema: dict[str, Any], rng: random.Random) -> Any:
    if "enum" in schema:
        return rng.choice(schema["enum"])
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type", "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props = schema.get("properties", {})
        return {name: _sample_json(sub, rng) for name, sub in props.items()}
    if kind == "array":
        return [_sample_json(schema.get("items", {}), rng) for _ in range(schema.get("minItems", 0))]
    if kind == "integer":
        low = int(schema.get("minimum", 0))
        high = int(schema.get("maximum", low + 5))
        return rng.randint(low, high)
    if kind == "number":
        return round(rng.uniform(float(schema.get("minimum", 0)), float(schema.get("maximum", 1))), 3)
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "null":
        return None
    return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(2, 6)))


class FakeBackend:
    """Deterministic stand-in for a model. ``token_delay_s`` makes streaming visible in UI tests."""

    def __init__(self, name: str = "fake-model", token_delay_s: float = 0.0, context_length: int = 8192) -> None:
        self._info = BackendInfo(name=name, kind=KIND, context_length=context_length, device="cpu")
        self.token_delay_s = token_delay_s
        self.requests: list[tuple[tuple[Message, ...], GenerationParams]] = []

    @property
    def info(self) -> BackendInfo:
        return self._info

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def close(self) -> None:
        pass

    def _reply_tokens(self, messages: Sequence[Message], params: GenerationParams) -> list[str]:
        digest = hashlib.sha256(
            json.dumps([[m.role, m.content] for m in messages]).encode() + str(params.seed).encode()
        ).digest()
        rng = random.Random(digest)
        if params.json_schema is not None:
            text = json.dumps(_sample_json(params.json_schema, rng))
            return [text[i : i + 4] for i in range(0, len(text), 4)]
        count = rng.randint(8, 24)
        return [("" if i == 0 else " ") + rng.choice(_WORDS) for i in range(count)]

    def stream(
        self,
        messages: Sequence[Message],
        params: GenerationParams,
        cancel: CancelToken | None = None,
    ) -> Iterator[StreamEvent]:
        self.requests.append((tuple(messages), params))
        clock = StreamClock()
        pieces: list[str] = []
        stop = StopReason.STOP
        tokens = self._reply_tokens(messages, params)
        if len(tokens) > params.max_tokens:
            tokens = tokens[: params.max_tokens]
            stop = StopReason.LENGTH
        for index, piece in enumerate(tokens):
            if cancel is not None and cancel.cancelled:
                stop = StopReason.CANCELLED
                break
            if self.token_delay_s:
                time.sleep(self.token_delay_s)
            clock.token()
            pieces.append(piece)
            yield TokenEvent(piece, index)
        yield GenerationResult(
            text="".join(pieces),
            stop_reason=stop,
            prompt_tokens=sum(self.count_tokens(m.content) for m in messages),
            completion_tokens=len(pieces),
            cached_tokens=0,
            time_to_first_token_s=clock.ttft,
            decode_tokens_per_s=clock.rate(len(pieces)),
            total_s=clock.elapsed(),
            mode=DecodingMode.FAKE,
        )

    def stream_batch(
        self,
        system: str | None,
        prompts: Sequence[str],
        params: GenerationParams,
        cancel: CancelToken | None = None,
    ) -> Iterator[tuple[int, StreamEvent]]:
        for index, prompt in enumerate(prompts):
            messages = [Message("system", system)] if system else []
            messages.append(Message("user", prompt))
            for event in self.stream(messages, params, cancel):
                yield index, event

    def stream_requests(
        self,
        requests: Sequence[Sequence[Message]],
        params: GenerationParams | Sequence[GenerationParams],
        cancel: CancelToken | None = None,
    ) -> Iterator[tuple[int, StreamEvent]]:
        for index, messages in enumerate(requests):
            own = params if isinstance(params, GenerationParams) else params[index]
            for event in self.stream(messages, own, cancel):
                yield index, event
