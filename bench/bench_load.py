"""Decoding on a busy machine: threads fitted to the free cores vs a fixed thread count, same work, same run.

One busy process (a pure-Python loop) holds a core while the embedded model answers a few probes in a batch, as
``studio-train synthesize`` does; the fitted backend drops to the cores left, the fixed one keeps all of them.
Run inside the CPU lock from the repository root: ``.venv/bin/python -m bench.bench_load``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time

from bench.common import Figure, machine, model_path, stopwatch
from studio.core.inference.base import GenerationParams, GenerationResult
from studio.core.inference.llama_backend import LlamaCppBackend, LlamaSettings
from studio.core.inference.threads import usable_cores

CONFIG = "You help the staff of a small bakery. Answer in two or three friendly sentences."
PROMPTS = [
    "How should I store sourdough bread?",
    "What is a good first cake for a beginner?",
    "Why does bread go stale?",
]


def _spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def _batch_seconds(fit: bool, max_tokens: int) -> tuple[float, int]:
    settings = LlamaSettings(gpu="cpu", max_context=1024, n_threads=usable_cores(), fit_threads=fit)
    with LlamaCppBackend(model_path(), settings) as backend:
        params = GenerationParams(temperature=0.0, max_tokens=max_tokens)
        tokens = 0
        with stopwatch() as elapsed:
            for _, event in backend.stream_batch(CONFIG, PROMPTS, params):
                if isinstance(event, GenerationResult):
                    tokens += event.completion_tokens
    return elapsed[0], tokens


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Decoding beside a busy process: fitted vs fixed threads")
    parser.add_argument("--max-tokens", type=int, default=24)
    args = parser.parse_args(argv)
    print(f"machine: {machine()}; {usable_cores()} usable cores; pid {os.getpid()}", flush=True)
    quiet_fixed, _ = _batch_seconds(False, args.max_tokens)
    hog = multiprocessing.get_context("spawn").Process(target=_spin, args=(600.0,), daemon=True)
    hog.start()
    try:
        time.sleep(0.5)
        fixed, fixed_tokens = _batch_seconds(False, args.max_tokens)
        fitted, fitted_tokens = _batch_seconds(True, args.max_tokens)
    finally:
        hog.terminate()
        hog.join()
    figure = Figure(
        "Busy machine: fixed threads vs fitted threads, 3 probes batched (wall time)",
        fixed,
        fitted,
        "s",
        None,
        True,
        f"{fixed_tokens} vs {fitted_tokens} tokens; quiet machine, fixed threads: {quiet_fixed:.1f} s",
    )
    print(figure.line(), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
