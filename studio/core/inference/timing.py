"""One definition of time to first token and decode speed, shared by every backend.

Decode speed counts the tokens after the first one over the time between the first and the last token: the first
token's time belongs to prompt processing (TTFT), so counting it in the rate would mix the two phases and make
short replies look slow. A reply of fewer than two tokens has no decode rate.
"""

from __future__ import annotations

import time


def decode_rate(tokens: int, first_token_at: float | None, last_token_at: float | None) -> float | None:
    """Tokens per second of the decode phase, or None when it cannot be measured."""
    if first_token_at is None or last_token_at is None or tokens < 2:
        return None
    span = last_token_at - first_token_at
    return (tokens - 1) / span if span > 0 else None


class StreamClock:
    """Marks the start of a request and the arrival of tokens; reads off TTFT, decode speed and total time."""

    def __init__(self, started: float | None = None) -> None:
        self.started = time.perf_counter() if started is None else started
        self.first_token_at: float | None = None
        self.last_token_at: float | None = None

    def token(self, now: float | None = None) -> None:
        """Record that a token (or a piece of text) arrived."""
        now = time.perf_counter() if now is None else now
        if self.first_token_at is None:
            self.first_token_at = now
        self.last_token_at = now

    @property
    def ttft(self) -> float | None:
        return None if self.first_token_at is None else self.first_token_at - self.started

    def rate(self, tokens: int) -> float | None:
        return decode_rate(tokens, self.first_token_at, self.last_token_at)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started
