"""Chat rendering with the GGUF's own template, where message text can never become control tokens.

The template is rendered once with unique markers in place of every message's content. The rendered string is
split at the markers: the fixed parts (role headers, turn ends, BOS) are tokenized with special tokens enabled, and
each message's content with special tokens disabled, so a probe that contains ``<|im_start|>system`` stays text.

The rendered prompt of a ``[system, user]`` chat splits into the *system prefix* (everything up to the end of the
system turn) and the *continuation* (the user turn and the assistant header); the prefix is what the KV cache keeps.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jinja2 import TemplateError
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from studio.core.errors import BackendError
from studio.core.inference.base import Message, follow_up_messages

if TYPE_CHECKING:
    from llama_cpp import Llama

#: Used when a GGUF carries no chat template: ChatML, the format of the embedded model.
CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@dataclass(frozen=True)
class _Piece:
    text: str
    is_content: bool


class ChatTemplate:
    """A Jinja chat template whose output is split into the template's fixed text and the messages' text.

    Knows nothing of a tokenizer: :class:`ChatRenderer` tokenizes the pieces with llama.cpp in process, and a
    llama.cpp server backend has the server tokenize them (:mod:`server_prompt`)."""

    def __init__(self, template: str, bos_text: str, eos_text: str) -> None:
        self.template = template
        self._formatter = Jinja2ChatFormatter(template=template, eos_token=eos_text, bos_token=bos_text)

    def text(
        self, messages: Sequence[Message], add_generation_prompt: bool, contents: Sequence[str] | None = None
    ) -> str | None:
        """The rendered prompt (with ``contents`` in place of the messages' text), or None when the template fails."""
        payload: list[Any] = [
            {"role": m.role, "content": m.content if contents is None else contents[i]} for i, m in enumerate(messages)
        ]
        self._formatter.add_generation_prompt = add_generation_prompt
        try:
            return self._formatter(messages=payload).prompt
        except (TemplateError, ValueError, TypeError):
            return None

    def pieces(self, messages: Sequence[Message], add_generation_prompt: bool) -> list[_Piece]:
        """The rendered prompt as fixed and content pieces, in order; raises :class:`BackendError` when the
        template refuses the messages or rewrites their text beyond recognition."""
        nonce = secrets.token_hex(8)
        markers = [f"\u27e6studio-{nonce}-{i}\u27e7" for i in range(len(messages))]
        marked = self.text(messages, add_generation_prompt, contents=markers)
        real = self.text(messages, add_generation_prompt)
        if marked is None or real is None:
            raise BackendError("the model's chat template refused these messages (roles or order not supported)")
        fixed: list[str] = []
        order: list[int] = []
        rest = marked
        while True:
            positions = [(rest.find(m), i) for i, m in enumerate(markers) if m in rest]
            if not positions:
                fixed.append(rest)
                break
            at, index = min(positions)
            fixed.append(rest[:at])
            order.append(index)
            rest = rest[at + len(markers[index]) :]
        for transform in _CONTENT_TRANSFORMS:
            contents = [transform(messages[i].content) for i in order]
            pieces = [_Piece(fixed[0], False)]
            for content, tail in zip(contents, fixed[1:], strict=True):
                pieces += [_Piece(content, True), _Piece(tail, False)]
            if "".join(p.text for p in pieces) == real:
                return [p for p in pieces if p.text]
        raise BackendError("the model's chat template changes message text in a way that cannot be tokenized safely")


class ChatRenderer:
    """Turns chat messages into token ids with the model's embedded chat template."""

    def __init__(self, llm: Llama, template: str | None = None) -> None:
        """``template`` replaces the GGUF's embedded chat template (ChatML when the GGUF has none)."""
        self._llm = llm
        metadata: dict[str, str] = dict(llm.metadata)
        self.template: str = template or metadata.get("tokenizer.chat_template") or CHATML_TEMPLATE
        model = llm._model
        self._bos_text = model.token_get_text(llm.token_bos()) if llm.token_bos() != -1 else ""
        eos_id = llm.token_eos()
        self._eos_text = model.token_get_text(eos_id) if eos_id != -1 else ""
        self._add_bos = bool(model.add_bos_token()) and llm.token_bos() != -1
        self._specials = _special_spellings(llm)
        self._chat = ChatTemplate(self.template, self._bos_text, self._eos_text)

    # -- public API -------------------------------------------------------------------------------------------------

    def render(self, messages: Sequence[Message], add_generation_prompt: bool = True) -> list[int]:
        """All tokens of the prompt for ``messages``."""
        prefix, rest = self.split(messages, add_generation_prompt)
        return prefix + rest

    def system_prefix(self, system: str | None) -> list[int]:
        """Tokens up to the end of the system turn (empty without a system text or when the template has no
        separable system turn)."""
        return self.split(_messages(system, "x"))[0]

    def continuation(self, system: str | None, user: str) -> list[int]:
        """Tokens after :meth:`system_prefix`: the user turn and the assistant header."""
        return self.split(_messages(system, user))[1]

    def follow_up(
        self, system: str | None, user: str, reply: str, question: str, reply_tokens: Sequence[int] | None = None
    ) -> list[int]:
        """Tokens after :meth:`system_prefix` of the exchange continued with ``question`` (see
        :func:`~studio.core.inference.base.follow_up_messages`).

        ``reply_tokens`` are the tokens the model generated for ``reply``. When the template renders the earlier
        turns unchanged, they are used as they are, so the follow-up starts with exactly the tokens already in the
        reply's KV cells; otherwise the whole exchange is tokenized from its text.
        """
        messages = follow_up_messages(system, user, reply, question)
        if reply_tokens is not None and reply:
            after = self._after_reply(system, user, reply, messages)
            if after is not None:
                return self.continuation(system, user) + list(reply_tokens) + self._tokenize(after, first=False)
        return self.split(messages)[1]

    def _after_reply(
        self, system: str | None, user: str, reply: str, messages: Sequence[Message]
    ) -> list[_Piece] | None:
        """The pieces that follow the reply in the rendered ``messages``, or None when the template does not render
        the prompt and the reply there unchanged."""
        before = self._chat.text(_messages(system, user), add_generation_prompt=True)
        if before is None:
            return None
        pieces = self._chat.pieces(messages, add_generation_prompt=True)
        offset = 0
        for at, piece in enumerate(pieces):
            if offset == len(before):
                kept = piece.is_content and piece.text == reply and "".join(p.text for p in pieces[:at]) == before
                return pieces[at + 1 :] if kept else None
            offset += len(piece.text)
        return None

    def split(self, messages: Sequence[Message], add_generation_prompt: bool = True) -> tuple[list[int], list[int]]:
        """The prompt tokens as ``(system prefix, rest)``; the prefix is empty unless the first message is a system
        turn that the template renders as a prefix of the whole prompt."""
        pieces = self._chat.pieces(messages, add_generation_prompt)
        cut = 0
        if len(messages) > 1 and messages[0].role == "system":
            head = self._chat.text([messages[0]], add_generation_prompt=False)
            whole = "".join(p.text for p in pieces)
            if head is not None and whole.startswith(head) and not _inside_content(pieces, len(head)):
                cut = len(head)
        head_pieces, tail_pieces = _split_pieces(pieces, cut)
        prefix = self._tokenize(head_pieces, first=True)
        rest = self._tokenize(tail_pieces, first=not prefix)
        return prefix, rest

    def plain_text(self, messages: Sequence[Message], add_generation_prompt: bool = True) -> str:
        """The template's output as one string, as llama.cpp's own chat completion renders it."""
        text = self._chat.text(messages, add_generation_prompt)
        if text is None:
            raise BackendError(f"chat template failed to render {len(messages)} message(s)")
        return text

    # -- internals --------------------------------------------------------------------------------------------------

    def _tokenize(self, pieces: Sequence[_Piece], first: bool) -> list[int]:
        """Tokens of ``pieces`` as llama.cpp would produce them, except that message text is never special."""
        runs = token_runs(pieces, self._specials)
        tokens: list[int] = []
        if first and self._add_bos and not (runs and runs[0] == (self._bos_text, True)):
            tokens.append(self._llm.token_bos())
        for text, special in runs:
            tokens += self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=special)
        return tokens


def token_runs(pieces: Sequence[_Piece], specials: Sequence[str]) -> list[tuple[str, bool]]:
    """``pieces`` as the runs llama.cpp tokenizes one by one: ``(text, is a special token)``.

    llama.cpp cuts text at special-token spellings and tokenizes each run between them on its own. The same is done
    here, but the cuts are searched for only in the template's fixed text; message text joins the plain text around
    it and is tokenized with special tokens disabled. ``specials``: the spellings, longest first.
    """
    runs: list[tuple[str, bool]] = []
    for piece in pieces:
        fragments = [(piece.text, False)] if piece.is_content else _cut_specials(piece.text, specials)
        for text, special in fragments:
            if not special and runs and not runs[-1][1]:
                runs[-1] = (runs[-1][0] + text, False)
            else:
                runs.append((text, special))
    return runs


def _special_spellings(llm: Llama) -> list[str]:
    """Texts of the tokens llama.cpp matches as special when tokenizing with special=True, longest first."""
    import llama_cpp

    vocab = llm._model.vocab
    flags = (
        llama_cpp.LLAMA_TOKEN_ATTR_CONTROL
        | llama_cpp.LLAMA_TOKEN_ATTR_USER_DEFINED
        | llama_cpp.LLAMA_TOKEN_ATTR_UNKNOWN
    )
    spellings = {
        llm._model.token_get_text(token)
        for token in range(llm.n_vocab())
        if llama_cpp.llama_vocab_get_attr(vocab, token) & flags
    }
    return sorted((s for s in spellings if s), key=len, reverse=True)


def _cut_specials(text: str, specials: Sequence[str]) -> list[tuple[str, bool]]:
    """Split fixed template text into plain runs and special-token spellings (longest spelling first)."""
    fragments: list[tuple[str, bool]] = [(text, False)]
    for spelling in specials:
        cut: list[tuple[str, bool]] = []
        for fragment, special in fragments:
            if special or spelling not in fragment:
                cut.append((fragment, special))
                continue
            for index, part in enumerate(fragment.split(spelling)):
                if index:
                    cut.append((spelling, True))
                if part:
                    cut.append((part, False))
        fragments = cut
    return [f for f in fragments if f[0]]


def _identity(text: str) -> str:
    return text


def _strip(text: str) -> str:
    return text.strip()


_CONTENT_TRANSFORMS: tuple[Callable[[str], str], ...] = (_identity, _strip)


def _messages(system: str | None, user: str) -> list[Message]:
    messages = [Message("system", system)] if system else []
    messages.append(Message("user", user))
    return messages


def _inside_content(pieces: Sequence[_Piece], cut: int) -> bool:
    """Whether character offset ``cut`` falls strictly inside a message's text."""
    offset = 0
    for piece in pieces:
        end = offset + len(piece.text)
        if piece.is_content and offset < cut < end:
            return True
        offset = end
    return False


def _split_pieces(pieces: Sequence[_Piece], cut: int) -> tuple[list[_Piece], list[_Piece]]:
    head: list[_Piece] = []
    tail: list[_Piece] = []
    offset = 0
    for piece in pieces:
        end = offset + len(piece.text)
        if end <= cut:
            head.append(piece)
        elif offset >= cut:
            tail.append(piece)
        else:
            split = cut - offset
            head.append(_Piece(piece.text[:split], piece.is_content))
            tail.append(_Piece(piece.text[split:], piece.is_content))
        offset = end
    return [p for p in head if p.text], [p for p in tail if p.text]
