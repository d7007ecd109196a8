"""Hub listing and downloads against a real local HTTP stand-in of the Hub (no mock of huggingface_hub)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from huggingface_hub import HfApi, constants

from studio.cli.main import main as cli_main
from studio.core.errors import CancelledError, ExitCode, InputError, NotFoundError, StateError
from studio.core.inference.base import CancelToken
from studio.core.inference.gguf import read_gguf_info
from studio.core.inference.hub import HubError, HubFile, download, list_gguf_files
from studio.core.inference.registry import ModelRegistry
from studio.core.paths import models_dir
from studio.core.store import Store
from tests.core.hub_standin import COMMIT, HubStandin, closed_port, point_library_at
from tests.core.test_gguf import STRING, UINT32, build_gguf

pytestmark = pytest.mark.network_local

REPO = "tiny-org/tiny-gguf"


_point_library_at = point_library_at


def _big_model() -> bytes:
    """A valid GGUF of about 3 MiB (three download chunks)."""
    meta = [("general.architecture", STRING, "llama"), ("llama.context_length", UINT32, 512)]
    return build_gguf(meta, [("w", [262144, 3], 0)])


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[HubStandin]:
    standin = HubStandin()
    standin.add_file(REPO, "tiny-Q8_0.gguf", _big_model())
    standin.add_file(REPO, "sub/small-F16.gguf", build_gguf([("general.architecture", STRING, "llama")]))
    standin.add_file(REPO, "README.md", b"# tiny\n", lfs=False)
    standin.add_file(REPO, "plain.gguf", build_gguf([("general.architecture", STRING, "gpt2")]), lfs=False)
    standin.add_file("tiny-org/gated", "g.gguf", build_gguf([("general.architecture", STRING, "llama")]))
    standin.repos["tiny-org/gated"].gated = True
    with standin:
        _point_library_at(monkeypatch, standin.endpoint)
        yield standin
    leftover = [t.name for t in threading.enumerate() if "hub-standin" in t.name or "process_request" in t.name]
    assert leftover == []


@pytest.fixture
def registry(store: Store) -> ModelRegistry:
    return ModelRegistry(store.models)


def test_list_gguf_files(hub: HubStandin) -> None:
    files = list_gguf_files(REPO)
    big = hub.repos[REPO].files["tiny-Q8_0.gguf"]
    assert [f.path for f in files] == ["plain.gguf", "sub/small-F16.gguf", "tiny-Q8_0.gguf"]
    assert files[-1] == HubFile("tiny-Q8_0.gguf", len(big.data), big.sha256)
    assert files[0].sha256 is None  # not in LFS: no sha256 from the listing
    assert any("/api/models/tiny-org/tiny-gguf/tree/main" in r.path for r in hub.requests)


def test_full_download_verifies_renames_and_registers(hub: HubStandin, registry: ModelRegistry) -> None:
    seen: list[tuple[int, int]] = []
    path = download(REPO, "tiny-Q8_0.gguf", progress=lambda done, total: seen.append((done, total)), registry=registry)
    data = hub.repos[REPO].files["tiny-Q8_0.gguf"].data
    assert path == models_dir() / "tiny-Q8_0.gguf"
    assert path.read_bytes() == data
    assert not path.with_name(path.name + ".part").exists()
    assert seen[-1] == (len(data), len(data))
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    cdn_gets = [r for r in hub.requests if r.method == "GET" and r.path.startswith("/cdn/")]
    assert len(cdn_gets) == 1 and cdn_gets[0].range is None
    assert cdn_gets[0].authorization is None  # no credentials sent off the Hub host
    entry = registry.get("tiny-Q8_0")
    assert entry.source == f"hub:{REPO}/tiny-Q8_0.gguf"
    assert entry.sha256 == hashlib.sha256(data).hexdigest()
    assert entry.context_length == 512


def test_non_lfs_file_and_subfolder(hub: HubStandin, tmp_path: Path) -> None:
    plain = download(REPO, "plain.gguf", tmp_path)
    assert plain.read_bytes() == hub.repos[REPO].files["plain.gguf"].data
    nested = download(REPO, "sub/small-F16.gguf", tmp_path)
    assert nested == tmp_path / "small-F16.gguf"


def test_dropped_connection_is_resumed_with_range(hub: HubStandin, tmp_path: Path) -> None:
    entry = hub.repos[REPO].files["tiny-Q8_0.gguf"]
    hub.drops[entry.sha256] = 1
    path = download(REPO, "tiny-Q8_0.gguf", tmp_path)
    assert path.read_bytes() == entry.data
    ranges = [r.range for r in hub.requests if r.method == "GET" and r.path.startswith("/cdn/")]
    assert ranges[0] is None
    assert len(ranges) == 2 and ranges[1] is not None
    resumed_from = int(ranges[1].removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_from < len(entry.data)


def test_drops_beyond_the_retries_keep_the_part_for_a_later_run(hub: HubStandin, tmp_path: Path) -> None:
    entry = hub.repos[REPO].files["tiny-Q8_0.gguf"]
    hub.drops[entry.sha256] = 2
    hub.drop_at[entry.sha256] = 1 << 20
    with pytest.raises(HubError, match="broke off") as caught:
        download(REPO, "tiny-Q8_0.gguf", tmp_path, retries=1)
    assert "\n" not in str(caught.value)
    part = tmp_path / "tiny-Q8_0.gguf.part"
    assert part.stat().st_size == 2 << 20  # each attempt got 1 MiB before the connection dropped
    assert not (tmp_path / "tiny-Q8_0.gguf").exists()
    path = download(REPO, "tiny-Q8_0.gguf", tmp_path)
    assert path.read_bytes() == entry.data


def test_existing_part_file_is_resumed(hub: HubStandin, tmp_path: Path) -> None:
    data = hub.repos[REPO].files["tiny-Q8_0.gguf"].data
    (tmp_path / "tiny-Q8_0.gguf.part").write_bytes(data[:1000])
    seen: list[int] = []
    path = download(REPO, "tiny-Q8_0.gguf", tmp_path, progress=lambda done, _t: seen.append(done))
    assert path.read_bytes() == data
    assert seen[0] == 1000
    ranges = [r.range for r in hub.requests if r.path.startswith("/cdn/")]
    assert ranges == ["bytes=1000-"]


def test_corrupt_part_file_fails_the_checksum_and_is_removed(hub: HubStandin, tmp_path: Path) -> None:
    data = hub.repos[REPO].files["tiny-Q8_0.gguf"].data
    (tmp_path / "tiny-Q8_0.gguf.part").write_bytes(b"\xff" * 1000)
    with pytest.raises(HubError, match="sha256"):
        download(REPO, "tiny-Q8_0.gguf", tmp_path)
    assert not (tmp_path / "tiny-Q8_0.gguf.part").exists()
    assert download(REPO, "tiny-Q8_0.gguf", tmp_path).read_bytes() == data


def test_cancel_keeps_the_part_and_a_rerun_finishes(hub: HubStandin, tmp_path: Path) -> None:
    cancel = CancelToken()

    def on_progress(done: int, _total: int) -> None:
        if done >= 1 << 20:
            cancel.cancel()

    with pytest.raises(CancelledError, match="cancelled"):
        download(REPO, "tiny-Q8_0.gguf", tmp_path, on_progress, cancel)
    part = tmp_path / "tiny-Q8_0.gguf.part"
    assert part.is_file() and 0 < part.stat().st_size < len(hub.repos[REPO].files["tiny-Q8_0.gguf"].data)
    assert not (tmp_path / "tiny-Q8_0.gguf").exists()
    path = download(REPO, "tiny-Q8_0.gguf", tmp_path)
    assert path.read_bytes() == hub.repos[REPO].files["tiny-Q8_0.gguf"].data


def test_gated_repo(hub: HubStandin, tmp_path: Path) -> None:
    with pytest.raises(HubError, match="gated") as caught:
        download("tiny-org/gated", "g.gguf", tmp_path)
    assert "token" in str(caught.value) and "\n" not in str(caught.value)
    assert not list(tmp_path.iterdir())
    path = download("tiny-org/gated", "g.gguf", tmp_path, token=hub.token)
    assert path.read_bytes() == hub.repos["tiny-org/gated"].files["g.gguf"].data


def test_missing_repo_and_missing_file(hub: HubStandin, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="repository tiny-org/nothing not found"):
        list_gguf_files("tiny-org/nothing")
    with pytest.raises(NotFoundError, match="repository tiny-org/nothing not found"):
        download("tiny-org/nothing", "x.gguf", tmp_path)
    with pytest.raises(NotFoundError, match=r"file absent\.gguf not found"):
        download(REPO, "absent.gguf", tmp_path)
    with pytest.raises(NotFoundError, match="no such revision"):
        list_gguf_files(REPO, revision="v9")
    with pytest.raises(InputError):
        download(REPO, "../escape.gguf", tmp_path)
    with pytest.raises(InputError, match="not a valid Hub repository id") as caught:
        list_gguf_files("not a repo/with spaces")
    assert "\n" not in str(caught.value)


def test_downloaded_file_that_is_not_gguf_is_not_registered(hub: HubStandin, registry: ModelRegistry) -> None:
    hub.add_file(REPO, "fake.gguf", b"not a model at all")
    with pytest.raises(InputError, match="not a GGUF file"):
        download(REPO, "fake.gguf", registry=registry)
    assert registry.list() == []


def test_unreachable_hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _point_library_at(monkeypatch, f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(HubError, match="cannot reach the Hub"):
        list_gguf_files(REPO)
    with pytest.raises(HubError, match="cannot reach the Hub"):
        download(REPO, "tiny-Q8_0.gguf", tmp_path)


def test_offline_mode(hub: HubStandin, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(HubError, match="offline mode"):
        list_gguf_files(REPO)
    with pytest.raises(HubError, match="offline mode"):
        download(REPO, "tiny-Q8_0.gguf", tmp_path)
    assert hub.requests == []


# -- `studio models hub-list` / `download` --------------------------------------------------------------------------


def test_cli_hub_list_and_download(hub: HubStandin, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["models", "hub-list", REPO, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [f["path"] for f in listed] == ["plain.gguf", "sub/small-F16.gguf", "tiny-Q8_0.gguf"]
    assert cli_main(["models", "hub-list", REPO]) == 0
    assert "tiny-Q8_0.gguf" in capsys.readouterr().out
    assert cli_main(["models", "download", REPO, "tiny-Q8_0.gguf"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("downloaded tiny-Q8_0 (llama, ")
    assert "100.0%" in captured.err
    assert (models_dir() / "tiny-Q8_0.gguf").read_bytes() == hub.repos[REPO].files["tiny-Q8_0.gguf"].data


def test_cli_download_errors(hub: HubStandin, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["models", "download", REPO, "absent.gguf"]) == ExitCode.NOT_FOUND
    assert cli_main(["models", "download", "tiny-org/gated", "g.gguf"]) == ExitCode.RUNTIME
    assert cli_main(["models", "hub-list", "tiny-org/nothing"]) == ExitCode.NOT_FOUND
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 3 and all(line.startswith("studio: error: ") for line in lines)
    assert "gated" in lines[1]


@pytest.mark.slow
def test_ctrl_c_keeps_the_part_and_the_next_run_resumes(hub: HubStandin, tmp_path: Path) -> None:
    # The body stops after its first chunk until Ctrl-C has been sent, then goes on slowly (3 MiB in 64 KiB chunks,
    # 0.05 s apart), so the interrupt always lands in the middle of the transfer.
    hub.hold = threading.Event()
    hub.chunk_delay_s = 0.05
    env = {**os.environ, "HF_ENDPOINT": hub.endpoint, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    command = [sys.executable, "-m", "studio", "models", "download", REPO, "tiny-Q8_0.gguf", "--dest", str(tmp_path)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    part = tmp_path / "tiny-Q8_0.gguf.part"
    try:
        deadline = time.monotonic() + 60
        while not (part.is_file() and part.stat().st_size > 0):
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        hub.hold.set()
        _out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
        hub.hold.set()
        hub.hold = None
        hub.chunk_delay_s = 0.0
    assert process.returncode == ExitCode.CANCELLED
    assert "partial file is kept" in err.splitlines()[-1]
    kept = part.stat().st_size
    assert 0 < kept < len(hub.repos[REPO].files["tiny-Q8_0.gguf"].data)
    hub.requests.clear()
    path = download(REPO, "tiny-Q8_0.gguf", tmp_path)
    assert path.read_bytes() == hub.repos[REPO].files["tiny-Q8_0.gguf"].data
    assert [r.range for r in hub.requests if r.path.startswith("/cdn/")] == [f"bytes={kept}-"]


def test_server_ignoring_range_restarts_from_zero(hub: HubStandin, tmp_path: Path) -> None:
    data = hub.repos[REPO].files["tiny-Q8_0.gguf"].data
    (tmp_path / "tiny-Q8_0.gguf.part").write_bytes(data[:1000])
    hub.honour_range = False
    path = download(REPO, "tiny-Q8_0.gguf", tmp_path)
    assert path.read_bytes() == data


def test_file_in_place_is_kept_or_replaced(hub: HubStandin, tmp_path: Path) -> None:
    data = hub.repos[REPO].files["tiny-Q8_0.gguf"].data
    download(REPO, "tiny-Q8_0.gguf", tmp_path)
    hub.requests.clear()
    download(REPO, "tiny-Q8_0.gguf", tmp_path)
    assert not [r for r in hub.requests if r.path.startswith("/cdn/")]  # right size and sha256: not fetched again
    (tmp_path / "tiny-Q8_0.gguf").write_bytes(b"\0" * len(data))
    assert download(REPO, "tiny-Q8_0.gguf", tmp_path).read_bytes() == data


def test_registered_different_file_in_the_way_is_not_overwritten(hub: HubStandin, registry: ModelRegistry) -> None:
    in_the_way = models_dir() / "tiny-Q8_0.gguf"
    in_the_way.write_bytes(build_gguf([("general.architecture", STRING, "other")]))
    registry.add(in_the_way, name="mine")
    with pytest.raises(StateError, match="registered as 'mine'"):
        download(REPO, "tiny-Q8_0.gguf", registry=registry)
    assert read_gguf_info(in_the_way).architecture == "other"


def test_standin_model_info_is_what_the_library_expects(hub: HubStandin) -> None:
    info = HfApi(endpoint=hub.endpoint).model_info(REPO)
    assert info.sha == COMMIT
    assert sorted(s.rfilename for s in info.siblings or []) == sorted(hub.repos[REPO].files)
