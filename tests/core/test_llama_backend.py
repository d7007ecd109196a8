"""The llama.cpp backend: owner thread, streaming, sampling, stop rules, structured output, prefix KV reuse and
clear errors for broken model files."""

from __future__ import annotations

import json
import os
import shutil
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from studio.core.errors import BackendError, InputError
from studio.core.inference.base import (
    Backend,
    BatchBackend,
    CancelToken,
    DecodingMode,
    FollowUp,
    GenerationParams,
    GenerationResult,
    Message,
    StopReason,
    StreamEvent,
    TokenEvent,
    chat,
    complete,
    follow_up_messages,
)
from studio.core.inference.llama_backend import LlamaCppBackend, LlamaSettings, _Engine, _StopWatcher

CONFIG_A = "You work for a cooking website. Only talk about food and recipes, and keep answers short."
CONFIG_B = "You are a pirate captain. Answer every question in pirate speech, with enthusiasm."
PROBE = "What should I cook for dinner tonight?"
GREEDY = GenerationParams(temperature=0.0, max_tokens=24)


def _settings(**overrides: Any) -> LlamaSettings:
    base: dict[str, Any] = {"max_context": 1024, "n_threads": 1, "cache_budget_mb": 64}
    base.update(overrides)
    return LlamaSettings(**base)


def _collect(events: Iterator[StreamEvent]) -> tuple[list[TokenEvent], GenerationResult]:
    tokens: list[TokenEvent] = []
    results: list[GenerationResult] = []
    for event in events:
        if isinstance(event, TokenEvent):
            assert not results, "token after the result"
            tokens.append(event)
        else:
            results.append(event)
    assert len(results) == 1
    return tokens, results[0]


@pytest.fixture(scope="module")
def backend(embedded_model: Path) -> Iterator[LlamaCppBackend]:
    with LlamaCppBackend(embedded_model, _settings(), name="smol") as loaded:
        yield loaded


# -- broken files (no model needed) ----------------------------------------------------------------------------------


def test_missing_file_is_a_one_line_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        LlamaCppBackend(tmp_path / "absent.gguf")
    assert str(tmp_path / "absent.gguf") in str(caught.value)
    assert "\n" not in str(caught.value)


def test_random_bytes_are_not_a_gguf(tmp_path: Path) -> None:
    path = tmp_path / "noise.gguf"
    path.write_bytes(os.urandom(4096).replace(b"GGUF", b"XXXX"))
    with pytest.raises(InputError, match="GGUF") as caught:
        LlamaCppBackend(path)
    assert str(path) in str(caught.value)


def _gguf_with_architecture(architecture: str) -> bytes:
    def string(text: str) -> bytes:
        raw = text.encode()
        return struct.pack("<Q", len(raw)) + raw

    header = b"GGUF" + struct.pack("<IQQ", 3, 0, 2)
    header += string("general.architecture") + struct.pack("<I", 8) + string(architecture)
    header += string("general.name") + struct.pack("<I", 8) + string("made up")
    return header + b"\0" * (-len(header) % 32)


def test_unsupported_architecture_names_it(tmp_path: Path) -> None:
    path = tmp_path / "bogus.gguf"
    path.write_bytes(_gguf_with_architecture("bogusarch"))
    with pytest.raises(BackendError) as caught:
        LlamaCppBackend(path, _settings())
    message = str(caught.value)
    assert str(path) in message and "bogusarch" in message
    assert "\n" not in message
    assert _Engine._current is None or all(b.model_path != path for b in _Engine._current.backends)


@pytest.mark.real_model
def test_truncated_model_is_refused_before_llama_cpp(embedded_model: Path, tmp_path: Path) -> None:
    path = tmp_path / "truncated.gguf"
    with embedded_model.open("rb") as src, path.open("wb") as dst:
        shutil.copyfileobj(src, dst)
    size = path.stat().st_size
    with path.open("r+b") as handle:
        handle.truncate(size // 2)
    with pytest.raises(InputError, match=r"truncated|past the end|end of the file") as caught:
        LlamaCppBackend(path, _settings())
    assert str(path) in str(caught.value)


# -- stop strings and text assembly (no model needed) ---------------------------------------------------------------


def test_stop_watcher_holds_back_a_possible_stop_prefix() -> None:
    watcher = _StopWatcher(["</end>"])
    assert watcher.feed("Hello <") == ("Hello ", False)
    assert watcher.feed("/en") == ("", False)
    assert watcher.feed("d> tail") == ("", True)
    assert watcher.text == "Hello "


def test_stop_watcher_releases_text_that_did_not_become_a_stop() -> None:
    watcher = _StopWatcher(["STOP"])
    assert watcher.feed("ST") == ("", False)
    assert watcher.feed("ART") == ("START", False)
    assert watcher.flush("") == ""
    watcher.feed("x S")
    assert watcher.flush("") == "S"
    assert watcher.text == "STARTx S"


# -- the loaded model -------------------------------------------------------------------------------------------------


@pytest.mark.real_model
def test_implements_the_backend_protocols(backend: LlamaCppBackend) -> None:
    assert isinstance(backend, Backend)
    assert isinstance(backend, BatchBackend)
    info = backend.info
    assert info.kind == "llama.cpp"
    assert info.context_length == 1024  # min(trained 8192, max_context)
    assert info.device == "cpu" and info.gpu_layers == 0  # this llama.cpp build offloads nothing
    assert info.extra["flash_attention"] is False  # "auto" on the CPU: the unfused attention
    assert info.chat_template_sha256 is not None and len(info.chat_template_sha256) == 64


@pytest.mark.real_model
def test_stream_yields_tokens_then_one_result(backend: LlamaCppBackend) -> None:
    messages = chat(CONFIG_A, PROBE)
    tokens, result = _collect(backend.stream(messages, GREEDY))
    assert tokens and "".join(t.text for t in tokens) == result.text
    assert [t.index for t in tokens] == list(range(len(tokens)))
    assert result.prompt_tokens == len(backend.render(messages))
    assert 0 < result.completion_tokens <= GREEDY.max_tokens
    assert result.stop_reason in (StopReason.STOP, StopReason.LENGTH)
    assert result.time_to_first_token_s is not None and result.total_s >= result.time_to_first_token_s
    assert result.mode == DecodingMode.SEQUENTIAL


@pytest.mark.real_model
def test_stream_can_be_consumed_from_another_thread(backend: LlamaCppBackend) -> None:
    outcome: list[GenerationResult] = []
    worker = threading.Thread(target=lambda: outcome.append(complete(backend, chat(CONFIG_A, PROBE), GREEDY)))
    worker.start()
    worker.join()
    assert outcome and outcome[0].text == complete(backend, chat(CONFIG_A, PROBE), GREEDY).text


@pytest.mark.real_model
def test_max_tokens_gives_length(backend: LlamaCppBackend) -> None:
    result = complete(backend, chat(CONFIG_B, "Tell me a long story about the sea."), GenerationParams(max_tokens=5))
    assert result.completion_tokens == 5
    assert result.stop_reason == StopReason.LENGTH


@pytest.mark.real_model
def test_stop_string_cuts_the_reply(backend: LlamaCppBackend) -> None:
    full = complete(backend, chat(CONFIG_B, PROBE), GREEDY).text
    words = full.split()
    assert len(words) >= 4, full
    stop = words[2]
    cut = complete(backend, chat(CONFIG_B, PROBE), GenerationParams(max_tokens=24, stop=(stop,)))
    assert cut.stop_reason == StopReason.STOP
    assert cut.text == full[: full.index(stop)]


@pytest.mark.real_model
def test_cancel_stops_within_one_token(backend: LlamaCppBackend) -> None:
    cancel = CancelToken()
    seen = 0
    result: GenerationResult | None = None
    for event in backend.stream(chat(CONFIG_B, PROBE), GenerationParams(max_tokens=32), cancel):
        if isinstance(event, TokenEvent):
            seen += 1
            cancel.cancel()
        else:
            result = event
    assert result is not None
    assert result.stop_reason == StopReason.CANCELLED
    assert seen == 1 and result.completion_tokens <= 2


@pytest.mark.real_model
def test_closing_a_stream_early_leaves_the_backend_usable(backend: LlamaCppBackend) -> None:
    stream = backend.stream(chat(CONFIG_B, PROBE), GenerationParams(max_tokens=32))
    assert isinstance(next(iter(stream)), TokenEvent)
    stream.close()  # type: ignore[attr-defined]
    assert complete(backend, chat(CONFIG_B, PROBE), GREEDY).completion_tokens > 0


@pytest.mark.real_model
def test_seeded_sampling_repeats_and_depends_on_the_seed(backend: LlamaCppBackend) -> None:
    hot = GenerationParams(temperature=1.5, top_p=1.0, top_k=0, max_tokens=24, seed=11)
    first = complete(backend, chat(CONFIG_B, PROBE), hot).text
    assert complete(backend, chat(CONFIG_B, PROBE), hot).text == first
    other = GenerationParams(temperature=1.5, top_p=1.0, top_k=0, max_tokens=24, seed=12)
    assert complete(backend, chat(CONFIG_B, PROBE), other).text != first


@pytest.mark.real_model
def test_multibyte_text_is_never_split(backend: LlamaCppBackend) -> None:
    # The grammar forces a reply whose characters span several byte-level tokens each ("🍣" is three tokens);
    # the emoji, outside the Basic Multilingual Plane, also checks the surrogate-pair repair of the grammar.
    word = "寿司🍣日本語"
    tokens, result = _collect(
        backend.stream(
            chat(None, "Say sushi in Japanese."),
            GenerationParams(max_tokens=32, json_schema={"type": "string", "enum": [word]}),
        )
    )
    assert result.text == json.dumps(word, ensure_ascii=False)
    assert result.completion_tokens > len(result.text)  # more tokens than characters: pieces were partial
    assert all("\ufffd" not in t.text for t in tokens)
    assert "".join(t.text for t in tokens) == result.text


@pytest.mark.real_model
def test_json_schema_output_parses_and_validates(backend: LlamaCppBackend) -> None:
    schema = {
        "type": "object",
        "properties": {"verdict": {"type": "string", "enum": ["complies", "violates"]}, "score": {"type": "integer"}},
        "required": ["verdict", "score"],
        "additionalProperties": False,
    }
    result = complete(
        backend,
        chat("You grade replies.", "Grade this reply: 'Paris is the capital of France.'"),
        GenerationParams(max_tokens=32, json_schema=schema),
    )
    assert result.stop_reason == StopReason.STOP, result.text
    value = json.loads(result.text)
    assert set(value) == {"verdict", "score"}
    assert value["verdict"] in ("complies", "violates")
    assert isinstance(value["score"], int)


@pytest.mark.real_model
def test_prompt_longer_than_the_context_says_by_how_much(embedded_model: Path) -> None:
    with LlamaCppBackend(embedded_model, _settings(max_context=128)) as small:
        with pytest.raises(InputError) as caught:
            complete(small, chat(CONFIG_A, "word " * 300), GREEDY)
        message = str(caught.value)
        assert str(small.info.context_length) in message and str(embedded_model) in message and "\n" not in message
        assert complete(small, chat(None, "Hi"), GenerationParams(max_tokens=4)).completion_tokens > 0


@pytest.mark.real_model
def test_count_tokens_matches_the_tokenizer(backend: LlamaCppBackend) -> None:
    assert backend.count_tokens("") == 0
    assert backend.count_tokens("hello world") == 2
    assert backend.count_tokens("<|im_start|>") > 1  # text, not a control token


@pytest.mark.real_model
def test_run_owned_runs_in_the_owner_thread_and_stops_when_closed(backend: LlamaCppBackend) -> None:
    produced: list[int] = []

    def endless(llm: Any) -> Iterator[str]:
        index = 0
        while True:
            produced.append(index)
            index += 1
            yield threading.current_thread().name

    names = backend.run_owned(endless)
    assert next(iter(names)) == "llama-engine"
    names.close()  # type: ignore[attr-defined]
    assert complete(backend, chat(None, "Hi"), GenerationParams(max_tokens=2)).completion_tokens > 0
    assert len(produced) <= 2 + 4  # what was read, plus at most the hand-off queue


@pytest.mark.real_model
def test_stream_batch_gives_every_prompt_one_result(backend: LlamaCppBackend) -> None:
    prompts = ["Name a fruit.", "Name a vegetable.", "Name a spice."]
    results: dict[int, GenerationResult] = {}
    texts: dict[int, str] = {i: "" for i in range(len(prompts))}
    for index, event in backend.stream_batch(CONFIG_A, prompts, GenerationParams(max_tokens=12)):
        if isinstance(event, TokenEvent):
            texts[index] += event.text
        else:
            assert index not in results
            results[index] = event
    assert sorted(results) == [0, 1, 2]
    prefix_tokens = len(backend.render([Message("system", CONFIG_A), Message("user", "x")])) - len(
        backend.render([Message("user", "x")])
    )
    assert prefix_tokens != 0
    for index, result in results.items():
        assert result.mode == DecodingMode.BATCHED
        assert result.text == texts[index]
        assert result.cached_tokens > 0
    # A sequential request after a batch still gives the from-scratch answer.
    assert complete(backend, chat(CONFIG_A, PROBE), GREEDY).text == _scratch(backend.model_path, CONFIG_A, PROBE)


# -- prefix KV reuse -------------------------------------------------------------------------------------------------


def _scratch(model: Path, config: str, probe: str) -> str:
    with LlamaCppBackend(model, _settings(cache_budget_mb=0)) as fresh:
        result = complete(fresh, chat(config, probe), GREEDY)
        assert result.cached_tokens == 0
        return result.text


@pytest.mark.real_model
def test_alternating_configs_reuse_their_prefix_and_match_scratch(embedded_model: Path) -> None:
    expected = {c: _scratch(embedded_model, c, PROBE) for c in (CONFIG_A, CONFIG_B)}
    assert expected[CONFIG_A] != expected[CONFIG_B]
    with LlamaCppBackend(embedded_model, _settings()) as warm:
        sources = []
        for config in (CONFIG_A, CONFIG_B, CONFIG_A, CONFIG_B, CONFIG_B):
            result = complete(warm, chat(config, PROBE), GREEDY)
            assert result.text == expected[config]
            sources.append(result.extra["prefix_cache"])
            if sources[-1] != "miss":
                assert result.cached_tokens == result.extra["prefix_tokens"] > 0
        assert sources == ["miss", "miss", "memory", "memory", "live"]
        other_probe = complete(warm, chat(CONFIG_A, "How do I boil an egg?"), GREEDY)
        assert other_probe.cached_tokens > 0
        assert other_probe.text == _scratch(embedded_model, CONFIG_A, "How do I boil an egg?")


@pytest.mark.real_model
def test_disk_spill_survives_a_restart(embedded_model: Path, tmp_path: Path) -> None:
    expected = _scratch(embedded_model, CONFIG_B, PROBE)
    cache_dir = tmp_path / "kv"
    with LlamaCppBackend(embedded_model, _settings(cache_dir=cache_dir)) as first:
        assert complete(first, chat(CONFIG_B, PROBE), GREEDY).extra["prefix_cache"] == "miss"
    assert len(list(cache_dir.glob("*.kvstate"))) == 1
    with LlamaCppBackend(embedded_model, _settings(cache_dir=cache_dir)) as second:
        result = complete(second, chat(CONFIG_B, PROBE), GREEDY)
    assert result.extra["prefix_cache"] == "disk"
    assert result.cached_tokens == result.extra["prefix_tokens"] > 0
    assert result.text == expected


@pytest.mark.real_model
def test_corrupt_disk_state_is_ignored(embedded_model: Path, tmp_path: Path) -> None:
    cache_dir = tmp_path / "kv"
    with LlamaCppBackend(embedded_model, _settings(cache_dir=cache_dir)) as first:
        expected = complete(first, chat(CONFIG_A, PROBE), GREEDY).text
    (state_file,) = cache_dir.glob("*.kvstate")
    data = bytearray(state_file.read_bytes())
    data[-10] ^= 0xFF
    state_file.write_bytes(bytes(data))
    with LlamaCppBackend(embedded_model, _settings(cache_dir=cache_dir)) as second:
        result = complete(second, chat(CONFIG_A, PROBE), GREEDY)
    assert result.extra["prefix_cache"] == "miss"
    assert result.text == expected


# -- lifecycle --------------------------------------------------------------------------------------------------------


@pytest.mark.real_model
def test_models_share_one_llama_thread_that_ends_with_the_last(embedded_model: Path) -> None:
    engines = [t for t in threading.enumerate() if t.name == "llama-engine"]
    first = LlamaCppBackend(embedded_model, _settings(), name="first")
    second = LlamaCppBackend(embedded_model, _settings(), name="second")
    engine = first._engine
    try:
        assert second._engine is engine
        threads = {
            b.info.name: next(iter(b.run_owned(lambda _llm: iter([threading.get_ident()])))) for b in (first, second)
        }
        assert threads["first"] == threads["second"] == engine.thread.ident
        first.close()
        assert first._llm is None and first not in engine.backends
        assert complete(second, chat(None, "Hi"), GREEDY).completion_tokens > 0  # the other model goes on
        first.close()  # a second close is harmless
        with pytest.raises(BackendError):
            complete(first, chat(None, "Hi"), GREEDY)
    finally:
        second.close()
    if not engines:  # no other model of this process holds the thread: it ended with the last one
        assert not engine.thread.is_alive() and _Engine._current is None


@pytest.mark.real_model
def test_two_models_interleave_their_jobs_on_the_llama_thread(embedded_model: Path) -> None:
    first = LlamaCppBackend(embedded_model, _settings(), name="first")
    second = LlamaCppBackend(embedded_model, _settings(), name="second")
    order: list[str] = []

    def counting(name: str) -> Callable[[Any], Iterator[int]]:
        def job(_llm: Any) -> Iterator[int]:
            for index in range(20):
                order.append(name)
                yield index

        return job

    try:
        a = iter(first.run_owned(counting("first")))
        b = iter(second.run_owned(counting("second")))
        # The first job runs ahead only as far as its hand-off queue; then the second model's job gets the thread.
        assert (next(a), next(b)) == (0, 0)
        assert [*a] == list(range(1, 20)) and [*b] == list(range(1, 20))
        assert order.index("second") < len(order) - 1 - order[::-1].index("first")
        assert order.count("first") == order.count("second") == 20
    finally:
        first.close()
        second.close()


@pytest.mark.real_model
def test_close_while_a_stream_is_unread_does_not_hang(embedded_model: Path) -> None:
    loaded = LlamaCppBackend(embedded_model, _settings(), name="abandoned")
    stream = iter(loaded.stream(chat(CONFIG_B, PROBE), GenerationParams(max_tokens=32)))
    assert isinstance(next(stream), TokenEvent)
    loaded.close()
    with pytest.raises(BackendError, match="closed"):
        for _event in stream:
            pass
    assert loaded._llm is None


# -- GPU offload mapping (simulated builds) ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("supports", "system_info", "expected"),
    [
        (False, b"CPU : AVX2 = 1 |", None),
        (True, b"CUDA : ARCHS = 900 | CPU : AVX2 = 1 |", "cuda"),
        (True, b"Metal : EMBED_LIBRARY = 1 | CPU : NEON = 1 |", "metal"),
    ],
)
def test_gpu_device_comes_from_the_build(
    monkeypatch: pytest.MonkeyPatch, supports: bool, system_info: bytes, expected: str | None
) -> None:
    import llama_cpp

    from studio.core.inference.llama_backend import gpu_device_name

    monkeypatch.setattr(llama_cpp, "llama_supports_gpu_offload", lambda: supports)
    monkeypatch.setattr(llama_cpp, "llama_print_system_info", lambda: system_info)
    assert gpu_device_name() == expected


@pytest.mark.parametrize(
    ("setting", "device", "layers"),
    [("auto", "cuda", -1), ("auto", None, 0), ("cpu", "cuda", 0), (12, "metal", 12), (12, None, 0), (0, "cuda", 0)],
)
def test_gpu_setting_maps_to_offloaded_layers(setting: str | int, device: str | None, layers: int) -> None:
    from studio.core.inference.llama_backend import _requested_gpu_layers

    assert _requested_gpu_layers(setting, device) == layers  # type: ignore[arg-type]


@pytest.mark.real_model
@pytest.mark.parametrize("setting", ["auto", "on", "off"])
def test_flash_attention_setting_reaches_the_context(embedded_model: Path, setting: str) -> None:
    import llama_cpp

    settings = LlamaSettings(gpu="cpu", max_context=512, n_threads=2, flash_attention=setting)  # type: ignore[arg-type]
    with LlamaCppBackend(embedded_model, settings) as backend:
        (attention,) = list(backend.run_owned(lambda llm: iter([llm.context_params.flash_attn_type])))
        reply = complete(backend, chat(CONFIG_A, PROBE), GenerationParams(temperature=0.0, max_tokens=4))
    wanted = llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED if setting == "on" else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
    assert attention == wanted
    assert backend.info.extra["flash_attention"] is (setting == "on")
    assert reply.completion_tokens > 0


ON_TOPIC = {
    "type": "object",
    "properties": {"on_topic": {"type": "boolean"}},
    "required": ["on_topic"],
    "additionalProperties": False,
}


@pytest.mark.real_model
def test_follow_ups_read_only_their_question_and_answer_as_a_fresh_request(backend: LlamaCppBackend) -> None:
    json_params = replace(GREEDY, max_tokens=16, json_schema=ON_TOPIC)
    asked = [
        FollowUp("Did your last reply stay on food? Answer in JSON.", json_params),
        FollowUp("Again, briefly.", GREEDY),
    ]

    def exchange(prompts: list[str]) -> dict[tuple[int, int], GenerationResult]:
        events = backend.stream_exchanges(CONFIG_A, prompts, GREEDY, asked)
        return {(index, step): event for index, step, event in events if isinstance(event, GenerationResult)}

    both = exchange([PROBE, "Name a spice."])
    assert set(both) == {(i, s) for i in range(2) for s in range(3)}
    assert all(isinstance(json.loads(both[(i, 1)].text)["on_topic"], bool) for i in range(2))
    # One probe alone decodes as sequential decoding does (batched rows may round differently), so its answers
    # equal fresh requests over the whole exchange.
    alone = exchange([PROBE])
    reply = alone[(0, 0)]
    for step, follow_up in enumerate(asked, start=1):
        answer = alone[(0, step)]
        # The probe and the reply were in the KV cells already: only the turn ends and the question were read.
        assert answer.cached_tokens >= reply.prompt_tokens + reply.completion_tokens - 1
        messages = follow_up_messages(CONFIG_A, PROBE, reply.text, follow_up.question)
        assert answer.text == complete(backend, messages, follow_up.params).text


def _judge_requests(questions: list[str], replies: dict[str, str]) -> list[list[Message]]:
    """Every question about every exchange, in the order all questions of the first exchange first."""
    return [follow_up_messages(CONFIG_A, probe, reply, q) for q in questions for probe, reply in replies.items()]


@pytest.mark.real_model
def test_requests_about_one_exchange_read_it_once(backend: LlamaCppBackend) -> None:
    replies = {
        PROBE: "Boil the pasta in salted water for ten minutes, drain it and toss it with butter and cheese.",
        "Name a spice.": "Cumin: earthy and warm, it goes well in stews, curries and roasted vegetables.",
    }
    questions = ["Did your last reply stay on food? Answer in JSON.", "Was your last reply short? Answer in JSON."]
    requests = _judge_requests(questions, replies)
    json_params = replace(GREEDY, max_tokens=16, json_schema=ON_TOPIC)
    results = {
        index: event
        for index, event in backend.stream_requests(requests, json_params)
        if isinstance(event, GenerationResult)
    }
    assert sorted(results) == [0, 1, 2, 3]
    fresh = backend.render(requests[2])
    # The second question about each exchange kept the exchange's cells: only its own end was read.
    for first, later in ((0, 2), (1, 3)):
        assert results[later].prompt_tokens == len(backend.render(requests[later]))
        assert results[later].cached_tokens > results[first].cached_tokens + 20
        assert results[later].cached_tokens >= len(fresh) - 40
    assert all(isinstance(json.loads(r.text)["on_topic"], bool) for r in results.values())


@pytest.mark.real_model
def test_a_cancel_still_ends_every_request_about_one_exchange(backend: LlamaCppBackend) -> None:
    replies = {PROBE: "Boil the pasta and toss it with butter and a little cheese, then serve it hot and fresh."}
    replies["Name a spice."] = "Cumin, which is earthy and warm and goes well in stews, curries and soups of all kinds."
    requests = _judge_requests(["Was that about food?", "Was that short?"], replies)
    cancel = CancelToken()
    ended: dict[int, StopReason] = {}
    for index, event in backend.stream_requests(requests, replace(GREEDY, max_tokens=24), cancel):
        cancel.cancel()
        if isinstance(event, GenerationResult):
            ended[index] = event.stop_reason
    assert sorted(ended) == [0, 1, 2, 3]
    assert ended[2] is ended[3] is StopReason.CANCELLED  # never started: ended as cancelled, not left out


@pytest.mark.real_model
def test_no_follow_up_is_asked_after_a_cancel(backend: LlamaCppBackend) -> None:
    cancel = CancelToken()
    asked = [FollowUp("Was that on food? Answer yes or no.", GREEDY)]
    seen: list[tuple[int, int, StopReason]] = []
    for index, step, event in backend.stream_exchanges(CONFIG_A, [PROBE, "Name a spice."], GREEDY, asked, cancel):
        if isinstance(event, TokenEvent) and step == 0:
            cancel.cancel()
        if isinstance(event, GenerationResult):
            seen.append((index, step, event.stop_reason))
    assert sorted(i for i, _, _ in seen) == [0, 1]  # one result per reply, no follow-up
    assert all(step == 0 and reason is StopReason.CANCELLED for _, step, reason in seen)
