"""The prefix KV cache: byte-bounded LRU, disk copies that survive a restart, damaged files ignored."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from studio.core.inference.prefix_cache import CachedPrefix, PrefixCache, prefix_key

TOKENS_A = (1, 2, 3, 4)
TOKENS_B = (5, 6, 7)


def _state(size: int, fill: int = 7) -> bytes:
    return bytes([fill]) * size


def test_key_depends_on_model_and_tokens() -> None:
    assert prefix_key("m1", TOKENS_A) == prefix_key("m1", list(TOKENS_A))
    assert prefix_key("m1", TOKENS_A) != prefix_key("m2", TOKENS_A)
    assert prefix_key("m1", TOKENS_A) != prefix_key("m1", TOKENS_A[:-1])


def test_memory_hit_returns_the_stored_state() -> None:
    cache = PrefixCache(budget_bytes=10_000)
    key = prefix_key("m", TOKENS_A)
    cache.put(key, TOKENS_A, _state(100))
    found = cache.get(key, TOKENS_A)
    assert found is not None
    entry, source = found
    assert source == "memory"
    assert entry == CachedPrefix(TOKENS_A, _state(100))


def test_tokens_must_match_not_only_the_key() -> None:
    cache = PrefixCache(budget_bytes=10_000)
    key = prefix_key("m", TOKENS_A)
    cache.put(key, TOKENS_A, _state(10))
    assert cache.get(key, TOKENS_B) is None


def test_lru_evicts_least_recently_used_within_budget() -> None:
    entry_size = 100 + 4 * 3
    cache = PrefixCache(budget_bytes=2 * entry_size)
    keys = [prefix_key("m", (i, i, i)) for i in range(3)]
    cache.put(keys[0], (0, 0, 0), _state(100))
    cache.put(keys[1], (1, 1, 1), _state(100))
    assert cache.get(keys[0], (0, 0, 0)) is not None  # now most recent
    cache.put(keys[2], (2, 2, 2), _state(100))
    assert cache.get(keys[1], (1, 1, 1)) is None
    assert cache.get(keys[0], (0, 0, 0)) is not None
    assert cache.get(keys[2], (2, 2, 2)) is not None
    assert cache.used_bytes == 2 * entry_size
    assert len(cache) == 2


def test_entry_larger_than_budget_is_not_kept_in_memory() -> None:
    cache = PrefixCache(budget_bytes=50)
    key = prefix_key("m", TOKENS_A)
    cache.put(key, TOKENS_A, _state(100))
    assert cache.get(key, TOKENS_A) is None
    assert cache.used_bytes == 0


def test_disk_copy_survives_a_new_cache_instance(tmp_path: Path) -> None:
    key = prefix_key("m", TOKENS_A)
    PrefixCache(budget_bytes=10_000, cache_dir=tmp_path).put(key, TOKENS_A, _state(300, fill=3))
    files = list(tmp_path.glob("*.kvstate"))
    assert [f.name for f in files] == [f"{key}.kvstate"]
    reopened = PrefixCache(budget_bytes=10_000, cache_dir=tmp_path)
    found = reopened.get(key, TOKENS_A)
    assert found is not None
    entry, source = found
    assert source == "disk"
    assert entry.state == _state(300, fill=3)
    again = reopened.get(key, TOKENS_A)
    assert again is not None and again[1] == "memory"


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) // 2],
        lambda data: data[:-1] + bytes([data[-1] ^ 0xFF]),
        lambda data: b"garbage" * 10,
        lambda data: b"",
        lambda data: data[:8] + b"\xff\xff\xff\x7f" + data[12:],
    ],
    ids=["truncated", "flipped-byte", "garbage", "empty", "bad-header-length"],
)
def test_damaged_disk_file_is_ignored_and_removed(tmp_path: Path, damage: Callable[[bytes], bytes]) -> None:
    key = prefix_key("m", TOKENS_A)
    PrefixCache(budget_bytes=10_000, cache_dir=tmp_path).put(key, TOKENS_A, _state(200))
    path = tmp_path / f"{key}.kvstate"
    path.write_bytes(damage(path.read_bytes()))
    reopened = PrefixCache(budget_bytes=10_000, cache_dir=tmp_path)
    assert reopened.get(key, TOKENS_A) is None
    assert not path.exists()


def test_file_written_for_another_key_is_not_trusted(tmp_path: Path) -> None:
    key_a = prefix_key("m", TOKENS_A)
    key_b = prefix_key("m", TOKENS_B)
    PrefixCache(budget_bytes=10_000, cache_dir=tmp_path).put(key_a, TOKENS_A, _state(50))
    (tmp_path / f"{key_a}.kvstate").rename(tmp_path / f"{key_b}.kvstate")
    assert PrefixCache(budget_bytes=10_000, cache_dir=tmp_path).get(key_b, TOKENS_B) is None


def test_disk_is_pruned_to_its_budget_oldest_first(tmp_path: Path) -> None:
    cache = PrefixCache(budget_bytes=10_000, cache_dir=tmp_path, disk_budget_bytes=2_500)
    keys = [prefix_key("m", (i,)) for i in range(4)]
    for index, key in enumerate(keys):
        cache.put(key, (index,), _state(1_000))
        path = tmp_path / f"{key}.kvstate"
        stamp = 1_000_000 + index * 10
        os.utime(path, (stamp, stamp))
    cache.put(prefix_key("m", (9,)), (9,), _state(1_000))
    remaining = {p.name for p in tmp_path.glob("*.kvstate")}
    assert f"{keys[0]}.kvstate" not in remaining
    assert f"{prefix_key('m', (9,))}.kvstate" in remaining
    assert sum((tmp_path / name).stat().st_size for name in remaining) <= 2_500


def test_no_temporary_files_are_left_behind(tmp_path: Path) -> None:
    cache = PrefixCache(budget_bytes=10_000, cache_dir=tmp_path)
    cache.put(prefix_key("m", TOKENS_A), TOKENS_A, _state(10))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp-")] == []
