"""Named pipes, sockets and devices given where a document file is expected are refused without being opened
(opening a FIFO with no writer blocks forever), by the shared reader and so by every command that reads one."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from studio.cli.main import main
from studio.core.documents import SafetyConfig
from studio.core.errors import ExitCode, InputError
from studio.core.fileio import non_regular_problem, open_regular_file
from studio.core.yamlio import load_document, read_text

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need POSIX")

#: Without the check these would block for good; fail fast instead of at the suite's global timeout.
pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe.yaml"
    os.mkfifo(path)
    return path


@pytest.fixture
def unix_socket(tmp_path: Path) -> Iterator[Path]:
    if not hasattr(socket, "AF_UNIX"):
        pytest.skip("Unix sockets need POSIX")
    path = tmp_path / "sock.yaml"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind(str(path))
    except OSError as exc:  # a path too long for sun_path
        server.close()
        pytest.skip(f"cannot bind a Unix socket here ({exc})")
    try:
        yield path
    finally:
        server.close()


def _refusal(path: Path) -> str:
    with pytest.raises(InputError) as caught:
        read_text(path)
    return str(caught.value)


@needs_fifo
def test_a_fifo_is_refused_without_being_opened(fifo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[object] = []
    real_open = os.open

    def spy(path: object, *args: object, **kwargs: object) -> int:
        opened.append(path)
        return real_open(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", spy)
    assert _refusal(fifo) == f"{fifo}: is a named pipe (FIFO), not a regular file"
    with pytest.raises(InputError, match="is a named pipe"):
        load_document(fifo, SafetyConfig)
    assert opened == []


def test_a_socket_is_refused(unix_socket: Path) -> None:
    assert _refusal(unix_socket) == f"{unix_socket}: is a socket, not a regular file"


@pytest.mark.skipif(not Path("/dev/null").exists(), reason="no /dev/null")
def test_a_device_is_refused() -> None:
    assert _refusal(Path("/dev/null")) == "/dev/null: is a character device, not a regular file"


@needs_fifo
def test_a_symlink_to_a_fifo_is_refused(fifo: Path, tmp_path: Path) -> None:
    link = tmp_path / "link.yaml"
    link.symlink_to(fifo)
    assert _refusal(link) == f"{link}: is a named pipe (FIFO), not a regular file"


def test_regular_files_directories_and_missing_files(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("a: 1\n", encoding="utf-8")
    assert read_text(good) == "a: 1\n"
    with open_regular_file(good) as handle:
        assert handle.read() == b"a: 1\n"
    assert _refusal(tmp_path) == f"{tmp_path}: is a directory, not a file"
    assert _refusal(tmp_path / "none.yaml") == f"{tmp_path / 'none.yaml'}: no such file"
    assert non_regular_problem(os.stat(good).st_mode) is None


@needs_fifo
def test_a_file_swapped_for_a_fifo_after_the_check_is_refused_on_the_open_handle(
    fifo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The type is checked again on the handle, and the open does not block, if the path changes in between."""
    regular = tmp_path / "regular.yaml"
    regular.write_text("a: 1\n", encoding="utf-8")
    real_stat = os.stat
    monkeypatch.setattr(os, "stat", lambda path, *a, **k: real_stat(regular if path == fifo else path))
    assert _refusal(fifo) == f"{fifo}: is a named pipe (FIFO), not a regular file"


@needs_fifo
def test_verify_and_import_approved_refuse_a_fifo_file_or_one_in_a_folder(
    fifo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["verify", str(fifo)]) == ExitCode.INPUT
    assert capsys.readouterr().out == f"{fifo}: FAILED: {fifo}: is a named pipe (FIFO), not a regular file\n"
    for target in (fifo, fifo.parent):
        assert main(["import-approved", str(target)]) == ExitCode.INPUT
        captured = capsys.readouterr()
        assert captured.err == f"studio: error: {fifo}: refused: {fifo}: is a named pipe (FIFO), not a regular file\n"


@needs_fifo
def test_config_commands_refuse_a_fifo(fifo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for command in (["config", "validate"], ["config", "import"]):
        assert main([*command, str(fifo)]) == ExitCode.INPUT
        assert f"{fifo}: is a named pipe (FIFO), not a regular file" in capsys.readouterr().err
