"""Requests in flight against model servers: items per second at concurrency 1, 4 and 8.

Every ratio is against concurrency 1 measured in the same run.

* stand-in: a local OpenAI-compatible server that answers every request after a fixed 300 ms (the shape of a remote
  GPU server, whose time goes to the network and a batch slot, not to this machine's CPU). Measured twice: bare
  requests (``complete_concurrently``), and a whole check run (each item is one reply and two verdicts).
* llama.cpp: ``python -m llama_cpp.server`` on the embedded model on this machine, the same requests sequential
  vs 4 at once, started with ``--interrupt_requests False`` (by default it cuts a running stream short when the
  next request arrives). That server decodes one request at a time, so this shows what concurrency costs or saves
  there.

Run: ``.venv/bin/python bench/bench_endpoint.py [--items 24] [--probes 10] [--skip-llama]``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.common import machine, model_path, stopwatch  # noqa: E402
from studio.core.documents import ProbeSuite, SafetyConfig  # noqa: E402
from studio.core.evals.runner import CheckRunner, CheckSpec  # noqa: E402
from studio.core.inference.base import GenerationParams, chat  # noqa: E402
from studio.core.inference.concurrent import complete_concurrently  # noqa: E402
from studio.core.inference.openai_backend import OpenAIBackend  # noqa: E402
from studio.core.store.db import open_database  # noqa: E402
from studio.core.store.runs import RunStore  # noqa: E402
from tests.core.endpoint_standin import Behaviour, StandinServer  # noqa: E402
from tests.core.hub_standin import closed_port  # noqa: E402

LATENCY_S = 0.3
LEVELS = (1, 4, 8)


def _requests(count: int) -> list[list[object]]:
    return [chat("You answer cooking questions only.", f"Question {n}: how do I poach an egg?") for n in range(count)]


def _rate(backend: OpenAIBackend, count: int, width: int, params: GenerationParams) -> float:
    with stopwatch() as took:
        done = sum(1 for _ in complete_concurrently(backend, _requests(count), params, limit=width))  # type: ignore[arg-type]
    return done / took[0]


def standin_requests(items: int) -> None:
    server = StandinServer(Behaviour(latency_s=LATENCY_S)).start()
    backend = OpenAIBackend(server.url, "standin", concurrency=max(LEVELS))
    try:
        rates = {width: _rate(backend, items, width, GenerationParams(max_tokens=8)) for width in LEVELS}
    finally:
        backend.close()
        server.stop()
    print(f"stand-in, {LATENCY_S * 1000:.0f} ms per request, {items} requests:")
    for width, rate in rates.items():
        print(f"  concurrency {width}: {rate:6.2f} items/s  ({rate / rates[1]:.2f}x)")


def standin_check(probes: int, home: Path) -> None:
    config = SafetyConfig.model_validate(
        {
            "format": "cosa-studio/config/v1",
            "id": "cooking",
            "title": "Cooking",
            "kind": "free-form",
            "text": "You answer cooking questions only.",
        }
    )
    suite = ProbeSuite.model_validate(
        {
            "format": "cosa-studio/suite/v1",
            "id": "eggs",
            "title": "Eggs",
            "probes": [
                {"text": f"Question {n}: how long do I boil an egg?", "expected": "allowed"} for n in range(probes)
            ],
        }
    )
    server = StandinServer(Behaviour(latency_s=LATENCY_S)).start()
    seconds: dict[int, float] = {}
    try:
        for width in (1, 8):
            db = open_database(home / f"bench-{width}.db")
            backend = OpenAIBackend(server.url, "standin", concurrency=width)
            try:
                runner = CheckRunner(RunStore(db), backend, backend)
                with stopwatch() as took:
                    list(runner.check(CheckSpec(suite, (config,))))
                seconds[width] = took[0]
            finally:
                backend.close()
                db.close()
    finally:
        server.stop()
    print(f"stand-in, a {probes}-probe check (reply + 2 verdicts per item):")
    for width, took_s in seconds.items():
        print(f"  concurrency {width}: {took_s:6.2f} s, {probes / took_s:5.2f} items/s  ({seconds[1] / took_s:.2f}x)")


def llama_server(items: int) -> None:
    port = closed_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model_path()), "--host", "127.0.0.1"]
    command += ["--port", str(port), "--n_ctx", "2048", "--n_threads", "2", "--verbose", "False"]
    # By default llama_cpp.server cuts a running stream short when the next request arrives.
    command += ["--interrupt_requests", "False"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        backend = OpenAIBackend(url, "smollm2", concurrency=4, extra_sampling=True)
        deadline = time.monotonic() + 120
        while True:
            try:
                backend.list_models()
                break
            except Exception:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.5)
        params = GenerationParams(max_tokens=32)
        _rate(backend, 2, 1, params)  # warm-up
        sequential = _rate(backend, items, 1, params)
        concurrent = _rate(backend, items, 4, params)
        backend.close()
    finally:
        process.terminate()
        process.wait(timeout=30)
    print(f"llama_cpp.server on the embedded model, {items} requests of up to 32 tokens:")
    print(f"  sequential:   {sequential:6.2f} items/s")
    print(f"  4 in flight:  {concurrent:6.2f} items/s  ({concurrent / sequential:.2f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=24)
    parser.add_argument("--probes", type=int, default=10)
    parser.add_argument("--skip-llama", action="store_true")
    args = parser.parse_args()
    import tempfile

    print(machine())
    standin_requests(args.items)
    with tempfile.TemporaryDirectory() as home:
        standin_check(args.probes, Path(home))
    if not args.skip_llama:
        llama_server(max(4, args.items // 3))


if __name__ == "__main__":
    main()
