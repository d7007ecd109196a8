"""Config-prefix KV reuse: time to first token when switching between two long configs.

Every figure is compared with a baseline measured in the same run: the same requests on a backend whose prefix
cache is disabled (each request prefills its whole prompt). Three ways of getting the prefix back are measured:

* memory: the saved state is restored from the in-memory LRU (configs alternate, so it is never the live one);
* live: the same config twice in a row, the prefix is still in the KV memory;
* disk: a new backend (a restart) reads the state from the cache folder.

Run: ``.venv/bin/python bench/bench_prefix_cache.py [--rounds 4] [--threads 1] [--model PATH]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from studio.core.inference.base import GenerationParams, chat, complete  # noqa: E402
from studio.core.inference.llama_backend import LlamaCppBackend, LlamaSettings  # noqa: E402

_POLICY = (
    "You answer questions for {who}. Stay friendly and brief. You may discuss {allowed} in general terms, with "
    "history, context and safety advice, but you never give step-by-step instructions that could hurt a person. "
    "When a request falls outside this policy, say so plainly, explain which part you cannot help with, and offer "
    "a safer related topic instead. Keep a neutral tone, avoid slang, and never claim to be a human. "
)
CONFIGS = {
    "game-studio": _POLICY.format(who="a game studio writing a war game", allowed="fictional violence") * 6,
    "publisher": _POLICY.format(who="a children's publisher", allowed="age-appropriate stories") * 6,
}
PROBE = "Give me one idea for the next chapter."
PARAMS = GenerationParams(temperature=0.0, max_tokens=4)


def _ttft(backend: LlamaCppBackend, config: str) -> tuple[float, str]:
    result = complete(backend, chat(config, PROBE), PARAMS)
    assert result.time_to_first_token_s is not None
    return result.time_to_first_token_s, str(result.extra["prefix_cache"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="prefix KV cache benchmark")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--model", type=Path, default=REPO / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf")
    args = parser.parse_args(argv)
    order = list(CONFIGS.values()) * args.rounds

    with LlamaCppBackend(args.model, LlamaSettings(n_threads=args.threads, cache_budget_mb=0)) as cold:
        prompt_tokens = [len(cold.render(chat(config, PROBE))) for config in CONFIGS.values()]
        _ttft(cold, order[0])  # warm-up
        baseline = statistics.median(_ttft(cold, config)[0] for config in order)

    timings: dict[str, list[float]] = {"memory": [], "live": [], "disk": []}
    with tempfile.TemporaryDirectory() as cache_dir:
        settings = LlamaSettings(n_threads=args.threads, cache_dir=Path(cache_dir))
        with LlamaCppBackend(args.model, settings) as warm:
            for config in order:
                seconds, source = _ttft(warm, config)
                if source in timings:
                    timings[source].append(seconds)
                seconds, source = _ttft(warm, config)
                timings[source].append(seconds)
        for config in order:
            with LlamaCppBackend(args.model, settings) as restarted:
                seconds, source = _ttft(restarted, config)
                timings[source].append(seconds)

    print(f"prompts: {prompt_tokens} tokens, {len(order)} requests per mode, {args.threads} thread(s)")
    print(f"time to first token, no prefix cache:   {baseline * 1000:8.1f} ms (baseline)")
    for source, values in timings.items():
        if values:
            median = statistics.median(values)
            ratio = baseline / median
            print(f"time to first token, prefix from {source:6}: {median * 1000:8.1f} ms ({ratio:5.1f}x faster)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
