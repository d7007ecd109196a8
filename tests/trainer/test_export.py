"""Export plumbing that needs no model: converter extraction from the sdist, and argument checks."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from studio.core.errors import BackendError, InputError
from studio.trainer.converter import converter_env, ensure_converter
from studio.trainer.export import export_model, quantize_gguf

PREFIX = "llama_cpp_python-0.3.36/vendor/llama.cpp/"


def _sdist(path: Path, files: dict[str, str]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def test_converter_is_extracted_once_with_a_gguf_dist_info(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "converter"
    monkeypatch.setenv("STUDIO_CONVERTER_DIR", str(target))
    sdist = _sdist(
        tmp_path / "llama_cpp_python-0.3.36.tar.gz",
        {
            PREFIX + "convert_hf_to_gguf.py": "print('hf')\n",
            PREFIX + "convert_lora_to_gguf.py": "print('lora')\n",
            PREFIX + "conversion/__init__.py": "",
            PREFIX + "gguf-py/pyproject.toml": '[tool.poetry]\nname = "gguf"\nversion = "0.19.0"\n',
            PREFIX + "gguf-py/gguf/__init__.py": "",
            PREFIX + "src/llama.cpp": "not needed",
            "llama_cpp_python-0.3.36/llama_cpp/llama.py": "not needed",
        },
    )
    assert ensure_converter(sdist) == target
    assert (target / "convert_hf_to_gguf.py").read_text() == "print('hf')\n"
    assert (target / "conversion" / "__init__.py").is_file()
    assert not (target / "src").exists() and not (target / "llama_cpp").exists()
    metadata = (target / "gguf-py" / "gguf-0.19.0.dist-info" / "METADATA").read_text()
    assert "Name: gguf" in metadata and "Version: 0.19.0" in metadata
    env = converter_env(target)
    assert env["PYTHONPATH"].split(":")[0] == str(target / "gguf-py")
    sdist.unlink()
    assert ensure_converter(None) == target  # cached: no download, no sdist needed


def test_sdist_without_the_converter_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "converter"
    monkeypatch.setenv("STUDIO_CONVERTER_DIR", str(target))
    sdist = _sdist(tmp_path / "other.tar.gz", {"something/else.py": ""})
    with pytest.raises(BackendError, match=r"convert_hf_to_gguf\.py"):
        ensure_converter(sdist)
    assert not target.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["other.tar.gz"]


def test_export_refuses_a_folder_that_holds_no_model(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a LoRA adapter or Hugging Face model folder"):
        export_model(tmp_path, tmp_path / "out", name="x")


def test_export_refuses_an_unknown_quantisation(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown quantisation 'q2'"):
        export_model(tmp_path, tmp_path / "out", name="x", quants=("q2",))
    with pytest.raises(InputError, match="unknown quantisation 'f32'"):
        quantize_gguf(tmp_path / "in.gguf", tmp_path / "out.gguf", "f32")
