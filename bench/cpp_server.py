"""llama.cpp's own C++ server (``llama-server``) as a baseline for batched decoding.

The server is started on the embedded model with the benchmark's thread count, context per slot, batch size and
flash attention setting, and fed the exact token ids the studio decodes (``/completion`` with a token array,
greedy, the same repeat penalty and window), so both sides do the same work. With several slots, as many
requests are in flight at once and the server decodes them in one batch.

The binary comes from ``--llama-server``, else ``$STUDIO_LLAMA_SERVER``, else ``llama-server`` on PATH.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx

from bench.common import stopwatch


def find_binary(explicit: Path | None = None) -> Path | None:
    """The llama-server binary to use, or None when there is none."""
    candidates = [
        str(explicit) if explicit else None,
        os.environ.get("STUDIO_LLAMA_SERVER"),
        shutil.which("llama-server"),
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cpu_features(binary: Path) -> str:
    """The CPU features the server's llama.cpp was built with ("CPU : SSE3 = 1 | ..."), "?" when not found.

    The server logs them at debug level before it loads a model, so it is started on a model that cannot load."""
    try:
        run = subprocess.run(
            [str(binary), "-lv", "4", "-m", os.devnull], capture_output=True, text=True, errors="replace", timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    for line in (run.stdout + run.stderr).splitlines():
        if "system_info" in line and "CPU :" in line:
            return line[line.index("CPU :") :].strip(" |")
    return "?"


@contextmanager
def llama_server(
    binary: Path, model: Path, slots: int, n_ctx_per_slot: int, threads: int, flash: bool
) -> Iterator[str]:
    """A running server with ``slots`` parallel slots; yields its base URL and stops it afterwards."""
    port = _free_port()
    command = [str(binary), "-m", str(model), "--host", "127.0.0.1", "--port", str(port)]
    command += ["-c", str(n_ctx_per_slot * slots), "-np", str(slots), "-t", str(threads), "-tb", str(threads)]
    command += ["-b", "512", "-ub", "512", "--flash-attn", "on" if flash else "off"]
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        root = f"http://127.0.0.1:{port}"
        try:
            _wait_healthy(process, root)
            yield root
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=15)


def _wait_healthy(process: subprocess.Popen[bytes], root: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"llama-server exited with status {process.returncode}")
        try:
            if httpx.get(f"{root}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("llama-server did not start within 120 s")


def _complete(client: httpx.Client, root: str, tokens: list[int], max_tokens: int, repeat_penalty: float) -> int:
    body = {
        "prompt": tokens,
        "n_predict": max_tokens,
        "temperature": 0.0,
        "repeat_penalty": repeat_penalty,
        "repeat_last_n": 64,
        "cache_prompt": True,
    }
    reply = client.post(f"{root}/completion", json=body, timeout=600)
    reply.raise_for_status()
    return int(reply.json()["tokens_predicted"])


def server_pass(
    root: str, prompts: Sequence[list[int]], max_tokens: int, repeat_penalty: float, in_flight: int
) -> tuple[float, int]:
    """Send every prompt with ``in_flight`` requests at a time; (seconds, generated tokens)."""
    with httpx.Client() as client, ThreadPoolExecutor(in_flight) as pool, stopwatch() as elapsed:
        counts = list(pool.map(lambda p: _complete(client, root, p, max_tokens, repeat_penalty), prompts))
    return elapsed[0], sum(counts)
