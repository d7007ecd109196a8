"""Requests in flight against model servers: items per second at concurrency 1, 4 and 8.

Every ratio is against concurrency 1 measured in the same run.

* stand-in: a local OpenAI-compatible server that answers every request after a fixed 300 ms (the shape of a remote
  GPU server, whose time goes to the network and a batch slot, not to this machine's CPU). Measured twice: bare
  requests (``complete_concurrently``), and a whole check run (each item is one reply and two verdicts).
* llama.cpp on the embedded model on this machine, the same greedy requests sequential vs 4 at once:
  ``python -m llama_cpp.server`` started with ``--interrupt_requests False`` (by default it cuts a running stream
  short when the next request arrives; it decodes one request at a time), and llama.cpp's ``llama-server`` with
  4 slots, once the studio's way (prompts rendered here, token ids to ``/completion``) and once through its own
  chat route.

Run: ``.venv/bin/python bench/bench_endpoint.py [--items 24] [--probes 10] [--skip-llama] [--llama-server PATH]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.common import machine, model_path, stopwatch  # noqa: E402
from studio.core.documents import ProbeSuite, SafetyConfig  # noqa: E402
from studio.core.evals.runner import CheckRunner, CheckSpec  # noqa: E402
from studio.core.inference.base import GenerationParams, Message, chat  # noqa: E402
from studio.core.inference.concurrent import complete_concurrently  # noqa: E402
from studio.core.inference.openai_backend import OpenAIBackend  # noqa: E402
from studio.core.store.db import open_database  # noqa: E402
from studio.core.store.runs import RunStore  # noqa: E402
from tests.core.endpoint_standin import Behaviour, StandinServer  # noqa: E402
from tests.core.hub_standin import closed_port  # noqa: E402

LATENCY_S = 0.3
LEVELS = (1, 4, 8)


def _requests(count: int) -> list[list[Message]]:
    return [chat("You answer cooking questions only.", f"Question {n}: how do I poach an egg?") for n in range(count)]


def _rate(backend: OpenAIBackend, count: int, width: int, params: GenerationParams) -> float:
    with stopwatch() as took:
        done = len(list(complete_concurrently(backend, _requests(count), params, limit=width)))
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
        for width in LEVELS:
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


def _started(command: list[str], ready_url: str) -> subprocess.Popen[bytes]:
    """Start a server and wait until ``ready_url`` answers 200 (two minutes at most)."""
    import httpx

    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(ready_url, timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise RuntimeError(f"{command[0]} did not start")
        time.sleep(0.3)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=30)


GREEDY_32 = GenerationParams(max_tokens=32, temperature=0.0)


def _warm(*backends: OpenAIBackend) -> None:
    """A few requests through every backend first, so no measured pass pays for a cold server or client."""
    for backend in backends:
        _rate(backend, 4, 4, GREEDY_32)


def _sequential_vs_concurrent(title: str, backend: OpenAIBackend, items: int, width: int) -> None:
    """The same greedy requests one at a time, then ``width`` at once."""
    params = GREEDY_32
    sequential = _rate(backend, items, 1, params)
    concurrent = _rate(backend, items, width, params)
    print(f"{title}, {items} requests of up to 32 tokens:")
    print(f"  sequential:   {sequential:6.2f} items/s")
    print(f"  {width} in flight:  {concurrent:6.2f} items/s  ({concurrent / sequential:.2f}x)")


def llama_cpp_python(items: int) -> None:
    """``python -m llama_cpp.server``: one decode at a time; without ``--interrupt_requests False`` it would cut
    running streams short when the next request arrives."""
    port = closed_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model_path()), "--host", "127.0.0.1"]
    command += ["--port", str(port), "--n_ctx", "2048", "--n_threads", "2", "--verbose", "False"]
    command += ["--interrupt_requests", "False"]
    url = f"http://127.0.0.1:{port}/v1"
    process = _started(command, f"{url}/models")
    try:
        backend = OpenAIBackend(url, "smollm2", concurrency=4, extra_sampling=True)
        try:
            _warm(backend)
            _sequential_vs_concurrent("llama_cpp.server (chat route) on the embedded model", backend, items, 4)
        finally:
            backend.close()
    finally:
        _stop(process)


def llama_cpp_server(items: int, binary: str) -> None:
    """llama.cpp's ``llama-server`` with 4 slots: the studio's way (prompts rendered here, token ids to
    ``/completion``) and, for comparison, its own chat route."""
    from datetime import UTC, datetime

    from studio.core.inference.endpoints import EndpointEntry, open_endpoint

    port = closed_port()
    command = [binary, "-m", str(model_path()), "--host", "127.0.0.1", "--port", str(port)]
    command += ["-c", "8192", "-np", "4", "-t", "2"]
    root = f"http://127.0.0.1:{port}"
    process = _started(command, f"{root}/health")
    try:
        entry = EndpointEntry("bench", f"{root}/v1", "smollm2", None, False, 4, 120.0, datetime.now(UTC).isoformat())
        studio_way = open_endpoint(entry)
        server_chat = OpenAIBackend(f"{root}/v1", "smollm2", concurrency=4, extra_sampling=True)
        try:
            _warm(studio_way, server_chat)
            _sequential_vs_concurrent("llama-server -np 4 (token ids to /completion)", studio_way, items, 4)
            _sequential_vs_concurrent("llama-server -np 4 (its chat route)", server_chat, items, 4)
        finally:
            studio_way.close()
            server_chat.close()
    finally:
        _stop(process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=24)
    parser.add_argument("--probes", type=int, default=10)
    parser.add_argument("--skip-llama", action="store_true")
    parser.add_argument(
        "--llama-server",
        default=os.environ.get("STUDIO_LLAMA_SERVER") or shutil.which("llama-server"),
        help="llama.cpp's llama-server binary (default: $STUDIO_LLAMA_SERVER, else llama-server on PATH)",
    )
    args = parser.parse_args()
    import tempfile

    print(machine())
    standin_requests(args.items)
    with tempfile.TemporaryDirectory() as home:
        standin_check(args.probes, Path(home))
    if not args.skip_llama:
        llama_cpp_python(max(4, args.items // 3))
        if args.llama_server:
            llama_cpp_server(max(4, args.items // 3), args.llama_server)
        else:
            print("llama-server: not found (give --llama-server or set STUDIO_LLAMA_SERVER); skipped")


if __name__ == "__main__":
    main()
