"""Durable file writes: the one place that knows how to replace a file or folder without leaving half of it behind.

Every durable file the studio writes (documents, exports, reports, settings, keys, the audit head, caches, trainer
outputs) goes through here, so one rule holds everywhere: the new content is written under a temporary name in
the target's own folder, flushed and fsynced, then moved over the target with :func:`os.replace` (atomic on POSIX
and Windows within one file system), and the folder is fsynced so the rename itself survives a power cut. If
anything fails before the rename, the previous file (if any) is untouched and no temporary file remains.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import IO, Any, BinaryIO, Literal, overload

from studio.core.errors import BackendError, InputError

#: Mode of a newly created file when the caller does not ask for another one (an existing file keeps its mode).
DEFAULT_FILE_MODE = 0o644


#: What a file that is not a regular one is, by its ``stat`` type.
_FILE_KINDS = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def non_regular_problem(mode: int) -> str | None:
    """Why a file of this ``st_mode`` cannot be read as a document ("is a named pipe (FIFO), not a regular file");
    None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "is a directory, not a file"
    kind = next((kind for test, kind in _FILE_KINDS if test(mode)), "a special file")
    return f"is {kind}, not a regular file"


def _refuse_non_regular(path: Path, mode: int) -> None:
    problem = non_regular_problem(mode)
    if problem is not None:
        raise InputError(path, problem)


def open_regular_file(path: Path | str) -> BinaryIO:
    """Open a file the user named for binary reading, refusing anything but a regular file with an InputError.

    The type is checked before opening, so a named pipe, device or socket is never opened (reading one could block
    forever or never end), and again on the open handle, in case the path was swapped in between; the open itself
    does not block on a pipe. A missing or unreadable file is an InputError too.
    """
    path = Path(path)
    try:
        _refuse_non_regular(path, os.stat(path).st_mode)
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise InputError(path, "no such file") from None
    except IsADirectoryError:
        raise InputError(path, "is a directory, not a file") from None
    except OSError as exc:
        raise InputError(path, f"cannot read the file ({exc.strerror or exc})") from None
    try:
        _refuse_non_regular(path, os.fstat(fd).st_mode)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def output_target(path: Path | str, inputs: tuple[Path | str, ...] = (), *, what: str = "output") -> Path:
    """The file to write for an output path the user named, checked before any work is done (InputError).

    Refused: an empty name, a folder, anything but a regular file where something exists (a device such as
    ``/dev/full``, a pipe, a socket: replacing it with a file would break it), a folder that does not exist, and
    one of the command's own ``inputs`` (the report would overwrite its data). A link to a regular file is
    followed, so the link stays and its file is replaced.
    """
    if not str(path).strip():
        raise InputError(None, f"the {what} file name is empty")
    given = Path(path)
    target = given.resolve() if given.is_symlink() else given
    if target.exists():
        problem = non_regular_problem(os.stat(target).st_mode)
        if problem is not None:
            raise InputError(given, f"{problem}; give the name of a file to write the {what} to")
        for source in inputs:
            with contextlib.suppress(OSError):
                if os.path.samefile(target, source):
                    raise InputError(given, f"is also an input of this command; write the {what} somewhere else")
    elif not target.parent.is_dir():
        raise InputError(given, f"the folder {target.parent} does not exist")
    return target


def write_output(path: Path | str, text: str, inputs: tuple[Path | str, ...] = (), *, what: str = "output") -> Path:
    """Check ``path`` with :func:`output_target`, then replace it atomically with ``text``; InputError when the
    file cannot be written. Returns the file written."""
    target = output_target(path, inputs, what=what)
    try:
        atomic_write_text(target, text)
    except OSError as exc:
        raise InputError(Path(path), f"cannot write the file ({exc.strerror or exc})") from None
    return target


def fsync_dir(folder: Path) -> None:
    """Make a rename inside ``folder`` durable; a no-op where folders cannot be opened (Windows)."""
    with contextlib.suppress(OSError):
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _fsync_path(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _target_mode(path: Path, mode: int | None) -> int:
    if mode is not None:
        return mode
    return path.stat().st_mode & 0o777 if path.exists() else DEFAULT_FILE_MODE


@overload
def atomic_writer(
    path: Path | str, *, binary: Literal[False] = ..., mode: int | None = ...
) -> AbstractContextManager[IO[str]]: ...


@overload
def atomic_writer(
    path: Path | str, *, binary: Literal[True], mode: int | None = ...
) -> AbstractContextManager[IO[bytes]]: ...


def atomic_writer(
    path: Path | str, *, binary: bool = False, mode: int | None = None
) -> AbstractContextManager[IO[Any]]:
    """Stream a file's new content into a handle; it replaces ``path`` only if the block finishes.

    Text handles are UTF-8 with no newline translation. ``mode`` sets the permission bits (an existing file keeps its
    own, a new one gets :data:`DEFAULT_FILE_MODE`); the temporary file is owner-only until the rename, so a secret
    is never readable by others even for a moment.
    """
    return _atomic_writer(Path(path), binary, mode)


@contextmanager
def _atomic_writer(path: Path, binary: bool, mode: int | None) -> Iterator[IO[Any]]:
    file_mode = _target_mode(path, mode)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        handle: IO[Any] = os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8", newline="")
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, file_mode)
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    fsync_dir(path.parent)


def atomic_write_text(path: Path | str, text: str, *, mode: int | None = None) -> None:
    """Replace ``path`` with UTF-8 ``text`` (see :func:`atomic_writer`)."""
    with atomic_writer(path, mode=mode) as handle:
        handle.write(text)


def atomic_write_bytes(path: Path | str, data: bytes, *, mode: int | None = None) -> None:
    """Replace ``path`` with ``data`` (see :func:`atomic_writer`)."""
    with atomic_writer(path, binary=True, mode=mode) as handle:
        handle.write(data)


def _parent(target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    return target.parent


@contextmanager
def staged_file(target: Path) -> Iterator[Path]:
    """A temporary path beside ``target`` for a tool that writes a file by name; moved into place on success.

    The block must create the file; if it does not, or raises, the temporary file is removed and ``target`` is left
    as it was.
    """
    tmp = _parent(target) / f".{target.name}.part"
    try:
        yield tmp
        if not tmp.is_file():
            raise BackendError(f"{target}: nothing was written")
        _fsync_path(tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)


def publish_file(staged: Path, target: Path) -> None:
    """Move a finished file (already written elsewhere in ``target``'s file system) into place durably."""
    _fsync_path(staged)
    os.replace(staged, target)
    fsync_dir(target.parent)


@contextmanager
def staged_dir(target: Path) -> Iterator[Path]:
    """A temporary folder beside ``target``; it replaces ``target`` (folder or nothing) only if the block succeeds."""
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".", suffix=".part", dir=_parent(target)))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if target.exists():
        shutil.rmtree(target)
    os.replace(tmp, target)
    fsync_dir(target.parent)
