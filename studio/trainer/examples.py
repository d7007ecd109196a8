"""Training examples from preference pairs: reading a pairs file, holding out prompts, and fitting each example
to the length limits with the model's own chat template.

Length limits never cut the user turn: responses are shortened first, and an example whose prompt alone does not
fit is dropped (the caller counts it).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.core.errors import InputError
from studio.core.records import iter_json_lines

REQUIRED_PAIR_FIELDS = ("prompt", "chosen", "rejected")
#: A response cut to fewer tokens than this teaches nothing; the example is dropped instead.
MIN_RESPONSE_TOKENS = 8


@dataclass(frozen=True)
class Example:
    system: str | None
    prompt: str
    chosen: str
    rejected: str


def load_pairs(path: Path) -> list[dict[str, Any]]:
    """Read a pairs JSONL file; a bad line is an InputError naming the file and line."""
    if not path.is_file():
        raise InputError(path, "data file not found")
    rows: list[dict[str, Any]] = []
    for number, row in iter_json_lines(path):
        for name in REQUIRED_PAIR_FIELDS:
            if not isinstance(row.get(name), str) or not row[name].strip():
                raise InputError(path, f"field {name!r} must be a non-empty string", line=number)
        if row.get("system") is not None and not isinstance(row["system"], str):
            raise InputError(path, "field 'system' must be a string or null", line=number)
        rows.append(row)
    if not rows:
        raise InputError(path, "no pairs in the file")
    return rows


def split_held_out(
    rows: Sequence[dict[str, Any]], fraction: float, seed: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Split by prompt (never the same prompt on both sides); returns (train, held_out)."""
    if fraction <= 0:
        return list(rows), []
    prompts = sorted({str(r.get("prompt_id") or r["prompt"]) for r in rows})
    random.Random(seed).shuffle(prompts)
    held = set(prompts[: max(1, round(len(prompts) * fraction))])
    train = [r for r in rows if str(r.get("prompt_id") or r["prompt"]) not in held]
    return train, [r for r in rows if str(r.get("prompt_id") or r["prompt"]) in held]


def prompt_messages(system: str | None, prompt: str) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": prompt})
    return messages


def _ids(tokenizer: Any, messages: list[dict[str, str]], add_generation_prompt: bool) -> list[int]:
    encoded = tokenizer.apply_chat_template(messages, add_generation_prompt=add_generation_prompt, tokenize=True)
    if hasattr(encoded, "keys"):
        encoded = encoded["input_ids"]
    return list(encoded)


def fit_response(tokenizer: Any, prompt_ids_count: int, response: str, budget: int) -> str | None:
    """``response`` shortened so the prompt plus the rendered reply fits ``budget`` tokens (``None``: no room)."""
    ids = tokenizer.encode(response, add_special_tokens=False)
    room = budget - prompt_ids_count
    if len(ids) <= room:
        return response
    if room < MIN_RESPONSE_TOKENS:
        return None
    return str(tokenizer.decode(ids[:room], skip_special_tokens=False)).rstrip()


def fit_example(tokenizer: Any, example: Example, max_length: int, max_prompt_length: int) -> Example | None:
    """The example within the limits, cutting responses only; ``None`` when the prompt itself is too long."""
    messages = prompt_messages(example.system, example.prompt)
    prompt_len = len(_ids(tokenizer, messages, True))
    if prompt_len > max_prompt_length:
        return None
    fitted: list[str] = []
    for response in (example.chosen, example.rejected):
        # Template tokens around the reply (end-of-turn markers) count against the budget too.
        full = _ids(tokenizer, [*messages, {"role": "assistant", "content": response}], False)
        overhead = len(full) - prompt_len - len(tokenizer.encode(response, add_special_tokens=False))
        cut = fit_response(tokenizer, prompt_len + max(0, overhead), response, max_length)
        if cut is None:
            return None
        fitted.append(cut)
    return Example(example.system, example.prompt, fitted[0], fitted[1])


def examples_from_rows(rows: Sequence[dict[str, Any]]) -> list[Example]:
    return [Example(r.get("system") or None, r["prompt"], r["chosen"], r["rejected"]) for r in rows]


def sft_examples(examples: Sequence[Example]) -> list[Example]:
    """Chosen replies, once each."""
    seen: set[tuple[str | None, str, str]] = set()
    unique: list[Example] = []
    for example in examples:
        key = (example.system, example.prompt, example.chosen)
        if key not in seen:
            seen.add(key)
            unique.append(example)
    return unique
