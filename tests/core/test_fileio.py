"""Durable writes: temp file in the same folder, fsync, rename, folder fsync; nothing left behind on failure."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from studio.core import fileio
from studio.core.errors import BackendError
from studio.core.fileio import (
    atomic_write_bytes,
    atomic_write_text,
    atomic_writer,
    publish_file,
    staged_dir,
    staged_file,
)

STUDIO = Path(__file__).resolve().parents[2] / "studio"


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _record_fsync_and_replace(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Log every fsync (as the path of the descriptor) and rename, in order, while still doing them."""
    calls: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        calls.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        calls.append(("replace", str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(fileio.os, "fsync", fsync)
    monkeypatch.setattr(fileio.os, "replace", replace)
    return calls


def test_atomic_write_creates_and_replaces(tmp_path: Path) -> None:
    path = tmp_path / "out.yaml"
    atomic_write_text(path, "first\n")
    atomic_write_text(path, "second ✓\n")
    assert path.read_text(encoding="utf-8") == "second ✓\n"
    assert _names(tmp_path) == ["out.yaml"]


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to name descriptors")
def test_content_is_fsynced_before_the_rename_and_the_folder_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _record_fsync_and_replace(monkeypatch)
    path = tmp_path / "out.txt"
    atomic_write_text(path, "x")
    assert [kind for kind, _ in calls] == ["fsync", "replace", "fsync"]
    temp_name = Path(calls[0][1]).name
    assert temp_name.startswith(".out.txt.") and Path(calls[0][1]).parent == tmp_path
    assert calls[1] == ("replace", str(path))
    assert calls[2] == ("fsync", str(tmp_path))


def test_atomic_write_keeps_old_file_when_replace_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "out.yaml"
    path.write_bytes(b"old content\n")

    def broken_replace(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fileio.os, "replace", broken_replace)
    with pytest.raises(OSError, match="No space left"):
        atomic_write_text(path, "new content\n")
    assert path.read_bytes() == b"old content\n"
    assert _names(tmp_path) == ["out.yaml"]


def test_atomic_write_keeps_old_file_when_fsync_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "out.yaml"
    path.write_bytes(b"old content\n")

    def broken_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(fileio.os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="Input/output"):
        atomic_write_text(path, "new content\n")
    assert path.read_bytes() == b"old content\n"
    assert _names(tmp_path) == ["out.yaml"]


def test_streamed_write_that_raises_leaves_old_file_and_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text("old\n")
    with pytest.raises(RuntimeError, match="row 2"), atomic_writer(path) as handle:
        handle.write("row 1\n")
        raise RuntimeError("row 2 is bad")
    assert path.read_text() == "old\n"
    assert _names(tmp_path) == ["rows.jsonl"]


def test_atomic_write_keeps_file_mode(tmp_path: Path) -> None:
    path = tmp_path / "out.yaml"
    path.write_text("x")
    os.chmod(path, 0o600)
    atomic_write_text(path, "y")
    assert path.stat().st_mode & 0o777 == 0o600


def test_new_file_gets_the_requested_mode(tmp_path: Path) -> None:
    secret, plain = tmp_path / "key.pem", tmp_path / "plain.txt"
    atomic_write_bytes(secret, b"\x00secret", mode=0o600)
    atomic_write_text(plain, "x")
    assert secret.read_bytes() == b"\x00secret"
    assert secret.stat().st_mode & 0o777 == 0o600
    assert plain.stat().st_mode & 0o777 == fileio.DEFAULT_FILE_MODE


def test_text_is_written_exactly(tmp_path: Path) -> None:
    path = tmp_path / "crlf.txt"
    atomic_write_text(path, "a\r\nb\n✓")
    assert path.read_bytes() == "a\r\nb\n✓".encode()


def test_staged_file_moves_into_place_only_when_written(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "model.gguf"
    with staged_file(target) as tmp:
        assert tmp.parent == target.parent and tmp != target
        tmp.write_bytes(b"GGUF")
    assert target.read_bytes() == b"GGUF"
    with pytest.raises(BackendError, match="nothing was written"), staged_file(target):
        pass
    with pytest.raises(RuntimeError), staged_file(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("converter crashed")
    assert target.read_bytes() == b"GGUF"
    assert _names(target.parent) == ["model.gguf"]


def test_staged_dir_replaces_a_folder_whole_or_not_at_all(tmp_path: Path) -> None:
    target = tmp_path / "adapter"
    target.mkdir()
    (target / "old.bin").write_bytes(b"old")
    with pytest.raises(RuntimeError), staged_dir(target) as tmp:
        (tmp / "new.bin").write_bytes(b"new")
        raise RuntimeError("training stopped")
    assert _names(target) == ["old.bin"]
    assert _names(tmp_path) == ["adapter"]
    with staged_dir(target) as tmp:
        (tmp / "new.bin").write_bytes(b"new")
    assert _names(target) == ["new.bin"]
    assert _names(tmp_path) == ["adapter"]


def test_publish_file_moves_a_finished_download(tmp_path: Path) -> None:
    part, target = tmp_path / "m.gguf.part", tmp_path / "m.gguf"
    part.write_bytes(b"done")
    publish_file(part, target)
    assert target.read_bytes() == b"done"
    assert _names(tmp_path) == ["m.gguf"]


def test_no_module_renames_files_by_itself() -> None:
    """Every durable write goes through fileio; a hand-rolled temp+rename elsewhere would skip its fsyncs."""
    pattern = re.compile(r"\bos\.(replace|rename)\(|\bmkstemp\(|\.rename\(|\.replace\(tmp")
    offenders = [
        f"{path.relative_to(STUDIO.parent)}:{number}"
        for path in STUDIO.rglob("*.py")
        if path.name != "fileio.py"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if pattern.search(line)
    ]
    assert offenders == []
