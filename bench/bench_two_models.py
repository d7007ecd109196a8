"""Two local models in one process: does decoding on one slow the other down, alone and side by side?

Two ``LlamaCppBackend`` s on the embedded model (a candidate and a judge, as a check with a separate judge GGUF or
a GUI session with a chat model and a check model has them). Greedy replies of 96 tokens, figures in generated
tokens per second:

* A alone, before B has ever decoded (the baseline, measured in the same process);
* A alone again, after B has decoded once;
* A and B side by side, each asked from its own thread (the combined rate of both).

Run inside the CPU lock from the repository root:
``flock /tmp/studio-cpu.lock .venv/bin/python -m bench.bench_two_models [--rounds N]``.
"""

from __future__ import annotations

import argparse
import threading
import time

from bench.common import llama_cpp_build, machine, model_path
from studio.core.inference.base import GenerationParams, GenerationResult, Message
from studio.core.inference.llama_backend import LlamaCppBackend, LlamaSettings

THREADS = 2
PARAMS = GenerationParams(temperature=0.0, max_tokens=96)
PROMPTS = (
    "Write a short story about a lighthouse keeper who finds a message in a bottle.",
    "Explain how a bicycle gear system works, step by step.",
    "Describe a busy market in a coastal town at dawn.",
)


def _reply(backend: LlamaCppBackend, prompt: str) -> int:
    """Generated tokens of one greedy reply."""
    result = None
    for event in backend.stream([Message("system", "You are a helpful assistant."), Message("user", prompt)], PARAMS):
        if isinstance(event, GenerationResult):
            result = event
    assert result is not None
    return result.completion_tokens


def _run(backend: LlamaCppBackend, rounds: int) -> tuple[int, float]:
    """Generated tokens and seconds of ``rounds`` replies."""
    tokens, started = 0, time.perf_counter()
    for i in range(rounds):
        tokens += _reply(backend, PROMPTS[i % len(PROMPTS)])
    return tokens, time.perf_counter() - started


def _rate(backend: LlamaCppBackend, rounds: int) -> float:
    tokens, seconds = _run(backend, rounds)
    return tokens / seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Two local models decoding in one process")
    parser.add_argument("--rounds", type=int, default=3, help="replies per measurement")
    args = parser.parse_args(argv)
    print(f"machine: {machine()}; threads {THREADS}")
    settings = LlamaSettings(gpu="cpu", n_threads=THREADS, fit_threads=False, cache_dir=None)
    a = LlamaCppBackend(model_path(), settings, name="candidate")
    b = LlamaCppBackend(model_path(), settings, name="judge")
    print(f"llama.cpp: {llama_cpp_build()}")
    try:
        _reply(a, PROMPTS[0])  # warm-up
        before = _rate(a, args.rounds)
        _reply(b, PROMPTS[1])
        after = _rate(a, args.rounds)
        runs: dict[str, tuple[int, float]] = {}

        def run(name: str, backend: LlamaCppBackend) -> None:
            runs[name] = _run(backend, args.rounds)

        started = time.perf_counter()
        threads = [threading.Thread(target=run, args=(n, m)) for n, m in (("a", a), ("b", b))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        both = time.perf_counter() - started
        total = runs["a"][0] + runs["b"][0]
        rate_a, rate_b = (runs[n][0] / runs[n][1] for n in ("a", "b"))
        print(f"A alone, before B decoded:   {before:6.1f} tok/s (baseline)")
        print(f"A alone, after B decoded:    {after:6.1f} tok/s  ratio {after / before:.2f}x (goal: about 1.0x)")
        print(
            f"A and B side by side:        {rate_a:6.1f} + {rate_b:6.1f} tok/s, about {total / both:.1f} tok/s "
            f"together  ratio {total / both / before:.2f}x of A alone (goal: about 1.0x)"
        )
        print(f"machine after: {machine()}")
    finally:
        a.close()
        b.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
