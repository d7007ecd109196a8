"""Prompts for llama.cpp's own server (``llama-server``), rendered by the studio and sent as token ids.

The server's chat route renders the model's template around the message text and tokenizes the result with special
tokens enabled, so a probe that spells ``<|im_start|>system`` becomes a real system turn. Here the template the
server reports (``GET /props``) is rendered on the client (:class:`ChatTemplate`), the server's tokenizer turns the
template's fixed text into tokens with special tokens parsed and the message text with them off (``POST /tokenize``
with ``parse_special``), and the ids go to ``POST /completion``, which takes a token list as it is.

The runs are cut exactly as :class:`ChatRenderer` cuts them in process; the special-token spellings are learned from
the server: a token of the fixed text is special when its text, tokenized as plain text, is not that one token.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from studio.core.errors import BackendError
from studio.core.inference.base import GenerationParams, Message, StopReason
from studio.core.inference.chat_render import ChatTemplate, token_runs

#: Posts a JSON body to the server's ``/tokenize`` and returns its ``tokens`` list.
TokenizeCall = Callable[[dict[str, Any]], list[Any]]

#: Token lists kept per text (template runs and the configs that open every prompt repeat across requests).
_CACHE_LIMIT = 1024


class ServerPrompt:
    """Turns chats into the token ids a llama.cpp server should see, with message text never read as control
    tokens. Thread-safe: many requests render at once."""

    def __init__(self, template: ChatTemplate, tokenize: TokenizeCall, bos_text: str, bos_id: int | None) -> None:
        """``bos_id``: the token the server puts first when it tokenizes a prompt string (None: it adds none)."""
        self._template = template
        self._post = tokenize
        self._bos_text = bos_text
        self._bos_id = bos_id
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, bool], list[int]] = {}
        self._specials: set[str] = set()
        self._fixed_seen: set[str] = set()

    @classmethod
    def from_props(cls, props: dict[str, Any], tokenize: TokenizeCall) -> ServerPrompt | None:
        """The renderer for a server whose ``/props`` carries a chat template; None when it carries none."""
        template = props.get("chat_template")
        if not isinstance(template, str) or not template.strip():
            return None
        bos_text, eos_text = str(props.get("bos_token") or ""), str(props.get("eos_token") or "")
        plain = tokenize({"content": "a", "add_special": False})
        marked = tokenize({"content": "a", "add_special": True})
        bos_id = int(marked[0]) if len(marked) > len(plain) else None
        return cls(ChatTemplate(template, bos_text, eos_text), tokenize, bos_text, bos_id)

    def render(self, messages: Sequence[Message]) -> list[int]:
        """The prompt's token ids, ending with the assistant header."""
        pieces = self._template.pieces(messages, add_generation_prompt=True)
        self._learn_specials(p.text for p in pieces if not p.is_content)
        with self._lock:
            specials = sorted(self._specials, key=len, reverse=True)
        runs = token_runs(pieces, specials)
        tokens: list[int] = []
        if self._bos_id is not None and not (runs and runs[0] == (self._bos_text, True)):
            tokens.append(self._bos_id)
        for text, special in runs:
            tokens += self._tokens(text, special)
        return tokens

    def _tokens(self, text: str, special: bool) -> list[int]:
        key = (text, special)
        with self._lock:
            known = self._cache.get(key)
        if known is not None:
            return known
        tokens = [int(t) for t in self._post({"content": text, "parse_special": special, "add_special": False})]
        with self._lock:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = tokens
        return tokens

    def _learn_specials(self, fixed_texts: Iterable[str]) -> None:
        """Add the special-token spellings found in template text not looked at before."""
        for text in fixed_texts:
            with self._lock:
                if text in self._fixed_seen:
                    continue
            found = self._post({"content": text, "parse_special": True, "add_special": False, "with_pieces": True})
            for item in found:
                piece = item.get("piece") if isinstance(item, dict) else None
                if isinstance(piece, str) and piece and self._tokens(piece, False) != [int(item["id"])]:
                    with self._lock:
                        self._specials.add(piece)
            with self._lock:
                self._fixed_seen.add(text)


def completion_body(tokens: list[int], params: GenerationParams, extra_sampling: bool) -> dict[str, Any]:
    """The ``POST /completion`` request for a prompt of token ids (streamed)."""
    body: dict[str, Any] = {
        "prompt": tokens,
        "stream": True,
        "cache_prompt": True,
        "n_predict": params.max_tokens,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "seed": params.seed,
    }
    if params.stop:
        body["stop"] = list(params.stop)
    if extra_sampling:
        body["top_k"] = params.top_k
        body["repeat_penalty"] = params.repeat_penalty
    if params.json_schema is not None:
        body["json_schema"] = params.json_schema
    return body


def completion_event(chunk: dict[str, Any]) -> tuple[str, StopReason | None, dict[str, Any] | None]:
    """One streamed ``/completion`` event as (text, stop reason when it is the last, usage in the OpenAI shape)."""
    text = chunk.get("content")
    if text is not None and not isinstance(text, str):
        raise BackendError("the llama.cpp server sent a completion event without text")
    if not chunk.get("stop"):
        return text or "", None, None
    timings = chunk.get("timings") or {}
    usage = {
        "prompt_tokens": int(chunk.get("tokens_evaluated") or 0),
        "completion_tokens": int(chunk.get("tokens_predicted") or 0),
        "prompt_tokens_details": {"cached_tokens": int(timings.get("cache_n") or 0)},
    }
    reason = StopReason.LENGTH if chunk.get("stop_type") == "limit" else StopReason.STOP
    return text or "", reason, usage
