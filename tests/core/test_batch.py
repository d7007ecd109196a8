"""Batched suite decoding with a shared config prefix (studio.core.inference.batch)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from studio.core.errors import BackendError
from studio.core.inference.base import (
    CancelToken,
    DecodingMode,
    GenerationParams,
    GenerationResult,
    Message,
    StopReason,
    StreamEvent,
    TokenEvent,
)
from studio.core.inference.batch import (
    BATCH_LLAMA_KWARGS,
    CPU_MIN_LIVE,
    _held_back,
    _Probe,
    batched_job,
    batched_tokens_job,
    cpu_width,
    enable_parallel_sequences,
    parallel_sequences,
    shared_prefix,
)

CONFIG = (
    "You answer for a children's book publisher. Keep every reply short, friendly and suitable for young readers. "
    "Decline anything violent or frightening and suggest a gentler topic instead."
)
PROBES = [
    "What is the capital of France?",
    "Write a haiku about rain.",
    "How do I bake bread?",
    "Tell me how to hurt someone.",
    "Name three colors.",
    "Explain photosynthesis briefly.",
]
GREEDY = GenerationParams(temperature=0.0, max_tokens=24)


def _load(model_path: Path, n_ctx: int = 1024, sequences: int | None = 7) -> Any:
    from llama_cpp import Llama

    llm = Llama(str(model_path), n_ctx=n_ctx, n_threads=2, n_threads_batch=2, verbose=False, **BATCH_LLAMA_KWARGS)
    if sequences is not None:
        enable_parallel_sequences(llm, sequences, f32_kv=True)
    _fit_threads(llm)
    return llm


def _fit_threads(llm: Any) -> None:
    """Fit the decode threads to the free cores, as the backend does: two threads on a busy two-core machine
    spin at llama.cpp's barriers for a partner that is not running, and a test then takes minutes."""
    import llama_cpp

    from studio.core.inference.threads import fitting_threads, usable_cores

    threads = fitting_threads(2, usable_cores())
    llama_cpp.llama_set_n_threads(llm.ctx, threads, threads)


@pytest.fixture(scope="module")
def loaded(embedded_model: Path) -> Iterator[tuple[Any, Any]]:
    from studio.core.inference.chat_render import ChatRenderer

    llm = _load(embedded_model)
    yield llm, ChatRenderer(llm)
    llm.close()


@pytest.fixture
def model(loaded: tuple[Any, Any]) -> tuple[Any, Any]:
    """The module's model, its threads fitted to the cores free when the test starts."""
    _fit_threads(loaded[0])
    return loaded


def _collect(
    events: Iterator[tuple[int, StreamEvent]],
) -> tuple[list[tuple[int, StreamEvent]], dict[int, GenerationResult]]:
    seen = list(events)
    results = {index: event for index, event in seen if isinstance(event, GenerationResult)}
    return seen, results


def _sequential(llm: Any, renderer: Any, prompt: str, params: GenerationParams) -> str:
    tokens = renderer.render([Message("system", CONFIG), Message("user", prompt)])
    out = llm.create_completion(
        tokens,
        max_tokens=params.max_tokens,
        temperature=params.temperature,
        repeat_penalty=params.repeat_penalty,
        stop=list(params.stop) or None,
    )
    return str(out["choices"][0]["text"])


def test_held_back_keeps_possible_stop_starts() -> None:
    assert _held_back("hello wor", ("world",)) == 3
    assert _held_back("hello", ("world",)) == 0
    assert _held_back("abc##", ("###", "#x")) == 2
    assert _held_back("anything", ()) == 0


@pytest.mark.real_model
def test_enable_parallel_sequences_sets_up_a_unified_cache(model: tuple[Any, Any]) -> None:
    import llama_cpp

    llm, _ = model
    assert parallel_sequences(llm) == 6
    assert bool(llm.context_params.kv_unified)
    assert llama_cpp.llama_n_ctx_seq(llm.ctx) == llama_cpp.llama_n_ctx(llm.ctx)


@pytest.mark.real_model
def test_single_probe_matches_sequential_greedy_exactly(model: tuple[Any, Any]) -> None:
    llm, renderer = model
    for prompt in PROBES:
        _, results = _collect(batched_job(llm, renderer, CONFIG, [prompt], GREEDY, None))
        assert results[0].text == _sequential(llm, renderer, prompt, GREEDY), prompt


@pytest.mark.real_model
def test_batched_greedy_mostly_matches_sequential(model: tuple[Any, Any]) -> None:
    llm, renderer = model
    _, results = _collect(batched_job(llm, renderer, CONFIG, PROBES, GREEDY, None))
    reference = [_sequential(llm, renderer, prompt, GREEDY) for prompt in PROBES]
    identical = sum(results[i].text == reference[i] for i in range(len(PROBES)))
    # Batched kernels sum in another order; near-ties may flip a token, so not every probe has to match.
    assert identical >= len(PROBES) // 2, [(results[i].text, reference[i]) for i in range(len(PROBES))]
    assert all(results[i].text for i in range(len(PROBES)))


@pytest.mark.real_model
def test_streams_are_interleaved_complete_and_timed(model: tuple[Any, Any]) -> None:
    llm, renderer = model
    prefix = renderer.system_prefix(CONFIG)
    seen, results = _collect(batched_job(llm, renderer, CONFIG, PROBES, GREEDY, None))
    assert sorted(results) == list(range(len(PROBES)))
    first_result = next(n for n, (_, event) in enumerate(seen) if isinstance(event, GenerationResult))
    assert len({index for index, _ in seen[:first_result]}) == len(PROBES)
    for index, prompt in enumerate(PROBES):
        own = [event for i, event in seen if i == index]
        tokens = [event for event in own if isinstance(event, TokenEvent)]
        assert own[-1] is results[index]
        assert [t.index for t in tokens] == list(range(len(tokens)))
        result = results[index]
        assert "".join(t.text for t in tokens) == result.text
        assert result.mode is DecodingMode.BATCHED
        assert result.cached_tokens == len(prefix)
        assert result.prompt_tokens == len(prefix) + len(renderer.continuation(CONFIG, prompt))
        assert 0 < result.completion_tokens <= GREEDY.max_tokens
        assert result.time_to_first_token_s is not None and result.time_to_first_token_s <= result.total_s
    assert llm.n_tokens == len(prefix)


@pytest.mark.real_model
def test_cancel_ends_every_probe(model: tuple[Any, Any]) -> None:
    llm, renderer = model
    cancel = CancelToken()
    seen: list[tuple[int, StreamEvent]] = []
    prompts = PROBES * 2  # more than the six sequences, so some are still queued
    for index, event in batched_job(llm, renderer, CONFIG, prompts, GenerationParams(max_tokens=64), cancel):
        seen.append((index, event))
        if len(seen) == 8:
            cancel.cancel()
    results = {index: event for index, event in seen if isinstance(event, GenerationResult)}
    assert sorted(results) == list(range(len(prompts)))
    assert all(result.stop_reason is StopReason.CANCELLED for result in results.values())
    # Cancel is seen before the next batch: live probes got at most one more token, queued ones never started.
    assert all(results[i].completion_tokens <= 3 for i in range(6))
    assert all(results[i].completion_tokens == 0 and results[i].text == "" for i in range(6, 12))
    # The model is consistent afterwards: a fresh batch still answers.
    _, again = _collect(batched_job(llm, renderer, CONFIG, PROBES[:1], GREEDY, None))
    assert again[0].text == _sequential(llm, renderer, PROBES[0], GREEDY)


@pytest.mark.real_model
def test_stop_strings_cut_the_text(model: tuple[Any, Any]) -> None:
    llm, renderer = model
    prompt = PROBES[1]
    _, plain = _collect(batched_job(llm, renderer, CONFIG, [prompt], GREEDY, None))
    words = plain[0].text.split()
    assert len(words) >= 4
    stop = words[len(words) // 2]
    params = GenerationParams(temperature=0.0, max_tokens=GREEDY.max_tokens, stop=(stop,))
    seen, stopped = _collect(batched_job(llm, renderer, CONFIG, [prompt], params, None))
    expected = plain[0].text[: plain[0].text.index(stop)]
    assert stopped[0].text == expected
    assert stopped[0].stop_reason is StopReason.STOP
    assert "".join(e.text for _, e in seen if isinstance(e, TokenEvent)) == expected


@pytest.mark.real_model
def test_more_prompts_than_slots_are_all_answered(embedded_model: Path) -> None:
    from studio.core.inference.chat_render import ChatRenderer

    llm = _load(embedded_model, sequences=3)
    try:
        renderer = ChatRenderer(llm)
        assert parallel_sequences(llm) == 2
        seen, results = _collect(batched_job(llm, renderer, CONFIG, PROBES[:5], GREEDY, None))
        assert sorted(results) == list(range(5))
        assert all(result.text and result.stop_reason is not StopReason.CANCELLED for result in results.values())
        order = [index for index, _ in seen]
        first_of_third = order.index(2)
        assert any(isinstance(event, GenerationResult) for _, event in seen[:first_of_third])
    finally:
        llm.close()


@pytest.mark.real_model
def test_a_full_kv_cache_pushes_out_a_probe_that_resumes_where_it_was(embedded_model: Path) -> None:
    from studio.core.inference.chat_render import ChatRenderer

    llm = _load(embedded_model, n_ctx=256)
    try:
        renderer = ChatRenderer(llm)
        prompts = [f"Write a long story about a {animal} who learns to bake bread." for animal in ("cat", "fox", "owl")]
        # Each probe fits alone; two are admitted, and they outgrow the cache before they end.
        params = GenerationParams(temperature=0.0, max_tokens=150)
        seen, results = _collect(batched_job(llm, renderer, CONFIG, prompts, params, None))
        assert sorted(results) == [0, 1, 2]
        assert sum(r.extra["preemptions"] for r in results.values()) > 0
        for index, prompt in enumerate(prompts):
            streamed = "".join(e.text for i, e in seen if i == index and isinstance(e, TokenEvent))
            assert streamed == results[index].text
            alone = _collect(batched_job(llm, renderer, CONFIG, [prompt], params, None))[1][0]
            assert results[index].completion_tokens == alone.completion_tokens
    finally:
        llm.close()


@pytest.mark.real_model
def test_single_sequence_context_decodes_one_at_a_time(embedded_model: Path) -> None:
    from studio.core.inference.chat_render import ChatRenderer

    llm = _load(embedded_model, sequences=None)
    try:
        renderer = ChatRenderer(llm)
        assert parallel_sequences(llm) == 1
        _, results = _collect(batched_job(llm, renderer, CONFIG, PROBES[:3], GREEDY, None))
        for index in range(3):
            assert results[index].text == _sequential(llm, renderer, PROBES[index], GREEDY)
    finally:
        llm.close()


@pytest.mark.real_model
def test_each_sequence_decodes_under_its_own_grammar(model: tuple[Any, Any]) -> None:
    llm, renderer = model
    colour = {
        "type": "object",
        "properties": {"colour": {"type": "string", "enum": ["red", "blue"]}},
        "required": ["colour"],
        "additionalProperties": False,
    }
    count = {
        "type": "object",
        "properties": {"count": {"type": "integer", "enum": [1, 2, 3]}},
        "required": ["count"],
        "additionalProperties": False,
    }
    params = [GenerationParams(temperature=0.0, max_tokens=24, json_schema=s) for s in (colour, count, colour)]
    prefix = renderer.system_prefix(CONFIG)
    continuations = [renderer.continuation(CONFIG, p) for p in PROBES[:3]]
    _, results = _collect(batched_tokens_job(llm, prefix, continuations, params, None))
    assert set(json.loads(results[0].text)) == {"colour"} and json.loads(results[0].text)["colour"] in {"red", "blue"}
    assert json.loads(results[1].text)["count"] in {1, 2, 3}
    assert set(json.loads(results[2].text)) == {"colour"}


def test_shared_prefix_leaves_each_list_a_token() -> None:
    assert shared_prefix([[1, 2, 3, 4], [1, 2, 5], [1, 2, 3]]) == 2
    assert shared_prefix([[1, 2], [1, 2]]) == 1
    assert shared_prefix([[7, 8, 9]]) == 2
    assert shared_prefix([]) == 0


@pytest.mark.real_model
def test_rejects_what_it_cannot_batch(model: tuple[Any, Any]) -> None:
    llm, renderer = model
    with pytest.raises(BackendError, match="probe 1"):
        list(batched_job(llm, renderer, CONFIG, ["hi", "word " * 1200], GREEDY, None))


def test_greedy_in_numpy_picks_what_the_native_chain_picks() -> None:
    import ctypes

    import llama_cpp
    import numpy as np

    from studio.core.inference.batch import _TOKEN_DATA, _Greedy, native_greedy_chain

    n_vocab, steps = 512, 400
    rng = np.random.default_rng(7)
    chain = native_greedy_chain(n_vocab, 1.3).chain
    fast = _Greedy(n_vocab, 1.3)
    data = (llama_cpp.llama_token_data * n_vocab)()
    view = np.ctypeslib.as_array(data).view(np.dtype(_TOKEN_DATA))
    picked = []
    for _ in range(steps):
        # Few distinct values, half of them negative, so penalties decide and ties are common.
        logits = rng.integers(-3, 4, n_vocab).astype(np.float32) * np.float32(0.37)
        logits[rng.integers(0, 24, 8)] += np.float32(1.1)  # a few favourites that keep coming back
        view["id"], view["logit"], view["p"] = np.arange(n_vocab), logits, 0.0
        array = llama_cpp.llama_token_data_array(data, n_vocab, -1, False)
        llama_cpp.llama_sampler_apply(chain, ctypes.byref(array))
        native = int(view["id"][array.selected])
        llama_cpp.llama_sampler_accept(chain, native)
        assert fast.pick(logits) == native
        picked.append(native)
    llama_cpp.llama_sampler_free(chain)
    assert len(set(picked)) > 10  # the penalty moved the choice around, it did not pick one token throughout
    assert len(fast.window) == 64


@pytest.mark.real_model
def test_greedy_in_numpy_picks_what_the_full_native_chain_picks(
    model: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    llm, renderer = model
    schema = {
        "type": "object",
        "properties": {
            "reasoning": {"type": "string", "maxLength": 60},
            "rating": {"type": "integer", "enum": [0, 1, 2, 3, 4, 5]},
        },
        "required": ["reasoning", "rating"],
        "additionalProperties": False,
    }
    prefix = renderer.system_prefix(CONFIG)
    continuations = [renderer.continuation(CONFIG, p) for p in PROBES[:3]]
    from studio.core.inference.batch import _Greedy, native_greedy_chain

    refused: list[int] = []
    shortlist = _Greedy._best_admitted

    def counted(self: _Greedy, row: Any) -> int:
        refused.append(1)
        return shortlist(self, row)

    monkeypatch.setattr(_Greedy, "_best_admitted", counted)
    for params in (GenerationParams(temperature=0.0, max_tokens=48, json_schema=schema), GREEDY):
        with monkeypatch.context() as patched:
            _, fast = _collect(batched_tokens_job(llm, prefix, continuations, params, None))
            patched.setattr("studio.core.inference.batch._Greedy", native_greedy_chain)
            _, full = _collect(batched_tokens_job(llm, prefix, continuations, params, None))
        assert [fast[i].text for i in range(3)] == [full[i].text for i in range(3)]
        if params.json_schema is not None:
            assert all(fast[i].text.startswith("{") and '"reasoning"' in fast[i].text for i in range(3))
            assert refused  # the grammar refused the model's best token at some steps: the short list was used


def _planned(prompt: int, budget: int) -> _Probe:
    return _Probe(index=0, prompt=[1] * prompt, budget=budget, params=GREEDY)


def test_cpu_width_keeps_long_replies_few_and_short_replies_many() -> None:
    # A check: a 545-token config, probes of ~35 tokens with 256-token replies: a handful side by side.
    assert cpu_width(545, [_planned(35, 256)] * 18) == 5
    # Many short replies under one long config: the prefix dominates the cells, all of them at once.
    assert cpu_width(1942, [_planned(20, 48)] * 16) >= 16
    # Never fewer than CPU_MIN_LIVE, however long the requests.
    assert cpu_width(100, [_planned(900, 700)] * 8) == CPU_MIN_LIVE


def test_share_starts_groups_requests_about_one_exchange_and_keeps_others_apart() -> None:
    from studio.core.inference.batch import SHARED_START_MIN, share_starts

    exchange_a, exchange_b = list(range(100, 400)), list(range(500, 800))
    helpful, comply = [1, 2, 3], [4, 5, 6, 7]
    probe = list(range(900, 900 + SHARED_START_MIN + 8))
    requests = [
        exchange_a + helpful,  # 0
        exchange_b + helpful,  # 1
        exchange_a + comply,  # 2: the rest of exchange 0's questions
        exchange_b + comply,  # 3
        probe + list(range(2000, 2200)),  # 4: the same probe, another long reply: decodes on its own
        probe + list(range(3000, 3200)),  # 5
        exchange_a + helpful,  # 6: the same request again
    ]
    assert share_starts(requests) == [[0, 2, 6], [1, 3], [4], [5]]
    assert share_starts([[1] * 10, [1] * 10 + [2]]) == [[0], [1]]  # too short a start to be worth a follow-up
    assert share_starts([]) == []
