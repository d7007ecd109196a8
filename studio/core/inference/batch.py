"""Batched decoding of many probes that share one system turn (the safety config).

The config prefix is evaluated once, in KV sequence 0. Every probe gets its own sequence that starts as a copy of
the prefix (in a unified KV cache the copy shares cells, it costs no memory), then its own tokens are prefilled and
all live sequences decode together, one token each per ``llama_decode`` call. New probes are admitted while others
are still generating (their prefill rides in the same batches), as far as the free sequences and KV cells allow.
Each sequence has its own sampler chain, with its own grammar when its params carry a JSON Schema.

Greedy batched decoding gives the same text as sequential greedy decoding for most probes, not all. The probes'
KV cells interleave in the shared (unified) cache, so attention sums over a row in which a probe's own values sit
at other offsets between masked cells, and matrix kernels pick other blockings for other batch sizes; the
rounding differs slightly and a near-tie between two tokens can flip.
Separate per-sequence caches (``kv_unified=False``) would match exactly, but each needs room for the whole prefix,
which multiplies the KV memory by the number of sequences.

The ``Llama`` must have been created with several sequences. ``llama-cpp-python`` 0.3.36 silently drops unknown
keyword arguments of ``Llama(...)`` and only sets ``n_seq_max`` for embedding models, so pass
:data:`BATCH_LLAMA_KWARGS` to the constructor and then call :func:`enable_parallel_sequences` once, in the thread
that owns the model. Without that, the decoder still works, one probe at a time, reusing the prefix.
"""

from __future__ import annotations

import codecs
import contextlib
import ctypes
import json
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from studio.core.errors import BackendError
from studio.core.inference.base import (
    CancelToken,
    DecodingMode,
    GenerationParams,
    GenerationResult,
    StopReason,
    StreamEvent,
    TokenEvent,
)
from studio.core.inference.timing import decode_rate

if TYPE_CHECKING:
    from llama_cpp import Llama

#: Parallel sequences a batching context is created with: sequence 0 holds the prefix, the rest hold probes.
DEFAULT_SEQUENCES = 17

#: Constructor arguments of ``Llama`` for a model that will decode batches: a logical batch large enough to prefill
#: several probes per call (``n_batch`` is also capped by ``n_ctx``). :func:`enable_parallel_sequences` then sets
#: the sequences, the KV cache type and the attention kernel.
BATCH_LLAMA_KWARGS: dict[str, Any] = {"n_batch": 512, "n_ubatch": 512}

#: Sampling settings of ``Llama.create_chat_completion`` that :class:`GenerationParams` does not carry; the batched
#: sampler uses the same values so that both paths pick the same tokens.
_MIN_P = 0.05
_TYPICAL_P = 1.0
_PENALTY_LAST_N = 64

#: Tokens a grammar is asked about when it refuses the best one, before the whole vocabulary (see ``_Greedy``).
_GRAMMAR_SHORTLIST = 64

#: KV cells a live probe is expected to add when deciding whether another probe fits beside it; probes that grow
#: beyond it are pushed out and resumed later rather than reserving their whole budget up front.
_EXPECTED_GROWTH = 64

#: Decode steps between two re-counts of the free cores (see :mod:`studio.core.inference.threads`).
REFIT_EVERY = 16

#: On a CPU, the cells beyond the shared prefix that the live probes are expected to fill are kept under
#: ``max(2 * prefix, CPU_OWN_CELLS)``, with at least :data:`CPU_MIN_LIVE` probes live (see :func:`cpu_width`).
CPU_OWN_CELLS = 1536
CPU_MIN_LIVE = 4
#: The length a reply is expected to reach when judging how many fit side by side (most replies of a check stop at
#: their budget; a judge's budget is far above what a verdict takes).
_EXPECTED_REPLY = 256


def cpu_width(prefix: int, probes: Sequence[_Probe]) -> int:
    """How many probes decode side by side on a CPU.

    In a unified KV cache every token's attention reads every live cell, the other probes' cells included. While
    the shared prefix holds most cells (many short replies under one long config) more probes at once pay; when
    each probe fills hundreds of cells of its own (a check's replies and their verdicts) the extra reading costs
    more than the batch saves. Measured on the 18-probe game-studio check on 2 cores: 4 at once 78.6 s, 8 at once
    90.9 s, 16 at once 105.1 s, 2 at once 91.4 s (docs/performance.md).
    """
    if not probes:
        return CPU_MIN_LIVE
    own = sum(len(p.prompt) + min(p.budget, _EXPECTED_REPLY) for p in probes) / len(probes)
    return max(CPU_MIN_LIVE, int(max(2 * prefix, CPU_OWN_CELLS) // max(own, 1.0)))


class PrefixRenderer(Protocol):
    """Splits a rendered chat into the shared system part and each probe's own part (token ids)."""

    def system_prefix(self, system: str | None) -> list[int]: ...

    def continuation(self, system: str | None, user: str) -> list[int]: ...


def enable_parallel_sequences(
    llm: Llama, n_seq_max: int = DEFAULT_SEQUENCES, *, f32_kv: bool = False, flash: bool = False
) -> None:
    """Recreate ``llm``'s context with ``n_seq_max`` sequences over one unified KV cache of the same size.

    ``f32_kv`` keeps the cache in f32 instead of f16 (see ``LlamaSettings.kv_cache``); ``flash`` asks for flash
    attention (see ``LlamaSettings.flash_attention``). Call it right after loading, from the thread that owns
    ``llm``; the KV cache starts empty.
    """
    import llama_cpp
    from llama_cpp import _internals

    limit = int(llama_cpp.llama_max_parallel_sequences())
    wanted = max(1, min(n_seq_max, limit))
    kv_type = llama_cpp.GGML_TYPE_F32 if f32_kv else llama_cpp.GGML_TYPE_F16
    params = llm.context_params
    disabled, enabled = llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED, llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED
    attention = enabled if flash else disabled
    if (
        int(llama_cpp.llama_n_seq_max(llm.ctx)) == wanted
        and bool(params.kv_unified)
        and params.type_k == kv_type
        and params.flash_attn_type == attention
    ):
        return
    params.n_seq_max = wanted
    params.kv_unified = True
    params.type_k = kv_type
    params.type_v = kv_type
    params.flash_attn_type = attention
    replacement: Any = _internals.LlamaContext(model=llm._model, params=params, verbose=llm.verbose)
    adapter: Any = llm._lora_adapter
    if adapter is not None:
        adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(adapter)
        scales = (ctypes.c_float * 1)(llm.lora_scale)
        if llama_cpp.llama_set_adapters_lora(replacement.ctx, adapters, 1, scales):
            replacement.close()
            raise BackendError(f"{llm.model_path}: could not apply the LoRA adapter to the batching context")
    previous: Any = llm._ctx
    llm._ctx = llm._stack.enter_context(contextlib.closing(replacement))
    previous.close()
    llm.n_tokens = 0
    llm._requires_eval = True


def parallel_sequences(llm: Llama) -> int:
    """How many probes ``llm`` can decode at once (1 when it was created without extra sequences)."""
    import llama_cpp

    return max(1, int(llama_cpp.llama_n_seq_max(llm.ctx)) - 1)


@dataclass
class _Probe:
    """Decoding state of one probe.

    Its own tokens are ``prompt + generated``; the first ``in_kv`` of them are in its KV sequence. A decoding probe
    has exactly one token not yet in the cache: the one it sampled last. A probe that was pushed out of the cache
    keeps its sampler (penalty window, grammar state, random state) and text, and feeds its own tokens again when
    it is readmitted, so its output does not depend on having been pushed out.
    """

    index: int
    prompt: list[int]
    budget: int
    params: GenerationParams
    #: 0 while it answers its prompt, then k while it answers its k-th follow-up question (same sequence).
    step: int = 0
    #: The follow-ups still to ask after the current step: their own tokens and params.
    stages: list[tuple[list[int], GenerationParams]] = field(default_factory=list)
    seq_id: int = -1
    in_kv: int = 0
    sampler: _Sampler | None = None
    generated: list[int] = field(default_factory=list)
    logits_at: int = -1
    text: str = ""
    emitted: int = 0
    events: int = 0
    admitted_at: float = 0.0
    first_token_at: float | None = None
    last_token_at: float | None = None
    cut_at_stop_string: bool = False
    preemptions: int = 0
    #: Own tokens of the current step that were already in the KV cells when it began (a follow-up's reply).
    reused: int = 0
    decoder: codecs.IncrementalDecoder = field(default_factory=lambda: codecs.getincrementaldecoder("utf-8")("replace"))

    @property
    def length(self) -> int:
        """Own tokens so far: the prompt and everything sampled."""
        return len(self.prompt) + len(self.generated)

    def token_at(self, offset: int) -> int:
        prompt = len(self.prompt)
        return self.prompt[offset] if offset < prompt else self.generated[offset - prompt]

    def growth(self) -> int:
        """KV cells this probe is expected to add from now on when admitting others (not its worst case)."""
        return min(self.budget - len(self.generated), _EXPECTED_GROWTH)


#: numpy layout of ``llama_token_data`` (token id, logit, probability).
_TOKEN_DATA = [("id", "<i4"), ("logit", "<f4"), ("p", "<f4")]


class _Sampler(Protocol):
    """Picks a sequence's next token from the logits of one batch row and remembers it (penalties, grammar)."""

    def sample(self, ctx: Any, index: int) -> int: ...

    def close(self) -> None: ...


class _NativeChain:
    """A llama.cpp sampler chain, sampled and freed through the C API."""

    def __init__(self, chain: Any) -> None:
        self.chain = chain

    def sample(self, ctx: Any, index: int) -> int:
        import llama_cpp

        return int(llama_cpp.llama_sampler_sample(self.chain, ctx, index))

    def close(self) -> None:
        import llama_cpp

        llama_cpp.llama_sampler_free(self.chain)


class _Greedy:
    """Greedy decoding with the repeat penalty (and a grammar, if any), worked out on the logits row in numpy.

    The native chain penalties, greedy builds a candidate array of the whole vocabulary (49,152 entries for SmolLM2)
    and looks every entry up in its table of recent tokens, which costs more than sampling needs: only the distinct
    tokens of the last :data:`_PENALTY_LAST_N` generated ones are penalised. Here those few logits are penalised
    (divided by the penalty when positive, multiplied when not, in float32 as llama.cpp does) on a copy of the row,
    and the best token is its first maximum, the token the native chain picks.

    Under a grammar, the grammar is asked about that one token, not the whole vocabulary (which would walk every
    token through the grammar's stacks, more than a whole decode step of a small model costs); only when it refuses
    that token is it asked about a short list of the next best, and about the whole vocabulary only when it refuses
    those too. The grammar only removes tokens, so this is the token the chain penalties, grammar, greedy picks
    (ties go to the lowest id either way).
    """

    def __init__(self, n_vocab: int, repeat_penalty: float, grammar: Any = None) -> None:
        import numpy as np

        self.n_vocab = n_vocab
        self.penalty = np.float32(repeat_penalty)
        self.window: deque[int] = deque(maxlen=_PENALTY_LAST_N)
        self.grammar = grammar
        if grammar is not None:
            from llama_cpp import llama_token_data, llama_token_data_array

            self._data = (llama_token_data * n_vocab)()
            self._view = np.ctypeslib.as_array(self._data).view(np.dtype(_TOKEN_DATA))
            self._view["id"] = np.arange(n_vocab, dtype=np.int32)
            self._all = llama_token_data_array(self._data, n_vocab, -1, False)
            self._one_data = (llama_token_data * 1)()
            self._one_view = np.ctypeslib.as_array(self._one_data).view(np.dtype(_TOKEN_DATA))
            self._one = llama_token_data_array(self._one_data, 1, -1, False)

    def sample(self, ctx: Any, index: int) -> int:
        import llama_cpp
        import numpy as np

        return self.pick(np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx, index), shape=(self.n_vocab,)))

    def pick(self, logits: Any) -> int:
        """The next token for the float32 ``logits`` of the vocabulary (left unchanged); remembers it."""
        import llama_cpp
        import numpy as np

        row = logits
        if self.window and self.penalty != 1.0:
            recent = np.fromiter(set(self.window), dtype=np.int64)
            values = row[recent]
            row = row.copy()
            row[recent] = np.where(values <= 0, values * self.penalty, values / self.penalty)
        token = int(np.argmax(row))
        if self.grammar is not None:
            one = self._one_view
            one["id"], one["logit"] = token, row[token]
            self._one.selected = -1
            llama_cpp.llama_sampler_apply(self.grammar, ctypes.byref(self._one))
            if one["logit"][0] == -np.inf:
                token = self._best_admitted(row)
            llama_cpp.llama_sampler_accept(self.grammar, token)
        self.window.append(token)
        return token

    def _best_admitted(self, row: Any) -> int:
        """The best token of ``row`` that the grammar admits, lowest id first among equals.

        The grammar is asked about the :data:`_GRAMMAR_SHORTLIST` best tokens (and any tied with the last of them)
        first: if it admits one of them, the best of those is the best overall, since the grammar only removes
        tokens. Only when it refuses them all is the whole vocabulary walked through it.
        """
        import llama_cpp
        import numpy as np
        from llama_cpp import llama_token_data, llama_token_data_array

        cutoff = np.partition(row, -_GRAMMAR_SHORTLIST)[-_GRAMMAR_SHORTLIST]
        shortlist = np.flatnonzero(row >= cutoff)
        shortlist = shortlist[np.lexsort((shortlist, -row[shortlist]))]
        data = (llama_token_data * len(shortlist))()
        view = np.ctypeslib.as_array(data).view(np.dtype(_TOKEN_DATA))
        view["id"], view["logit"], view["p"] = shortlist, row[shortlist], 0.0
        array = llama_token_data_array(data, len(shortlist), -1, False)
        llama_cpp.llama_sampler_apply(self.grammar, ctypes.byref(array))
        admitted = np.flatnonzero(view["logit"] != -np.inf)
        if admitted.size:
            return int(view["id"][admitted[0]])
        whole = self._view
        whole["logit"] = row
        self._all.selected = -1
        llama_cpp.llama_sampler_apply(self.grammar, ctypes.byref(self._all))
        return int(np.argmax(whole["logit"]))

    def close(self) -> None:
        import llama_cpp

        if self.grammar is not None:
            llama_cpp.llama_sampler_free(self.grammar)
            self.grammar = None


def native_greedy_chain(n_vocab: int, repeat_penalty: float, grammar: Any = None) -> _NativeChain:
    """The native chain penalties, (grammar,) greedy over the whole vocabulary: what :class:`_Greedy` reproduces
    faster; the tests and ``bench.profile_check`` compare the two (same arguments, so it can stand in for it)."""
    import llama_cpp

    chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
    links = [llama_cpp.llama_sampler_init_penalties(n_vocab, _PENALTY_LAST_N, repeat_penalty, 0.0, 0.0)]
    links += [grammar] if grammar is not None else []
    for link in [*links, llama_cpp.llama_sampler_init_greedy()]:
        llama_cpp.llama_sampler_chain_add(chain, link)
    return _NativeChain(chain)


def _new_sampler(llm: Llama, params: GenerationParams, grammar: Any = None) -> _Sampler:
    """A sampler matching the chain the sequential path builds for the same settings (and grammar)."""
    import llama_cpp

    link = None
    if grammar is not None:
        link = llama_cpp.llama_sampler_init_grammar(
            llama_cpp.llama_model_get_vocab(llm.model), grammar._grammar.encode("utf-8"), grammar._root.encode("utf-8")
        )
        if not link:
            raise BackendError("llama.cpp rejected the grammar built from json_schema")
    if params.temperature <= 0.0:
        return _Greedy(llm.n_vocab(), params.repeat_penalty, link)
    links = [llama_cpp.llama_sampler_init_penalties(llm.n_vocab(), _PENALTY_LAST_N, params.repeat_penalty, 0.0, 0.0)]
    if link is not None:
        links.append(link)
    links += [
        llama_cpp.llama_sampler_init_top_k(params.top_k),
        llama_cpp.llama_sampler_init_typical(_TYPICAL_P, 1),
        llama_cpp.llama_sampler_init_top_p(params.top_p, 1),
        llama_cpp.llama_sampler_init_min_p(_MIN_P, 1),
        llama_cpp.llama_sampler_init_temp(params.temperature),
        llama_cpp.llama_sampler_init_dist(params.seed & 0xFFFFFFFF),
    ]
    chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
    for each in links:
        llama_cpp.llama_sampler_chain_add(chain, each)
    return _NativeChain(chain)


def _held_back(text: str, stops: Sequence[str]) -> int:
    """Length of the longest end of ``text`` that could still grow into a stop string."""
    longest = 0
    for stop in stops:
        # Try the longest partial match first and stop at the first hit: only sizes above the best so far matter.
        for size in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:size]):
                longest = size
                break
    return longest


def batched_job(
    llm: Llama,
    renderer: PrefixRenderer,
    system: str | None,
    prompts: Sequence[str],
    params: GenerationParams,
    cancel: CancelToken | None,
) -> Iterator[tuple[int, StreamEvent]]:
    """Decode ``prompts`` under one system turn together; yield ``(prompt_index, event)``.

    Each prompt streams :class:`TokenEvent` s and ends with its own :class:`GenerationResult`
    (``mode=BATCHED``, ``cached_tokens`` = the shared prefix length). Must run in the thread that owns ``llm``.
    """
    if not prompts:
        return
    prefix = renderer.system_prefix(system)
    yield from batched_tokens_job(llm, prefix, [renderer.continuation(system, p) for p in prompts], params, cancel)


def shared_prefix(token_lists: Sequence[Sequence[int]]) -> int:
    """Length of the longest common start of ``token_lists`` that leaves every list at least one token of its own."""
    if not token_lists:
        return 0
    first = token_lists[0]
    # One token short of the shortest list: each sequence needs a token of its own to produce logits from.
    limit = min(len(tokens) for tokens in token_lists) - 1
    common = 0
    while common < limit and all(tokens[common] == first[common] for tokens in token_lists):
        common += 1
    return max(0, common)


#: Fewest tokens two requests' own starts must share before the later one follows the earlier on its sequence.
SHARED_START_MIN = 32


def share_starts(continuations: Sequence[Sequence[int]]) -> list[list[int]]:
    """Group the indices of ``continuations`` whose starts are mostly the same, the first of each group first.

    A continuation joins the first group whose first member shares at least :data:`SHARED_START_MIN` tokens and
    half of the shorter of the two with it (two judges' questions about one reply: the probe and the reply are
    shared, the question is not); the rest each start a group of their own. Requests that share only a short start
    (replies to the same probe) stay apart, so they still decode side by side.
    """
    groups: list[list[int]] = []
    for index, tokens in enumerate(continuations):
        for members in groups:
            first = continuations[members[0]]
            common = shared_prefix([first, tokens])  # each keeps a token of its own
            if common >= SHARED_START_MIN and 2 * common >= min(len(first), len(tokens)):
                members.append(index)
                break
        else:
            groups.append([index])
    return groups


def params_per_request(params: GenerationParams | Sequence[GenerationParams], count: int) -> list[GenerationParams]:
    """One setting for each of ``count`` requests: ``params`` repeated, or the list itself when it has ``count``."""
    per_item = [params] * count if isinstance(params, GenerationParams) else list(params)
    if len(per_item) != count:
        raise BackendError(f"{len(per_item)} parameter sets for {count} prompts")
    return per_item


def cancelled_result(prompt_tokens: int) -> GenerationResult:
    """The result of a batched request that a cancel stopped before it started."""
    return GenerationResult(
        text="",
        stop_reason=StopReason.CANCELLED,
        prompt_tokens=prompt_tokens,
        completion_tokens=0,
        cached_tokens=0,
        time_to_first_token_s=None,
        decode_tokens_per_s=None,
        total_s=0.0,
        mode=DecodingMode.BATCHED,
    )


def batched_tokens_job(
    llm: Llama,
    prefix: list[int],
    continuations: Sequence[list[int]],
    params: GenerationParams | Sequence[GenerationParams],
    cancel: CancelToken | None,
    refit: Callable[[], object] | None = None,
) -> Iterator[tuple[int, StreamEvent]]:
    """Decode every ``prefix + continuation`` together, the prefix evaluated once; yield ``(index, event)``.

    ``params`` is one setting for all or one per continuation; a ``json_schema`` puts that sequence under its own
    grammar. ``refit`` is called every :data:`REFIT_EVERY` steps (to fit the thread count to the free cores).
    Must run in the thread that owns ``llm``.
    """
    for index, _step, event in exchange_tokens_job(llm, prefix, continuations, params, cancel, refit):
        yield index, event


#: Makes the follow-ups of one reply: ``(prompt index, reply text, reply tokens or None when the text was cut at a
#: stop string)`` to each follow-up's own tokens (after the shared prefix) and params.
FollowUpMaker = Callable[[int, str, "list[int] | None"], Sequence[tuple[list[int], GenerationParams]]]


def exchange_tokens_job(
    llm: Llama,
    prefix: list[int],
    continuations: Sequence[list[int]],
    params: GenerationParams | Sequence[GenerationParams],
    cancel: CancelToken | None,
    refit: Callable[[], object] | None = None,
    follow_ups: FollowUpMaker | None = None,
    on_cpu: bool = False,
) -> Iterator[tuple[int, int, StreamEvent]]:
    """Like :func:`batched_tokens_job`, yielding ``(index, step, event)``: when a reply ends, ``follow_ups`` gives
    the questions to ask about it, and its sequence goes on with each in turn (step 1, 2, ...). A follow-up keeps
    the KV cells it shares with the reply (the prompt and the reply itself) and only its question is prefilled;
    the other replies keep decoding meanwhile. ``on_cpu`` limits how many decode side by side (:func:`cpu_width`)."""
    if not continuations:
        return
    per_item = params_per_request(params, len(continuations))
    decoder = _BatchDecoder(llm, prefix, cancel, refit, follow_ups)
    probes = [decoder.plan(index, tokens, per_item[index]) for index, tokens in enumerate(continuations)]
    if on_cpu:
        decoder.max_live = cpu_width(len(prefix), probes)
    yield from decoder.run(probes)


class _BatchDecoder:
    """One batched run over a ``Llama`` context; owns the native batch and samplers until it ends.

    In a unified KV cache, probes are admitted while the cache holds the prefix, every live probe's tokens and a
    modest expected growth of each (:data:`_EXPECTED_GROWTH`), not each one's worst case: a judge's token budget
    is far above what a verdict usually takes. When the cache would overflow anyway, the probe admitted last is
    pushed out (:meth:`_preempt`) and fed again later; every probe alone fits, so the run always progresses.
    """

    def __init__(
        self,
        llm: Llama,
        prefix: list[int],
        cancel: CancelToken | None,
        refit: Callable[[], object] | None = None,
        follow_ups: FollowUpMaker | None = None,
    ) -> None:
        import llama_cpp

        self.llm = llm
        self.follow_ups = follow_ups
        #: Most probes live at once (besides the free sequences and KV cells).
        self.max_live: int | None = None
        self.refit = refit
        self.steps = 0
        self.prefix = prefix
        self.cancel = cancel
        self.ctx = llm.ctx
        self.memory = llama_cpp.llama_get_memory(self.ctx)
        self.vocab = llama_cpp.llama_model_get_vocab(llm.model)
        self.n_ctx = int(llama_cpp.llama_n_ctx(self.ctx))
        self.n_batch = int(llama_cpp.llama_n_batch(self.ctx))
        n_seq_max = int(llama_cpp.llama_n_seq_max(self.ctx))
        self.unified = n_seq_max == 1 or bool(llm.context_params.kv_unified)
        self.n_ctx_seq = self.n_ctx if self.unified else int(llama_cpp.llama_n_ctx_seq(self.ctx))
        #: Sequence ids for probes: 1.. when the context has several (at most one per batch slot), else sequence 0
        #: itself, trimmed back to the prefix after each probe.
        slots = min(n_seq_max - 1, self.n_batch)
        self.free_seqs: deque[int] = deque(range(1, slots + 1)) if slots > 0 else deque([0])
        self.started = time.perf_counter()
        self.reused_prefix = 0
        self.preemptions = 0
        self._grammars: dict[str, Any] = {}
        if len(prefix) >= self.n_ctx_seq:
            raise BackendError(f"the system turn has {len(prefix)} tokens; the context holds {self.n_ctx_seq}")

    def plan(self, index: int, prompt: list[int], params: GenerationParams) -> _Probe:
        room = self.n_ctx_seq - len(self.prefix) - len(prompt)
        if room < 1:
            raise BackendError(
                f"probe {index}: {len(self.prefix) + len(prompt)} prompt tokens leave no room in a context of "
                f"{self.n_ctx_seq} tokens"
            )
        if not prompt:
            raise BackendError(f"probe {index}: the chat renderer produced no tokens after the system turn")
        return _Probe(index=index, prompt=prompt, budget=min(params.max_tokens, room), params=params)

    def run(self, probes: list[_Probe]) -> Iterator[tuple[int, int, StreamEvent]]:
        import llama_cpp

        batch = llama_cpp.llama_batch_init(self.n_batch, 0, 1)
        queue = deque(probes)
        live: list[_Probe] = []
        try:
            self._load_prefix(batch)
            # One pass per llama_decode call: admit what fits, decode one batch, then sample every probe whose
            # logits the batch produced (a probe still prefilling a long prompt produces none this round).
            while queue or live:
                if self.cancel is not None and self.cancel.cancelled:
                    for probe in [*live, *queue]:
                        yield from self._finish(probe, StopReason.CANCELLED)
                    live.clear()
                    queue.clear()
                    break
                self._admit(queue, live)
                self._make_room(queue, live)
                self.steps += 1
                if self.refit is not None and self.steps % REFIT_EVERY == 0:
                    self.refit()
                self._decode_step(batch, queue, live)
                for probe in list(live):
                    if probe.logits_at < 0:
                        continue
                    done = yield from self._sample(probe)
                    if done is None:
                        continue
                    yield from self._report(probe, done)
                    # A probe with a follow-up to ask stays live, in its place, on its own sequence.
                    while self._advance(probe):
                        if probe.budget > 0:
                            break
                        yield from self._report(probe, StopReason.LENGTH)  # no room left for an answer
                    else:
                        live.remove(probe)
                        self._release(probe)
        finally:
            for probe in [*live, *queue]:
                self._release(probe)
            llama_cpp.llama_batch_free(batch)
            self._restore_high_level_state()

    def _load_prefix(self, batch: Any) -> None:
        """Put the prefix in sequence 0, reusing what the high-level API left there."""
        import llama_cpp

        llm = self.llm
        cached = 0
        limit = min(llm.n_tokens, len(self.prefix))
        # Sequence 0 still holds what the last sequential request evaluated; its common start is reused as is.
        while cached < limit and int(llm.input_ids[cached]) == self.prefix[cached]:
            cached += 1
        llm.n_tokens = 0
        if cached == 0 or not llama_cpp.llama_memory_seq_rm(self.memory, 0, cached, -1):
            llama_cpp.llama_memory_clear(self.memory, True)
            cached = 0
        for seq_id in range(1, int(llama_cpp.llama_n_seq_max(self.ctx))):
            llama_cpp.llama_memory_seq_rm(self.memory, seq_id, -1, -1)
        self.reused_prefix = cached
        # The rest of the prefix goes in chunks of n_batch, the most one batch holds; no logits are needed for it.
        for start in range(cached, len(self.prefix), self.n_batch):
            chunk = self.prefix[start : start + self.n_batch]
            batch.n_tokens = 0
            for offset, token in enumerate(chunk):
                self._add(batch, token, start + offset, 0, False)
            status = llama_cpp.llama_decode(self.ctx, batch)
            if status != 0:
                raise BackendError(f"llama_decode failed with status {status} while evaluating the system turn")

    def _reserved(self, live: Sequence[_Probe]) -> int:
        """KV cells the prefix and the live probes hold, plus the growth expected of each."""
        return len(self.prefix) + sum(p.length + p.growth() for p in live)

    def _admit(self, queue: deque[_Probe], live: list[_Probe]) -> None:
        """Start queued probes while a sequence is free and the KV cache can hold what they are expected to need."""
        import llama_cpp

        while queue and self.free_seqs and (self.max_live is None or len(live) < self.max_live):
            # In a unified cache all sequences share n_ctx cells, so admitting on expected (not worst-case) growth
            # keeps more probes decoding together; _make_room and _decode_step handle the rare overflow. The first
            # probe is always admitted, or a long one could never start.
            if self.unified and live:
                candidate = queue[0]
                if self._reserved(live) + candidate.length + candidate.growth() > self.n_ctx:
                    return
            probe = queue.popleft()
            probe.seq_id = self.free_seqs.popleft()
            probe.in_kv = 0
            if probe.seq_id != 0:
                llama_cpp.llama_memory_seq_cp(self.memory, 0, probe.seq_id, -1, -1)
            if probe.sampler is None:
                probe.sampler = _new_sampler(self.llm, probe.params, self._grammar(probe.params))
                probe.admitted_at = time.perf_counter()
            live.append(probe)

    def _grammar(self, params: GenerationParams) -> Any:
        """The grammar of ``params.json_schema`` (built once per schema and run), or None."""
        if params.json_schema is None:
            return None
        from studio.core.inference.llama_backend import json_schema_grammar

        key = json.dumps(params.json_schema, sort_keys=True)
        if key not in self._grammars:
            self._grammars[key] = json_schema_grammar(params.json_schema)
        return self._grammars[key]

    def _make_room(self, queue: deque[_Probe], live: list[_Probe]) -> None:
        """Push out the most recently admitted probes while the next step could overflow the KV cache."""
        if not self.unified:
            return
        # The newest probe is pushed out first, so the probes that started earlier keep their cells and finish.
        while len(live) > 1 and len(self.prefix) + sum(p.length for p in live) > self.n_ctx:
            self._preempt(live[-1], queue, live)

    def _preempt(self, probe: _Probe, queue: deque[_Probe], live: list[_Probe]) -> None:
        """Free ``probe``'s KV cells and queue it first; it keeps its sampler and text and is fed again later."""
        live.remove(probe)
        self._free_sequence(probe)
        probe.in_kv = 0
        probe.logits_at = -1
        probe.preemptions += 1
        self.preemptions += 1
        queue.appendleft(probe)

    def _decode_step(self, batch: Any, queue: deque[_Probe], live: list[_Probe]) -> None:
        """Fill the batch and decode it; when llama.cpp finds no KV slot, push out the newest probe and retry."""
        import llama_cpp

        while True:
            before = [p.in_kv for p in live]
            self._fill(batch, live)
            status = llama_cpp.llama_decode(self.ctx, batch)
            if status == 0:
                return
            # Roll every probe back to what it held before this fill, so the next fill sends the same tokens again.
            for probe, in_kv in zip(live, before, strict=True):
                probe.in_kv = in_kv
                probe.logits_at = -1
            if status != 1 or len(live) < 2:
                raise BackendError(f"llama_decode failed with status {status} during batched decoding")
            self._preempt(live[-1], queue, live)

    def _fill(self, batch: Any, live: list[_Probe]) -> None:
        """The sampled token of each decoding probe, then as much prefill as fits."""
        batch.n_tokens = 0
        for probe in live:
            probe.logits_at = -1
        # Decoding probes first, one token each, so that a long prompt being prefilled never stalls them; prefill
        # then takes whatever room is left, in admission order, and may span several calls.
        for probe in live:
            if probe.generated and probe.length - probe.in_kv == 1:
                self._feed(batch, probe, 1)
        for probe in live:
            space = self.n_batch - batch.n_tokens
            if space <= 0:
                break
            todo = probe.length - probe.in_kv
            if todo > 0:
                self._feed(batch, probe, min(space, todo))

    def _feed(self, batch: Any, probe: _Probe, count: int) -> None:
        """Add ``count`` more of the probe's own tokens; logits for the last one once all are in."""
        base = len(self.prefix)
        last = probe.length - 1
        # Positions continue after the shared prefix, which every sequence sees at 0..len(prefix)-1.
        for offset in range(probe.in_kv, probe.in_kv + count):
            wanted = offset == last
            if wanted:
                probe.logits_at = batch.n_tokens
            self._add(batch, probe.token_at(offset), base + offset, probe.seq_id, wanted)
        probe.in_kv += count

    @staticmethod
    def _add(batch: Any, token: int, position: int, seq_id: int, logits: bool) -> None:
        slot = batch.n_tokens
        batch.token[slot] = token
        batch.pos[slot] = position
        batch.n_seq_id[slot] = 1
        batch.seq_id[slot][0] = seq_id
        batch.logits[slot] = 1 if logits else 0
        batch.n_tokens = slot + 1

    def _sample(self, probe: _Probe) -> Generator[tuple[int, int, StreamEvent], None, StopReason | None]:
        """Pick the probe's next token and stream what text became final; return why it stopped, if it did."""
        import llama_cpp

        assert probe.sampler is not None
        token = probe.sampler.sample(self.ctx, probe.logits_at)
        probe.logits_at = -1
        probe.last_token_at = time.perf_counter()
        if probe.first_token_at is None:
            probe.first_token_at = probe.last_token_at
        if llama_cpp.llama_vocab_is_eog(self.vocab, token):
            return StopReason.STOP
        probe.generated.append(token)
        probe.text += probe.decoder.decode(self.llm.detokenize([token]))
        stops = probe.params.stop
        if stops:
            # Text before this point was already searched when it was emitted; a stop string can only end in the new
            # text, so it starts at most one stop length before it.
            search_from = max(0, probe.emitted - max(len(s) for s in stops))
            hits = [found for s in stops if s and (found := probe.text.find(s, search_from)) >= 0]
            if hits:
                probe.text = probe.text[: min(hits)]
                probe.cut_at_stop_string = True
                return StopReason.STOP
        # Streamed text is never taken back, so an end that may still become a stop string waits for the next token.
        safe = len(probe.text) - _held_back(probe.text, stops)
        if safe > probe.emitted:
            yield probe.index, probe.step, TokenEvent(probe.text[probe.emitted : safe], probe.events)
            probe.events += 1
            probe.emitted = safe
        if len(probe.generated) >= probe.budget:
            return StopReason.LENGTH
        return None

    def _finish(self, probe: _Probe, reason: StopReason) -> Iterator[tuple[int, int, StreamEvent]]:
        """Flush the probe's remaining text, yield its result and free its sequence."""
        yield from self._report(probe, reason)
        self._release(probe)

    def _report(self, probe: _Probe, reason: StopReason) -> Iterator[tuple[int, int, StreamEvent]]:
        """Flush the remaining text of the probe's current step and yield the step's result."""
        if not probe.cut_at_stop_string:
            probe.text += probe.decoder.decode(b"", final=True)
        if len(probe.text) > probe.emitted:
            yield probe.index, probe.step, TokenEvent(probe.text[probe.emitted :], probe.events)
            probe.events += 1
            probe.emitted = len(probe.text)
        now = time.perf_counter()
        first = probe.first_token_at
        generated = len(probe.generated)
        yield (
            probe.index,
            probe.step,
            GenerationResult(
                text=probe.text,
                stop_reason=reason,
                prompt_tokens=len(self.prefix) + len(probe.prompt),
                completion_tokens=generated,
                cached_tokens=len(self.prefix) + probe.reused,
                time_to_first_token_s=(first - self.started) if first is not None else None,
                decode_tokens_per_s=decode_rate(generated, first, probe.last_token_at),
                total_s=now - self.started,
                mode=DecodingMode.BATCHED,
                extra={
                    "prefix_tokens": len(self.prefix),
                    "queued_s": (probe.admitted_at - self.started) if probe.admitted_at else None,
                    "prefix_reused_tokens": self.reused_prefix,
                    "preemptions": probe.preemptions,
                    "step": probe.step,
                    "no_room": probe.budget == 0,
                },
            ),
        )

    def _advance(self, probe: _Probe) -> bool:
        """Turn a probe whose step ended into its next follow-up, on the same sequence; False when none is left.

        The cells the follow-up shares with what the sequence holds (prompt, reply, the turn headers) stay; the
        rest is removed and the follow-up's own tokens after them are fed as a prompt.
        """
        if self.follow_ups is None or (probe.step > 0 and not probe.stages):
            return False
        if self.cancel is not None and self.cancel.cancelled:
            return False
        if probe.step == 0:
            tokens = None if probe.cut_at_stop_string else list(probe.generated)
            probe.stages = [(list(t), p) for t, p in self.follow_ups(probe.index, probe.text, tokens)]
            if not probe.stages:
                return False
        own, params = probe.stages.pop(0)
        held = [probe.token_at(i) for i in range(probe.in_kv)] if probe.seq_id >= 0 else []
        common = 0
        # At least one own token is fed, so that the step has logits to sample from.
        while common < min(len(held), len(own) - 1) and held[common] == own[common]:
            common += 1
        if probe.seq_id >= 0:
            import llama_cpp

            llama_cpp.llama_memory_seq_rm(self.memory, probe.seq_id, len(self.prefix) + common, -1)
        if probe.sampler is not None:
            probe.sampler.close()
        probe.sampler = _new_sampler(self.llm, params, self._grammar(params))
        probe.step += 1
        probe.prompt, probe.generated, probe.params = own, [], params
        probe.in_kv = probe.reused = common if probe.seq_id >= 0 else 0
        probe.budget = max(0, min(params.max_tokens, self.n_ctx_seq - len(self.prefix) - len(own)))
        probe.text, probe.emitted, probe.events, probe.logits_at = "", 0, 0, -1
        probe.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        probe.first_token_at = probe.last_token_at = None
        probe.cut_at_stop_string = False
        probe.admitted_at = time.perf_counter()
        return True

    def _release(self, probe: _Probe) -> None:

        if probe.sampler is not None:
            probe.sampler.close()
            probe.sampler = None
        self._free_sequence(probe)

    def _free_sequence(self, probe: _Probe) -> None:
        import llama_cpp

        if probe.seq_id < 0:
            return
        if probe.seq_id == 0:
            llama_cpp.llama_memory_seq_rm(self.memory, 0, len(self.prefix), -1)
        else:
            llama_cpp.llama_memory_seq_rm(self.memory, probe.seq_id, -1, -1)
        self.free_seqs.append(probe.seq_id)
        probe.seq_id = -1

    def _restore_high_level_state(self) -> None:
        """Leave only the prefix in sequence 0 and tell the high-level API that it is there."""
        import llama_cpp

        llm = self.llm
        for seq_id in range(1, int(llama_cpp.llama_n_seq_max(self.ctx))):
            llama_cpp.llama_memory_seq_rm(self.memory, seq_id, -1, -1)
        kept = int(llama_cpp.llama_memory_seq_pos_max(self.memory, 0)) + 1
        if kept == len(self.prefix) and llama_cpp.llama_memory_seq_rm(self.memory, 0, kept, -1):
            llm.input_ids[:kept] = self.prefix
            llm.n_tokens = kept
        else:
            llama_cpp.llama_memory_clear(self.memory, True)
            llm.n_tokens = 0
        llm._requires_eval = True
