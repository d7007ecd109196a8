"""What one generation was asked for and what it produced: plain values shared by inference, the store and evals.

These types live outside ``studio.core.inference`` because the store records them (probe exchanges) and the
store must not depend on the code that runs models. ``studio.core.inference.base`` re-exports them as part
of the backend protocol.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


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
