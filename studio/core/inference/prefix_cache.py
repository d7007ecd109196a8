"""Saved KV states of rendered system prefixes, so that switching between configs never re-pays the prefill.

An entry maps a key (model identity + the prefix token ids) to the llama.cpp sequence state after decoding exactly
those tokens. Entries live in a memory LRU bounded in bytes; with a cache folder they are also written to disk
(one file per key, named by the key's hash) so they survive a restart. A damaged or foreign file is ignored and
removed, never trusted.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import struct
import threading
from array import array
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from studio.core.fileio import atomic_write_bytes

_MAGIC = b"STUDIOKV"
_FORMAT = 1
_SUFFIX = ".kvstate"

CacheSource = Literal["memory", "disk"]


@dataclass(frozen=True)
class CachedPrefix:
    """The sequence state after decoding ``tokens``."""

    tokens: tuple[int, ...]
    state: bytes

    @property
    def size_bytes(self) -> int:
        return len(self.state) + 4 * len(self.tokens)


def prefix_key(model_identity: str, tokens: Sequence[int]) -> str:
    """Stable hex key of a prefix for one model (and one llama.cpp state format)."""
    digest = hashlib.sha256(model_identity.encode("utf-8"))
    digest.update(b"\0")
    digest.update(array("i", tokens).tobytes())
    return digest.hexdigest()


class PrefixCache:
    """An LRU of :class:`CachedPrefix` bounded by ``budget_bytes``, optionally mirrored to ``cache_dir``.

    The disk copy is bounded by ``disk_budget_bytes`` (oldest files go first).
    """

    def __init__(self, budget_bytes: int, cache_dir: Path | None = None, disk_budget_bytes: int | None = None) -> None:
        self.budget_bytes = max(0, budget_bytes)
        self.cache_dir = cache_dir
        self.disk_budget_bytes = disk_budget_bytes if disk_budget_bytes is not None else 4 * self.budget_bytes
        self._entries: OrderedDict[str, CachedPrefix] = OrderedDict()
        self._used = 0
        self._lock = threading.Lock()
        if cache_dir is not None:
            cache_dir.mkdir(parents=True, exist_ok=True)

    @property
    def enabled(self) -> bool:
        """Whether entries are kept anywhere (a memory budget or a cache folder)."""
        return self.budget_bytes > 0 or self.cache_dir is not None

    @property
    def used_bytes(self) -> int:
        return self._used

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str, tokens: Sequence[int]) -> tuple[CachedPrefix, CacheSource] | None:
        """The entry for ``key`` whose tokens equal ``tokens``, from memory or else from disk."""
        wanted = tuple(tokens)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.tokens == wanted:
                self._entries.move_to_end(key)
                return entry, "memory"
        entry = self._read_file(key)
        if entry is None or entry.tokens != wanted:
            return None
        self._remember(key, entry)
        return entry, "disk"

    def put(self, key: str, tokens: Sequence[int], state: bytes) -> CachedPrefix:
        entry = CachedPrefix(tuple(tokens), bytes(state))
        self._remember(key, entry)
        if self.cache_dir is not None:
            self._write_file(key, entry)
        return entry

    # -- memory -----------------------------------------------------------------------------------------------------

    def _remember(self, key: str, entry: CachedPrefix) -> None:
        if entry.size_bytes > self.budget_bytes:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._used -= old.size_bytes
            self._entries[key] = entry
            self._used += entry.size_bytes
            while self._used > self.budget_bytes and self._entries:
                _, evicted = self._entries.popitem(last=False)
                self._used -= evicted.size_bytes

    # -- disk -------------------------------------------------------------------------------------------------------

    def _path(self, key: str) -> Path:
        assert self.cache_dir is not None
        return self.cache_dir / f"{key}{_SUFFIX}"

    def _write_file(self, key: str, entry: CachedPrefix) -> None:
        assert self.cache_dir is not None
        token_bytes = array("i", entry.tokens).tobytes()
        header = json.dumps(
            {
                "format": _FORMAT,
                "key": key,
                "n_tokens": len(entry.tokens),
                "state_bytes": len(entry.state),
                "sha256": hashlib.sha256(token_bytes + entry.state).hexdigest(),
            }
        ).encode("utf-8")
        try:
            atomic_write_bytes(
                self._path(key), _MAGIC + struct.pack("<I", len(header)) + header + token_bytes + entry.state
            )
        except OSError:
            return
        self._prune_disk()

    def _read_file(self, key: str) -> CachedPrefix | None:
        if self.cache_dir is None:
            return None
        path = self._path(key)
        try:
            data = path.read_bytes()
        except OSError:
            return None
        entry = _decode(data, key)
        if entry is None:
            with contextlib.suppress(OSError):
                path.unlink()
            return None
        with contextlib.suppress(OSError):
            os.utime(path)
        return entry

    def _prune_disk(self) -> None:
        assert self.cache_dir is not None
        files: list[tuple[float, int, Path]] = []
        for path in self.cache_dir.glob(f"*{_SUFFIX}"):
            with contextlib.suppress(OSError):
                stat = path.stat()
                files.append((stat.st_mtime, stat.st_size, path))
        total = sum(size for _, size, _ in files)
        for _, size, path in sorted(files):
            if total <= self.disk_budget_bytes:
                break
            with contextlib.suppress(OSError):
                path.unlink()
                total -= size


def _decode(data: bytes, key: str) -> CachedPrefix | None:
    """Parse a cache file; ``None`` for anything damaged, truncated or written for another key."""
    if not data.startswith(_MAGIC) or len(data) < len(_MAGIC) + 4:
        return None
    (header_len,) = struct.unpack_from("<I", data, len(_MAGIC))
    start = len(_MAGIC) + 4
    try:
        header = json.loads(data[start : start + header_len].decode("utf-8"))
        n_tokens = int(header["n_tokens"])
        state_bytes = int(header["state_bytes"])
        checksum = str(header["sha256"])
        if header.get("format") != _FORMAT or header.get("key") != key:
            return None
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return None
    body = data[start + header_len :]
    if n_tokens < 0 or state_bytes <= 0 or len(body) != 4 * n_tokens + state_bytes:
        return None
    if hashlib.sha256(body).hexdigest() != checksum:
        return None
    tokens = array("i")
    tokens.frombytes(body[: 4 * n_tokens])
    return CachedPrefix(tuple(tokens), body[4 * n_tokens :])
