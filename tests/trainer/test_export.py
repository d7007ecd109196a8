"""Export plumbing: converter extraction from the sdist, argument checks, and how a GGUF is read for training."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from studio.core.errors import BackendError, InputError
from studio.trainer.converter import converter_env, ensure_converter, import_gguf_py
from studio.trainer.export import _gguf_parsed_once, export_model, quantize_gguf

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


def test_a_gguf_is_parsed_once_while_transformers_loads_it(converter_dir: Path, embedded_model: Path) -> None:
    """hf_base_from_gguf lets transformers' three reads of the file share one parse, and its per-module name
    maps share one map; both stand-ins are gone afterwards, also after an error."""
    import_gguf_py(converter_dir)
    import gguf

    real = (gguf.GGUFReader, gguf.get_tensor_name_map)
    with _gguf_parsed_once():
        reader = gguf.GGUFReader(embedded_model)
        assert gguf.GGUFReader(str(embedded_model)) is reader
        assert "token_embd.weight" in [t.name for t in reader.tensors]
        llama = gguf.MODEL_ARCH.LLAMA
        names = gguf.get_tensor_name_map(llama, 30)
        assert gguf.get_tensor_name_map(llama, 30) is names
        assert names.get_name("model.layers.29.self_attn.q_proj") == "blk.29.attn_q"
        assert gguf.get_tensor_name_map(llama, 2) is not names
    assert (gguf.GGUFReader, gguf.get_tensor_name_map) == real
    with pytest.raises(RuntimeError), _gguf_parsed_once():
        raise RuntimeError("transformers failed")
    assert (gguf.GGUFReader, gguf.get_tensor_name_map) == real
