"""Model servers started by the tests on 127.0.0.1: one way to start a server process, wait until it answers and
stop it again, whichever server it is."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest


@contextmanager
def running_server(command: list[str], ready_url: str, log: Path, name: str, start_within_s: float) -> Iterator[None]:
    """Run ``command`` (output to ``log``) until the block ends; fail the test if ``ready_url`` never answers 200."""
    with log.open("wb") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + start_within_s
        while True:
            if process.poll() is not None:
                pytest.fail(f"{name} exited early: {log.read_text()[-2000:]}")
            try:
                if httpx.get(ready_url, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"{name} did not start within {start_within_s:.0f} s")
            time.sleep(0.2)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)
