"""A small, real HTTP server on 127.0.0.1 that answers the Hub endpoints ``huggingface_hub`` uses for downloads.

Served: ``GET /api/models/<repo>`` (model info), ``GET /api/models/<repo>/tree/<rev>[/<path>]`` (listing),
``HEAD``/``GET /<repo>/resolve/<rev>/<file>`` (the same for datasets under ``/api/datasets/`` and ``/datasets/``)
and, for LFS files, a redirect to ``/cdn/<sha256>`` on another host name (``localhost``) that honours ``Range``
with ``206`` and ``Content-Range``. Errors carry the ``X-Error-Code`` header the library maps to its exceptions
(``RepoNotFound``, ``EntryNotFound``, ``GatedRepo``, ``RevisionNotFound``). A file can be armed to drop the
connection half-way through its body once.

HTTP/1.0 is spoken, so every connection closes after one response and no handler thread outlives a request.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class StandinFile:
    data: bytes
    lfs: bool = True

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def git_sha1(self) -> str:
        return hashlib.sha1(b"blob %d\0" % len(self.data) + self.data).hexdigest()


@dataclass
class StandinRepo:
    files: dict[str, StandinFile] = field(default_factory=dict)
    gated: bool = False


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str
    range: str | None
    authorization: str | None


class HubStandin:
    """Start with :meth:`start` (returns the endpoint URL), stop with :meth:`stop`; also a context manager."""

    def __init__(self, token: str = "hf_standin_token") -> None:
        self.repos: dict[str, StandinRepo] = {}
        self.token = token
        #: sha256 of a file -> number of times its body is cut off half-way.
        self.drops: dict[str, int] = {}
        #: sha256 of a file -> byte offset at which its body is cut off (default: half).
        self.drop_at: dict[str, int] = {}
        self.requests: list[LoggedRequest] = []
        #: Pause after every 64 KiB of a file body, to make downloads slow enough to interrupt.
        self.chunk_delay_s = 0.0
        #: When set to an Event, a file body stops after its first 64 KiB until the Event is set.
        self.hold: threading.Event | None = None
        #: When false the CDN ignores Range headers and always sends the whole file with 200, as some servers do.
        self.honour_range = True
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def add_file(self, repo_id: str, path: str, data: bytes, *, lfs: bool = True, dataset: bool = False) -> StandinFile:
        """Serve ``data`` as ``path`` of a model repository (or of a dataset: kept as ``datasets/<repo_id>``)."""
        entry = StandinFile(data, lfs)
        key = f"datasets/{repo_id}" if dataset else repo_id
        self.repos.setdefault(key, StandinRepo()).files[path] = entry
        return entry

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def cdn(self) -> str:
        return f"http://localhost:{self.port}/cdn"

    def start(self) -> str:
        standin = self

        class Handler(_Handler):
            hub = standin

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="hub-standin", daemon=True
        )
        self._thread.start()
        return self.endpoint

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None

    def __enter__(self) -> HubStandin:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log(self, request: LoggedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def take_drop(self, sha256: str) -> bool:
        with self._lock:
            left = self.drops.get(sha256, 0)
            if left <= 0:
                return False
            self.drops[sha256] = left - 1
            return True


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins every request thread
    block_on_close = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up mid-body (cancel) are expected; nothing to report."""


class _Handler(BaseHTTPRequestHandler):
    hub: HubStandin
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: requests are recorded in :attr:`HubStandin.requests` instead."""

    def do_HEAD(self) -> None:
        self._route(head=True)

    def do_GET(self) -> None:
        self._route(head=False)

    # -- routing ---------------------------------------------------------------------------------------------------

    def _route(self, *, head: bool) -> None:
        self.hub.log(
            LoggedRequest(self.command, self.path, self.headers.get("Range"), self.headers.get("Authorization"))
        )
        parts = [unquote(p) for p in urlsplit(self.path).path.strip("/").split("/")]
        try:
            if parts[:2] == ["api", "models"] and len(parts) >= 4:
                self._api(parts[2:])
            elif parts[:2] == ["api", "datasets"] and len(parts) >= 4:
                self._api(parts[2:], kind="datasets/")
            elif parts[0] == "datasets" and len(parts) >= 6 and parts[3] == "resolve":
                self._resolve("datasets/" + "/".join(parts[1:3]), parts[4], "/".join(parts[5:]), head=head)
            elif parts[0] == "cdn" and len(parts) == 2:
                self._cdn(parts[1], head=head)
            elif len(parts) >= 5 and parts[2] == "resolve":
                self._resolve("/".join(parts[:2]), parts[3], "/".join(parts[4:]), head=head)
            else:
                self._error(404, "RepoNotFound", "Repository not found")
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _repo(self, repo_id: str) -> StandinRepo | None:
        repo = self.hub.repos.get(repo_id)
        if repo is None:
            self._error(401, "RepoNotFound", "Repository not found")
        return repo

    def _api(self, parts: list[str], kind: str = "") -> None:
        repo_id = "/".join(parts[:2])
        repo = self._repo(kind + repo_id)
        if repo is None:
            return
        if len(parts) == 2:
            siblings = [{"rfilename": name} for name in sorted(repo.files)]
            self._json({"id": repo_id, "sha": COMMIT, "gated": "manual" if repo.gated else False, "siblings": siblings})
            return
        if parts[2] != "tree" or len(parts) < 4:
            self._error(404, "EntryNotFound", "Entry not found")
            return
        if parts[3] not in {"main", COMMIT}:
            self._error(404, "RevisionNotFound", "Invalid rev id")
            return
        prefix = "/".join(parts[4:])
        self._json(_tree(repo, prefix))

    def _resolve(self, repo_id: str, revision: str, path: str, *, head: bool) -> None:
        repo = self._repo(repo_id)
        if repo is None:
            return
        if revision not in {"main", COMMIT}:
            self._error(404, "RevisionNotFound", "Invalid rev id")
            return
        if repo.gated and self.headers.get("Authorization") != f"Bearer {self.hub.token}":
            self._error(401, "GatedRepo", "Access to this model is restricted: accept the conditions first")
            return
        entry = repo.files.get(path)
        if entry is None:
            self._error(404, "EntryNotFound", "Entry not found")
            return
        common = {"X-Repo-Commit": COMMIT}
        if entry.lfs:
            headers = {
                **common,
                "Location": f"{self.hub.cdn}/{entry.sha256}",
                "X-Linked-Size": str(len(entry.data)),
                "X-Linked-Etag": f'"{entry.sha256}"',
                "ETag": f'"{entry.git_sha1}"',
                "Content-Length": "0",
            }
            self._send(302, headers, b"", head=head)
            return
        self._send(200, {**common, "ETag": f'"{entry.git_sha1}"'}, entry.data, head=head)

    def _cdn(self, sha256: str, *, head: bool) -> None:
        entry = next(
            (f for repo in self.hub.repos.values() for f in repo.files.values() if f.lfs and f.sha256 == sha256),
            None,
        )
        if entry is None:
            self._send(404, {}, b"NoSuchKey", head=head)
            return
        size = len(entry.data)
        start = _range_start(self.headers.get("Range")) if self.hub.honour_range else None
        if start is not None and start >= size:
            self._send(416, {"Content-Range": f"bytes */{size}"}, b"", head=head)
            return
        headers = {"ETag": f'"{hashlib.md5(entry.data).hexdigest()}"', "Accept-Ranges": "bytes"}
        if start is None:
            self._send(200, headers, entry.data, head=head, sha256=sha256)
        else:
            headers["Content-Range"] = f"bytes {start}-{size - 1}/{size}"
            self._send(206, headers, entry.data[start:], head=head, sha256=sha256)

    # -- responses -------------------------------------------------------------------------------------------------

    def _error(self, status: int, code: str, message: str) -> None:
        body = json.dumps({"error": message}).encode()
        headers = {"X-Error-Code": code, "X-Error-Message": message, "Content-Type": "application/json"}
        self._send(status, headers, body, head=self.command == "HEAD")

    def _json(self, payload: Any) -> None:
        self._send(200, {"Content-Type": "application/json"}, json.dumps(payload).encode(), head=False)

    def _send(
        self, status: int, headers: dict[str, str], body: bytes, *, head: bool, sha256: str | None = None
    ) -> None:
        self.send_response(status)
        headers = {"Content-Length": str(len(body)), **headers}
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if head:
            return
        if sha256 is not None and self.hub.take_drop(sha256):
            cut = self.hub.drop_at.get(sha256, len(body) // 2)
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        view = memoryview(body)
        for offset in range(0, len(body), 64 * 1024):
            self.wfile.write(view[offset : offset + 64 * 1024])
            hold = self.hub.hold
            if sha256 is not None and hold is not None:
                self.wfile.flush()
                hold.wait(timeout=60)
            if sha256 is not None and self.hub.chunk_delay_s:
                self.wfile.flush()
                time.sleep(self.hub.chunk_delay_s)


def _range_start(header: str | None) -> int | None:
    if not header or not header.startswith("bytes="):
        return None
    first = header[len("bytes=") :].split(",")[0]
    start, _, _end = first.partition("-")
    return int(start) if start else None


def _tree(repo: StandinRepo, prefix: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    folders: set[str] = set()
    for path, entry in sorted(repo.files.items()):
        if prefix and not path.startswith(prefix + "/"):
            continue
        parent = path.rsplit("/", 1)[0] if "/" in path else ""
        while parent and parent != prefix and parent not in folders:
            folders.add(parent)
            entries.append({"type": "directory", "oid": hashlib.sha1(parent.encode()).hexdigest(), "path": parent})
            parent = parent.rsplit("/", 1)[0] if "/" in parent else ""
        item: dict[str, Any] = {"type": "file", "oid": entry.git_sha1, "size": len(entry.data), "path": path}
        if entry.lfs:
            item["lfs"] = {"oid": entry.sha256, "size": len(entry.data), "pointerSize": 134}
        entries.append(item)
    return entries


def point_library_at(monkeypatch: Any, endpoint: str) -> None:
    """Make ``huggingface_hub`` (in this process and in subprocesses) talk to ``endpoint``, online, without a token."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", endpoint + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)


def closed_port() -> int:
    """A local port with nothing listening on it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
