"""A small OpenAI-compatible server on 127.0.0.1 that misbehaves on purpose: a fixed latency per request, rate
limits (429 with Retry-After), server errors (503), dropped connections, and a switch that kills it.

Replies come from the deterministic fake backend, so judge requests (with a JSON Schema in ``response_format``) get
parseable verdicts. Used by the endpoint tests and by ``bench/bench_endpoint.py``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from keyring.backend import KeyringBackend

from studio.core.inference.base import GenerationParams, GenerationResult, Message, TokenEvent
from studio.core.inference.fake import FakeBackend


@dataclass
class Behaviour:
    """What the server does; counters are shared by all requests."""

    latency_s: float = 0.0
    #: Seconds before the model list is answered (a slow server's Test button).
    list_latency_s: float = 0.0
    #: Every Nth chat request is answered 429 with ``Retry-After: retry_after`` (0: never).
    rate_limit_every: int = 0
    retry_after: str = "0.05"
    #: Every Nth chat request is answered 503 (0: never).
    error_every: int = 0
    #: Every Nth chat request has its connection closed without an answer (0: never).
    drop_every: int = 0
    api_key: str | None = None
    requests: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0
    authorizations: list[str] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    #: Seconds an idle connection is kept; every answer closes its connection anyway, so stop() never waits long.
    timeout = 5
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.close_connection = True
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _authorized(self) -> bool:
        behaviour = self.server.behaviour
        header = self.headers.get("Authorization", "")
        with behaviour.lock:
            behaviour.authorizations.append(header)
        if behaviour.api_key is not None and header != f"Bearer {behaviour.api_key}":
            self._json(401, {"error": {"message": "invalid API key"}})
            return False
        return True

    def do_GET(self) -> None:
        if not self._authorized():
            return
        if self.path == "/v1/models":
            time.sleep(self.server.behaviour.list_latency_s)
            self._json(200, {"object": "list", "data": [{"id": "standin", "object": "model", "owned_by": "tests"}]})
        else:
            self._json(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        if not self._authorized():
            return
        if self.path != "/v1/chat/completions":
            self._json(404, {"error": {"message": f"no route {self.path}"}})
            return
        behaviour = self.server.behaviour
        with behaviour.lock:
            behaviour.requests += 1
            number = behaviour.requests
            behaviour.bodies.append(body)
        if behaviour.drop_every and number % behaviour.drop_every == 0:
            self.close_connection = True
            self.connection.shutdown(2)
            return
        if behaviour.rate_limit_every and number % behaviour.rate_limit_every == 0:
            self._json(429, {"error": {"message": "slow down"}}, {"Retry-After": behaviour.retry_after})
            return
        if behaviour.error_every and number % behaviour.error_every == 0:
            self._json(503, {"error": {"message": "overloaded"}})
            return
        with behaviour.lock:
            behaviour.in_flight += 1
            behaviour.peak_in_flight = max(behaviour.peak_in_flight, behaviour.in_flight)
        try:
            time.sleep(behaviour.latency_s)
            self._stream_reply(body)
        finally:
            with behaviour.lock:
                behaviour.in_flight -= 1

    def _stream_reply(self, body: dict[str, Any]) -> None:
        messages = [Message(m["role"], m["content"]) for m in body.get("messages", [])]
        response_format = body.get("response_format") or {}
        schema = (response_format.get("json_schema") or {}).get("schema") or response_format.get("schema")
        params = GenerationParams(max_tokens=int(body.get("max_tokens") or 64), seed=int(body.get("seed") or 0))
        if schema:
            params = GenerationParams(max_tokens=params.max_tokens, seed=params.seed, json_schema=schema)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        result: GenerationResult | None = None
        for event in self.server.fake.stream(messages, params):
            if isinstance(event, TokenEvent):
                self._event({"choices": [{"index": 0, "delta": {"content": event.text}, "finish_reason": None}]})
            else:
                result = event
        assert result is not None
        reason = "length" if result.stop_reason.value == "length" else "stop"
        self._event({"choices": [{"index": 0, "delta": {}, "finish_reason": reason}]})
        usage = {"prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens}
        self._event({"choices": [], "usage": usage})
        self.wfile.write(b"data: [DONE]\n\n")

    def _event(self, payload: dict[str, Any]) -> None:
        self.wfile.write(f"data: {json.dumps(payload)}\n\n".encode())
        self.wfile.flush()


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() waits for requests in flight, so no thread outlives a test

    def __init__(self, behaviour: Behaviour, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.behaviour = behaviour
        self.fake = FakeBackend("standin")


class MemoryKeyring(KeyringBackend):
    """An OS keyring in memory, so key handling is tested without touching the machine's real keyring."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.stored: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.stored.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.stored[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.stored.pop((service, username), None)


@contextmanager
def memory_keyring() -> Iterator[MemoryKeyring]:
    """Use a :class:`MemoryKeyring` as the keyring while the block runs."""
    import keyring

    previous = keyring.get_keyring()
    memory = MemoryKeyring()
    keyring.set_keyring(memory)
    try:
        yield memory
    finally:
        keyring.set_keyring(previous)


class StandinServer:
    """Start with :meth:`start`, stop (or kill mid-run) with :meth:`stop`."""

    def __init__(self, behaviour: Behaviour | None = None, port: int = 0) -> None:
        self.behaviour = behaviour or Behaviour()
        self._server = _Server(self.behaviour, port)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05})

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> StandinServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=10)
        self._server.server_close()
