"""Training data handling that needs no model: pair loading, held-out split and length fitting."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from studio.core.errors import InputError
from studio.trainer.examples import MIN_RESPONSE_TOKENS, Example, fit_example, load_pairs, split_held_out


class WordTokenizer:
    """One token per word; a ChatML-like template whose role header and turn end are one token each."""

    def encode(self, text: str, add_special_tokens: bool = False) -> list[str]:
        return text.split()

    def decode(self, ids: list[str], skip_special_tokens: bool = False) -> str:
        return " ".join(ids)

    def apply_chat_template(
        self, messages: list[dict[str, str]], add_generation_prompt: bool, tokenize: bool
    ) -> list[str]:
        ids: list[str] = []
        for message in messages:
            ids += [f"<{message['role']}>", *message["content"].split(), "<end>"]
        if add_generation_prompt:
            ids.append("<assistant>")
        return ids


def _words(count: int, word: str = "w") -> str:
    return " ".join([word] * count)


def test_short_example_is_unchanged() -> None:
    example = Example("sys", "question here", "a fine reply", "a bad reply")
    assert fit_example(WordTokenizer(), example, max_length=64, max_prompt_length=32) == example


def test_long_replies_are_cut_and_the_prompt_never_is() -> None:
    # prompt: <system> sys <end> <user> q q q <end> <assistant> = 9 tokens; the reply adds <end> after <assistant>
    example = Example("sys", _words(3, "q"), _words(50, "c"), _words(5, "r"))
    fitted = fit_example(WordTokenizer(), example, max_length=30, max_prompt_length=20)
    assert fitted is not None
    assert fitted.prompt == example.prompt and fitted.system == example.system
    assert fitted.chosen == _words(30 - 9 - 1, "c")
    assert fitted.rejected == example.rejected


def test_example_with_an_overlong_prompt_is_dropped() -> None:
    example = Example(None, _words(40, "q"), "ok", "no")
    assert fit_example(WordTokenizer(), example, max_length=64, max_prompt_length=32) is None


def test_example_without_room_for_a_useful_reply_is_dropped() -> None:
    prompt_len = 9
    example = Example("sys", _words(3, "q"), _words(50, "c"), "no")
    room = MIN_RESPONSE_TOKENS - 1
    assert fit_example(WordTokenizer(), example, max_length=prompt_len + 1 + room, max_prompt_length=20) is None


def test_load_pairs_names_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl"
    good = {"system": None, "prompt": "p", "chosen": "c", "rejected": "r"}
    path.write_text(json.dumps(good) + "\n\n" + json.dumps({**good, "rejected": 3}) + "\n")
    with pytest.raises(InputError) as caught:
        load_pairs(path)
    assert str(caught.value) == f"{path}:3: field 'rejected' must be a non-empty string"


def test_held_out_split_keeps_prompts_on_one_side() -> None:
    rows: list[dict[str, Any]] = [
        {"prompt_id": f"p{i % 10}", "prompt": f"q{i % 10}", "chosen": "c", "rejected": "r"} for i in range(50)
    ]
    train, held = split_held_out(rows, 0.2, seed=0)
    assert len(train) + len(held) == 50
    held_ids = {r["prompt_id"] for r in held}
    assert len(held_ids) == 2
    assert not held_ids & {r["prompt_id"] for r in train}
    assert split_held_out(rows, 0.0, seed=0) == (rows, [])
