"""The model registry over a real database and real (small synthetic or embedded) GGUF files."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from studio.cli.main import main as cli_main
from studio.core.errors import ExitCode, InputError, NotFoundError, StateError
from studio.core.inference import embedded
from studio.core.inference.registry import ModelRegistry, resolve_model, sha256_cached
from studio.core.paths import models_dir
from studio.core.store import Store
from tests.core.test_gguf import STRING, UINT32, build_gguf


def _model(folder: Path, name: str, arch: str = "llama", ctx: int = 2048, title: str | None = None) -> Path:
    """A small GGUF file; its content differs by ``title`` (default: the file name), as two models' files do."""
    meta = [("general.architecture", STRING, arch), (f"{arch}.context_length", UINT32, ctx)]
    meta.append(("general.name", STRING, title or name))
    meta.append(("general.file_type", UINT32, 15))
    path = folder / name
    path.write_bytes(build_gguf(meta))
    return path


def test_add_records_header_facts_and_hash(store: Store, tmp_path: Path) -> None:
    path = _model(tmp_path, "tiny.gguf", arch="qwen2", ctx=1024)
    entry = ModelRegistry(store.models).add(path)
    assert entry.name == "tiny"
    assert entry.path == path.resolve()
    assert entry.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (entry.architecture, entry.quant, entry.context_length) == ("qwen2", "Q4_K_M", 1024)
    assert entry.size_bytes == path.stat().st_size
    assert not entry.has_chat_template
    assert entry.source == "disk"
    assert entry.is_default  # the first model becomes the default
    assert ModelRegistry(store.models).list() == [entry]


def test_broken_file_is_refused_and_nothing_registered(store: Store, tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(build_gguf()[:40])
    with pytest.raises(InputError, match=r"broken\.gguf"):
        ModelRegistry(store.models).add(broken)
    assert ModelRegistry(store.models).list() == []
    assert list(store.db.query("SELECT * FROM model_file_hashes")) == []


def test_adding_twice_and_name_clashes(store: Store, tmp_path: Path) -> None:
    registry = ModelRegistry(store.models)
    first = registry.add(_model(tmp_path, "m.gguf"))
    assert registry.add(tmp_path / "m.gguf") == first
    with pytest.raises(StateError, match="already registered as 'm'"):
        registry.add(tmp_path / "m.gguf", name="other")
    (tmp_path / "sub").mkdir()
    second = registry.add(_model(tmp_path / "sub", "m.gguf", title="another model"))
    assert second.name == "m-2" and not second.is_default
    with pytest.raises(StateError, match="already registered"):
        registry.add(_model(tmp_path, "x.gguf"), name="m")
    with pytest.raises(InputError, match="invalid model name"):
        registry.add(tmp_path / "x.gguf", name="  ")
    assert [e.name for e in registry.list()] == ["m", "m-2"]


def test_one_model_one_entry_by_sha256(store: Store, tmp_path: Path) -> None:
    registry = ModelRegistry(store.models)
    first = registry.add(_model(tmp_path, "m.gguf"))
    (tmp_path / "copy").mkdir()
    same = tmp_path / "copy" / "renamed.gguf"
    same.write_bytes(first.path.read_bytes())
    assert registry.add(same) == first  # same content elsewhere: the existing entry
    assert registry.add(same, copy=True) == first
    assert not (models_dir() / "renamed.gguf").exists()  # nothing copied
    with pytest.raises(StateError, match="the same model is already registered as 'm'"):
        registry.add(same, name="again")
    assert resolve_model(str(same), ModelRegistry(store.models)) == first
    # When the registered file has gone, adding the same content moves the entry to the new file.
    first.path.unlink()
    moved = registry.add(same)
    assert (moved.name, moved.path, moved.is_default) == ("m", same.resolve(), True)
    assert [e.name for e in registry.list()] == ["m"]


def test_copy_into_store(store: Store, tmp_path: Path) -> None:
    source = _model(tmp_path, "copied.gguf")
    entry = ModelRegistry(store.models).add(source, copy=True, name="c")
    assert entry.path == (models_dir() / "copied.gguf").resolve()
    assert entry.path.read_bytes() == source.read_bytes()
    assert source.exists()
    assert not list(models_dir().glob("*.part"))
    (tmp_path / "other").mkdir()
    with pytest.raises(StateError, match="different file"):
        ModelRegistry(store.models).add(_model(tmp_path / "other", "copied.gguf", ctx=99), copy=True)
    with pytest.raises(StateError, match="already registered"):
        ModelRegistry(store.models).add(_model(tmp_path, "fresh.gguf"), copy=True, name="c")
    assert not (models_dir() / "fresh.gguf").exists()  # refused before anything was copied


def test_remove_and_delete_file(store: Store, tmp_path: Path) -> None:
    registry = ModelRegistry(store.models)
    keep = registry.add(_model(tmp_path, "keep.gguf"))
    gone = registry.add(_model(tmp_path, "gone.gguf"))
    registry.remove(keep.name)
    assert keep.path.exists()
    registry.remove(gone.name, delete_file=True)
    assert not gone.path.exists()
    assert registry.list() == []
    with pytest.raises(NotFoundError, match="no registered model named 'keep'"):
        registry.remove("keep")


def test_set_default_moves_the_flag(store: Store, tmp_path: Path) -> None:
    registry = ModelRegistry(store.models)
    a = registry.add(_model(tmp_path, "a.gguf"))
    b = registry.add(_model(tmp_path, "b.gguf"))
    assert registry.default().name == a.name
    registry.set_default(b.name)
    assert registry.default().name == b.name
    assert [e.name for e in registry.list() if e.is_default] == [b.name]
    with pytest.raises(NotFoundError):
        registry.set_default("nope")
    registry.remove(b.name)
    assert registry.default().name == a.name  # falls back to the oldest entry


def test_sha256_is_cached_by_size_and_mtime(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "blob.bin"
    path.write_bytes(b"a" * 1000)
    first = sha256_cached(path, store.models)
    assert first == hashlib.sha256(b"a" * 1000).hexdigest()
    stat = path.stat()
    path.write_bytes(b"b" * 1000)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert sha256_cached(path, store.models) == first  # same size and mtime: the cached digest is reused
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert sha256_cached(path, store.models) == hashlib.sha256(b"b" * 1000).hexdigest()


def test_resolve_model_by_name_path_and_errors(store: Store, tmp_path: Path) -> None:
    registry = ModelRegistry(store.models)
    named = registry.add(_model(tmp_path, "named.gguf"))
    assert resolve_model("named", registry) == named
    assert resolve_model(None, registry) == named
    loose = _model(tmp_path, "loose.gguf")
    on_the_fly = resolve_model(str(loose), registry)
    assert on_the_fly.path == loose.resolve() and registry.get("loose") == on_the_fly
    with pytest.raises(NotFoundError, match="neither a registered model nor an existing file"):
        resolve_model("missing-model", registry)
    loose.unlink()
    with pytest.raises(NotFoundError, match="is missing"):
        resolve_model("loose", registry)


@pytest.mark.real_model
def test_default_registers_the_embedded_model(store: Store, embedded_model: Path) -> None:
    (models_dir() / embedded.FILE_NAME).symlink_to(embedded_model)
    entry = ModelRegistry(store.models).default()
    assert entry.source == "embedded"
    assert entry.sha256 == embedded.SHA256
    assert entry.quant == "Q4_1" and entry.has_chat_template and entry.context_length == 8192
    assert entry.is_default
    assert ModelRegistry(store.models).ensure_embedded() == entry


# -- `studio models ...` --------------------------------------------------------------------------------------------


def test_cli_add_list_default_remove(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["models", "list"]) == 0
    assert "no models registered" in capsys.readouterr().out
    first, second = _model(tmp_path, "first.gguf"), _model(tmp_path, "second.gguf")
    assert cli_main(["models", "add", str(first)]) == 0
    assert cli_main(["models", "add", str(second), "--name", "two", "--copy"]) == 0
    out = capsys.readouterr().out
    assert "registered first (llama, Q4_K_M" in out and "registered two" in out
    assert cli_main(["models", "set-default", "two"]) == 0
    assert cli_main(["models", "list", "--json"]) == 0
    records = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert [(r["name"], r["is_default"]) for r in records] == [("first", False), ("two", True)]
    assert records[1]["path"] == str((models_dir() / "second.gguf").resolve())
    assert cli_main(["models", "list"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ["NAME", "ARCH", "QUANT"]
    assert table[2].startswith("* two")
    assert cli_main(["models", "remove", "two", "--delete-file"]) == 0
    assert not (models_dir() / "second.gguf").exists()
    assert second.exists()


def test_cli_errors_are_one_line_with_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF\x03\x00\x00\x00")
    assert cli_main(["models", "add", str(broken)]) == ExitCode.INPUT
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(broken) in err and "truncated" in err
    assert cli_main(["models", "remove", "ghost"]) == ExitCode.NOT_FOUND
    assert cli_main(["models", "set-default", "ghost"]) == ExitCode.NOT_FOUND
    assert cli_main(["models", "add", str(tmp_path / "absent.gguf")]) == ExitCode.INPUT
    assert "not found" in capsys.readouterr().err


@pytest.mark.real_model
def test_cli_install_default_registers_the_embedded_model(
    embedded_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (models_dir() / embedded.FILE_NAME).symlink_to(embedded_model)
    assert cli_main(["models", "install-default"]) == 0
    assert capsys.readouterr().out.strip() == str(embedded_model.resolve())
    assert cli_main(["models", "list", "--json"]) == 0
    (record,) = json.loads(capsys.readouterr().out)
    assert (record["source"], record["is_default"], record["sha256"]) == ("embedded", True, embedded.SHA256)


@pytest.mark.real_model
def test_install_default_reuses_a_registered_copy(
    store: Store, embedded_model: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The model was added from another folder (an earlier install elsewhere): nothing is fetched or registered twice.
    assert cli_main(["models", "add", str(embedded_model), "--name", "smol"]) == 0

    def no_download(*_args: object, **_kwargs: object) -> Path:
        raise AssertionError("the embedded model was fetched again")

    monkeypatch.setattr("studio.cli.models.install_embedded_model", no_download)
    monkeypatch.setattr(embedded, "install_embedded_model", no_download)
    capsys.readouterr()
    assert cli_main(["models", "install-default"]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == str(embedded_model.resolve()) and err.startswith("already installed: smol (")
    assert not (models_dir() / embedded.FILE_NAME).exists()
    assert cli_main(["models", "add", str(embedded_model)]) == 0
    assert capsys.readouterr().out.startswith("already registered: smol (")
    assert [e.name for e in ModelRegistry(store.models).list()] == ["smol"]


def test_headless_default_model_is_never_installed_quietly(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["models", "list"]) == 0
    assert "no models registered" in capsys.readouterr().out
    assert cli_main(["probe", "hello"]) == ExitCode.NOT_FOUND
    err = capsys.readouterr().err
    assert "no model is registered; run `studio models install-default` once" in err and err.count("\n") == 1
    assert not any(models_dir().iterdir())
