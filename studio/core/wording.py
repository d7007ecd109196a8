"""Reply timings in words a policy author reads at a glance, and the engineer's figures beside them (a tooltip in
the window, a second line on the command line)."""

from __future__ import annotations

from studio.core.inference.base import GenerationResult, StopReason

STOP_WORDS: dict[StopReason, str] = {
    StopReason.STOP: "reply complete",
    StopReason.LENGTH: "cut at the length limit",
    StopReason.CANCELLED: "stopped",
}


def seconds_text(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


def cache_words(cached_tokens: int) -> str:
    """Whether the model's reading of the config came from the prefix cache."""
    return "config reused from cache" if cached_tokens > 0 else "config read afresh"


def reply_summary(result: GenerationResult) -> str:
    """One line: first word after 1.6 s · 42 tokens · config reused from cache · reply complete."""
    first = (
        f"first word after {seconds_text(result.time_to_first_token_s)}"
        if result.time_to_first_token_s is not None
        else "no words"
    )
    return " · ".join(
        (first, f"{result.completion_tokens} tokens", cache_words(result.cached_tokens), STOP_WORDS[result.stop_reason])
    )


def reply_details(result: GenerationResult) -> str:
    """The same reply's figures in engineering terms, for a tooltip."""
    ttft = f"{result.time_to_first_token_s * 1000:.0f} ms" if result.time_to_first_token_s is not None else "–"
    speed = f"{result.decode_tokens_per_s:.1f} tok/s" if result.decode_tokens_per_s else "– tok/s"
    return (
        f"Time to first token {ttft}; decoding {speed}; {result.completion_tokens} completion tokens; "
        f"{result.cached_tokens} of {result.prompt_tokens} prompt tokens from the prefix cache; "
        f"stop reason: {result.stop_reason.value}; {result.total_s:.2f} s in all."
    )
