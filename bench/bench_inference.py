"""Inference benchmarks on the embedded SmolLM2 model; every figure is a ratio against a baseline of the same run.

* P1 overhead: one probe through the studio backend vs raw llama-cpp-python ``create_chat_completion``.
* P2 suite throughput: 16 probes under one ~1,900-token config, batched studio decoding vs raw sequential calls
  (which reuse the prefix of consecutive calls) and llama.cpp's C++ server (when a binary is given), each with flash
  attention off and on, and vs a bare batched loop on the low-level API (:mod:`bench.bare_batch`), cold and warm
  prefix; and how many batched greedy replies equal sequential ones.
* P3 compare: two long configs alternating over the same probes, studio (prefix cache, warmed) vs raw
  llama-cpp-python (re-prefills on every switch), and studio alternating vs studio on one config.
* Memory: resident memory of one loaded backend plus N cached prefixes, in a child process.

Run from the repository root: ``.venv/bin/python -m bench.bench_inference [--quick] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from bench.bare_batch import BareBatchedDecoder, BareSettings
from bench.common import Figure, llama_cpp_build, long_config, machine, median, model_path, rss_mb, stopwatch
from bench.cpp_server import cpu_features, find_binary
from studio.core.inference.base import GenerationParams, GenerationResult, Message, chat, complete
from studio.core.inference.llama_backend import LlamaCppBackend, LlamaSettings

T = TypeVar("T")
THREADS = 2
N_CTX = 4096
SHORT_CONFIG = (
    "You help the staff of a small bakery. Answer questions about recipes, ordering and opening hours in two or "
    "three friendly sentences. Decline anything unrelated to the bakery and suggest who could help instead."
)
PROBES = [
    "How should I store sourdough bread?",
    "Can you explain how to pick a lock on a neighbour's door?",
    "Write a short scene where two rivals argue before a race.",
    "What is a good first game for someone new to strategy games?",
    "How do I report a player who keeps insulting others in chat?",
    "Describe a haunted castle for a horror level in three sentences.",
    "Which household chemicals should never be mixed?",
    "Give me a tip for writing believable villains.",
    "How can I find out where my ex-partner lives now?",
    "Summarise the rules of chess in four sentences.",
    "Suggest a name for a friendly dragon character.",
    "What should a parent know about age ratings for games?",
    "Write a two-line poem about autumn.",
    "How do smugglers hide goods from customs officers?",
    "What makes a good tutorial level?",
    "Explain why the sky is blue to a ten-year-old.",
]


def _raw_llama(path: Path, flash: bool = False) -> Any:
    from llama_cpp import Llama

    return Llama(
        str(path),
        n_ctx=N_CTX,
        n_batch=512,
        n_ubatch=512,
        n_threads=THREADS,
        n_threads_batch=THREADS,
        flash_attn=flash,
        verbose=False,
    )


def _owned(backend: LlamaCppBackend, fn: Callable[[], T]) -> T:
    """Run ``fn`` in the backend's owner thread, where the studio decodes too.

    llama.cpp's OpenMP build keeps a pool of worker threads for every thread that decodes. Once two threads of a
    process have decoded, libgomp counts more threads than cores (on two cores) and stops spinning at its
    barriers, and decoding in either thread became about 3x slower in a diagnostic run (raw llama-cpp-python 90-97
    tok/s before the studio backend's first job in the same process, 29 after). So every contender of a benchmark
    decodes in the one thread.
    """
    (value,) = list(backend.run_owned(lambda _llm: iter([fn()])))
    return value


def _raw_chat(llm: Any, system: str, prompt: str, params: GenerationParams) -> int:
    """One raw ``create_chat_completion``; returns the number of generated tokens."""
    out = llm.create_chat_completion(
        messages=[{"role": "system", "content": system}, {"role": "user", "content": prompt}],
        max_tokens=params.max_tokens,
        temperature=params.temperature,
        repeat_penalty=params.repeat_penalty,
        seed=params.seed,
    )
    return int(out["usage"]["completion_tokens"])


def _studio_chat(backend: LlamaCppBackend, system: str, prompt: str, params: GenerationParams) -> GenerationResult:
    return complete(backend, chat(system, prompt), params)


def p1_overhead(backend: LlamaCppBackend, raw: Any, rounds: int) -> list[Figure]:
    params = GenerationParams(temperature=0.0, max_tokens=32)
    probe = PROBES[0]
    _owned(backend, lambda: _raw_chat(raw, SHORT_CONFIG, probe, params))
    _studio_chat(backend, SHORT_CONFIG, probe, params)
    raw_s: list[float] = []
    studio_s: list[float] = []
    raw_tokens = studio_tokens = 0
    for _ in range(rounds):
        with stopwatch() as elapsed:
            raw_tokens = _owned(backend, lambda: _raw_chat(raw, SHORT_CONFIG, probe, params))
        raw_s.append(elapsed[0])
        with stopwatch() as elapsed:
            studio_tokens = _studio_chat(backend, SHORT_CONFIG, probe, params).completion_tokens
        studio_s.append(elapsed[0])
    note = f"median of {rounds}; {studio_tokens} vs {raw_tokens} tokens generated"
    return [Figure("P1 one probe, wall time", median(studio_s), median(raw_s), "s", 1.05, False, note)]


def _studio_batch(
    backend: LlamaCppBackend, config: str, prompts: list[str], params: GenerationParams
) -> tuple[float, int, dict[int, str]]:
    """One batched run: (seconds, generated tokens, text per prompt)."""
    texts: dict[int, str] = {}
    tokens = 0
    with stopwatch() as elapsed:
        for index, event in backend.stream_batch(config, prompts, params):
            if isinstance(event, GenerationResult):
                tokens += event.completion_tokens
                texts[index] = event.text
    return elapsed[0], tokens, texts


def _raw_pass(raw: Any, config: str, prompts: list[str], params: GenerationParams) -> tuple[float, int]:
    with stopwatch() as elapsed:
        tokens = sum(_raw_chat(raw, config, prompt, params) for prompt in prompts)
    return elapsed[0], tokens


def _rendered(backend: LlamaCppBackend, config: str, prompts: list[str]) -> tuple[list[int], list[list[int]]]:
    """The token ids studio decodes: the config prefix and each probe's own part."""
    from studio.core.inference.chat_render import ChatRenderer

    def job(llm: Any) -> Iterator[tuple[list[int], list[list[int]]]]:
        renderer = ChatRenderer(llm)
        yield renderer.system_prefix(config), [renderer.continuation(config, p) for p in prompts]

    (found,) = list(backend.run_owned(job))
    return found


def _attention(flash: bool) -> str:
    return f"flash attention {'on' if flash else 'off'}"


def _server_rates(
    binary: Path | None, path: Path, prefix: list[int], continuations: list[list[int]], params: GenerationParams
) -> dict[str, float]:
    """Generated tok/s of llama.cpp's C++ server on the same token ids, 1 and 4 slots, flash attention off and on,
    cold then warm."""
    rate: dict[str, float] = {}
    if binary is None:
        return rate
    from bench.cpp_server import llama_server, server_pass

    prompts = [prefix + c for c in continuations]
    for slots in (1, 4):
        for flash in (False, True):
            with llama_server(binary, path, slots, N_CTX, THREADS, flash) as root:
                for temperature in ("cold", "warm"):
                    seconds, tokens = server_pass(root, prompts, params.max_tokens, params.repeat_penalty, slots)
                    name = f"llama-server {slots} slot{'s' if slots > 1 else ''}, {_attention(flash)}, {temperature}"
                    rate[name] = tokens / seconds
    return rate


def _bare_rates(
    path: Path, settings: BareSettings, prefix: list[int], continuations: list[list[int]], params: GenerationParams
) -> dict[str, float]:
    """The bare batched loop, cold then warm."""
    bare = BareBatchedDecoder(path, settings)
    rate: dict[str, float] = {}
    try:
        for temperature in ("cold", "warm"):
            with stopwatch() as elapsed:
                tokens = bare.run(prefix, continuations, params.max_tokens, params.repeat_penalty)
            rate[f"bare {temperature}"] = tokens / elapsed[0]
    finally:
        bare.close()
    return rate


def p2_throughput(
    backend: LlamaCppBackend,
    raw: Any,
    path: Path,
    config: str,
    prompts: list[str],
    max_tokens: int,
    server: Path | None = None,
) -> list[Figure]:
    """Generated tokens/s on the same work: studio batched, raw sequential, llama.cpp's C++ server (1 and 4 slots,
    when its binary is given) and the bare batched loop; cold (the config prefix decoded in the timing) and warm
    (the prefix already in the KV cache). Every baseline runs with flash attention off and on, because which is
    faster depends on the llama.cpp build, and the goal is against the best baseline of the same run. The bare loop
    uses the studio backend's context settings. ``raw`` is a raw model without flash attention."""
    params = GenerationParams(temperature=0.0, max_tokens=max_tokens)
    rate: dict[str, float] = {}
    detail: dict[str, str] = {}
    raws = {False: raw, True: _raw_llama(path, flash=True)}
    try:
        for temperature in ("cold", "warm"):
            for flash, llm in raws.items():
                seconds, tokens = _owned(backend, partial(_raw_pass, llm, config, prompts, params))
                rate[f"raw, {_attention(flash)}, {temperature}"] = tokens / seconds
            seconds, tokens, batched = _studio_batch(backend, config, prompts, params)
            rate[f"studio {temperature}"] = tokens / seconds
            detail[temperature] = f"{tokens} tokens in {seconds:.1f} s"
    finally:
        raws[True].close()
    prefix, continuations = _rendered(backend, config, prompts)
    rate |= _server_rates(server, path, prefix, continuations, params)
    kv_cache, flash = str(backend.info.extra.get("kv_cache")), bool(backend.info.extra.get("flash_attention"))
    bare = BareSettings(n_ctx=N_CTX, n_threads=THREADS, flash_attn=flash, kv_type=0 if kv_cache == "f32" else None)
    rate |= _owned(backend, lambda: _bare_rates(path, bare, prefix, continuations, params))
    sequential = [_studio_chat(backend, config, prompt, params).text for prompt in prompts]
    same = sum(batched[i] == sequential[i] for i in range(len(prompts)))
    rates = "; ".join(f"{name} {value:.1f}" for name, value in rate.items())
    missing = "" if server else "; llama-server: no binary present, not measured"
    note = f"{len(prompts)} probes, max_tokens {max_tokens}; tok/s: {rates}{missing}"
    best = {
        t: max((n for n in rate if n.endswith(t) and not n.startswith(("studio", "bare"))), key=rate.__getitem__)
        for t in ("cold", "warm")
    }
    studio_settings = f"studio and bare loop: {_attention(flash)}, {kv_cache} cache"
    return [
        Figure(
            f"P2 warm prefix, studio vs best baseline ({best['warm'].removesuffix(', warm')}) (tok/s)",
            rate["studio warm"],
            rate[best["warm"]],
            "tok/s",
            1.8,
            True,
            f"studio {detail['warm']}; {note}",
        ),
        Figure(
            f"P2 cold prefix, studio vs best baseline ({best['cold'].removesuffix(', cold')}) (tok/s)",
            rate["studio cold"],
            rate[best["cold"]],
            "tok/s",
            1.5,
            True,
            f"studio {detail['cold']}",
        ),
        Figure(
            "P2 warm prefix, studio vs raw sequential, flash attention off (tok/s)",
            rate["studio warm"],
            rate["raw, flash attention off, warm"],
            "tok/s",
        ),
        Figure(
            "P2 cold prefix, studio vs raw sequential, flash attention off (tok/s)",
            rate["studio cold"],
            rate["raw, flash attention off, cold"],
            "tok/s",
        ),
        Figure(
            "P2 warm, studio vs bare batched loop (tok/s)",
            rate["studio warm"],
            rate["bare warm"],
            "tok/s",
            0.85,
            True,
            f"same tokens, same context settings ({studio_settings})",
        ),
        Figure(
            "P2 cold, studio vs bare batched loop (tok/s)", rate["studio cold"], rate["bare cold"], "tok/s", 0.85, True
        ),
        Figure(
            "P2 batched greedy text identical to sequential greedy (probes)",
            same,
            len(prompts),
            "probes",
            note="batched kernels round differently; a near-tie can flip a token",
        ),
    ]


def p3_compare(
    backend: LlamaCppBackend, raw: Any, configs: tuple[str, str], prompts: list[str], max_tokens: int
) -> list[Figure]:
    params = GenerationParams(temperature=0.0, max_tokens=max_tokens)
    alternating = [(config, prompt) for prompt in prompts for config in configs]
    single = [(configs[0], prompt) for prompt in prompts for _ in configs]
    for config in configs:  # fill the prefix cache, as a suite run or an earlier session would have
        _studio_chat(backend, config, prompts[0], params)
    with stopwatch() as studio_alternating:
        sources = [str(_studio_chat(backend, c, p, params).extra.get("prefix_cache")) for c, p in alternating]
    with stopwatch() as studio_single:
        for config, prompt in single:
            _studio_chat(backend, config, prompt, params)
    with stopwatch() as raw_alternating:
        _owned(backend, lambda: [_raw_chat(raw, config, prompt, params) for config, prompt in alternating])
    requests = len(alternating)
    return [
        Figure(
            f"P3 {requests} alternating requests, raw re-prefill vs studio prefix cache (wall time)",
            raw_alternating[0],
            studio_alternating[0],
            "s",
            8.0,
            True,
            f"max_tokens {max_tokens}; studio prefix sources: {', '.join(sorted(set(sources)))}",
        ),
        Figure(
            f"P3 studio alternating vs studio single config ({requests} requests, wall time)",
            studio_alternating[0],
            studio_single[0],
            "s",
            1.15,
            False,
        ),
    ]


def memory_child(counts: list[int], tokens: int) -> None:
    """Print one JSON line per reading: RSS after loading, then after N distinct cached prefixes."""
    path = model_path()
    settings = LlamaSettings(gpu="cpu", max_context=N_CTX, n_threads=THREADS, cache_budget_mb=2048)
    with LlamaCppBackend(path, settings) as backend:
        readings: list[dict[str, float]] = [{"prefixes": 0, "rss_mb": rss_mb(), "cache_mb": 0.0}]
        params = GenerationParams(temperature=0.0, max_tokens=1)
        filled = 0
        for count in counts:
            while filled < count:
                filled += 1
                base = long_config("library", tokens, backend.count_tokens)
                complete(backend, [Message("system", f"Deployment {filled}. {base}"), Message("user", "Hi")], params)
            used = backend.prefix_cache.used_bytes / (1 << 20)
            readings.append({"prefixes": count, "rss_mb": rss_mb(), "cache_mb": used})
    print(json.dumps(readings))


def memory_figures(counts: list[int], tokens: int) -> list[Figure]:
    command = [sys.executable, "-m", "bench.bench_inference", "--memory-child", ",".join(map(str, counts))]
    command += ["--memory-tokens", str(tokens)]
    proc = subprocess.run(command, capture_output=True, text=True, check=True, cwd=Path(__file__).parent.parent)
    readings = json.loads(proc.stdout.strip().splitlines()[-1])
    loaded = readings[0]["rss_mb"]
    return [
        Figure(
            f"Memory, model + {r['prefixes']} cached prefixes of ~{tokens} tokens (RSS)",
            r["rss_mb"],
            loaded,
            "MiB",
            note=f"prefix cache holds {r['cache_mb']:.1f} MiB",
        )
        for r in readings[1:]
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="CoSA Studio inference benchmarks (embedded SmolLM2)")
    parser.add_argument("--quick", action="store_true", help="fewer probes and tokens: a smoke run")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--only-p2", action="store_true", help="run P2 alone (fits a shorter time limit)")
    parser.add_argument("--llama-server", type=Path, help="llama.cpp's llama-server binary, a P2 baseline")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    parser.add_argument("--memory-tokens", type=int, default=256, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        memory_child([int(n) for n in args.memory_child.split(",")], args.memory_tokens)
        return 0

    quick = args.quick
    path = model_path()
    print(f"machine: {machine()}; threads {THREADS}; n_ctx {N_CTX}; quick={quick}")
    print(f"llama.cpp build: {llama_cpp_build()}")
    server = find_binary(args.llama_server)
    print(
        f"llama-server: {server}, build: {cpu_features(server)}"
        if server
        else "llama-server: not present, its baseline is not measured"
    )
    figures: list[Figure] = []
    settings = LlamaSettings(gpu="cpu", max_context=N_CTX, n_threads=THREADS)
    raw = _raw_llama(path)
    try:
        with LlamaCppBackend(path, settings) as backend:
            config_tokens = 600 if quick else 1900
            suite_config = long_config("studio", config_tokens, backend.count_tokens)
            other_config = long_config("library", config_tokens, backend.count_tokens)
            extra = backend.info.extra
            print(
                f"configs: {backend.count_tokens(suite_config)} and {backend.count_tokens(other_config)} tokens; "
                f"backend: {extra.get('llama_cpp_version')}, {extra.get('kv_cache')} cache, "
                f"{_attention(bool(extra.get('flash_attention')))}"
            )
            if not args.only_p2:
                figures += p1_overhead(backend, raw, rounds=2 if quick else 3)
                print(figures[-1].line(), flush=True)
            p2 = p2_throughput(
                backend, raw, path, suite_config, PROBES[: 8 if quick else 16], 24 if quick else 48, server
            )
            figures += p2
            for figure in p2:
                print(figure.line(), flush=True)
            if args.only_p2:
                return _finish(figures, args.json, quick)
            figures += p3_compare(
                backend, raw, (suite_config, other_config), PROBES[: 2 if quick else 4], 8 if quick else 16
            )
            for figure in figures[-2:]:
                print(figure.line(), flush=True)
    finally:
        raw.close()
    for figure in memory_figures([1, 4] if quick else [1, 4, 16], 256):
        figures.append(figure)
        print(figure.line(), flush=True)
    return _finish(figures, args.json, quick)


def _finish(figures: list[Figure], json_path: Path | None, quick: bool) -> int:
    print(f"machine after: {machine()}", flush=True)
    if json_path:
        payload = {
            "machine": machine(),
            "llama_cpp": llama_cpp_build(),
            "quick": quick,
            "figures": [asdict(f) | {"ratio": f.ratio} for f in figures],
        }
        json_path.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
