"""From a GGUF base to trainable weights, and from trained weights back to a GGUF the studio can load.

* :func:`hf_base_from_gguf` dequantises a GGUF into a plain Hugging Face folder (safetensors + tokenizer + chat
  template). transformers marks a model loaded with ``gguf_file=`` as quantised and refuses to save or train it,
  so the weights are copied into a freshly constructed model of the same config. The result is cached per GGUF
  sha256 under the app home.
* :func:`merge_adapter` folds a LoRA adapter into its base.
* :func:`convert_to_gguf` / :func:`convert_adapter_to_gguf` run the llama.cpp converters (see
  :mod:`studio.trainer.converter`); :func:`quantize_gguf` runs llama.cpp's quantiser in process.
* :func:`export_model` chains them, writes a lineage record next to every file, and registers the files in the
  model registry when one is available.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio import __version__
from studio.core.errors import BackendError, InputError
from studio.core.fileio import atomic_write_text, staged_dir, staged_file
from studio.core.inference.embedded import sha256_file
from studio.core.paths import app_home
from studio.trainer.converter import ensure_converter, import_gguf_py, run_converter

if TYPE_CHECKING:
    from studio.core.inference.registry import ModelRegistry

Log = Callable[[str], None]

#: Quantisation kinds offered by ``studio-train export`` (f16 is the converter's own output).
QUANT_KINDS = ("f16", "q8_0", "q4_k_m")

#: Written into every trained adapter or model folder by the trainer; read back for lineage.
PROVENANCE_FILE = "studio-train.json"


def _no_log(_message: str) -> None:
    return None


def is_hf_folder(path: Path) -> bool:
    return path.is_dir() and (path / "config.json").is_file()


def is_adapter_folder(path: Path) -> bool:
    return path.is_dir() and (path / "adapter_config.json").is_file()


def base_cache_dir(gguf_sha256: str) -> Path:
    return app_home() / "trainer" / "base" / gguf_sha256[:16]


def hf_base_from_gguf(gguf_path: Path, *, sdist: Path | None = None, log: Log = _no_log) -> Path:
    """A plain, trainable Hugging Face copy of the model in ``gguf_path`` (cached by the file's sha256)."""
    if not gguf_path.is_file():
        raise InputError(gguf_path, "base model file not found")
    digest = sha256_file(gguf_path)
    target = base_cache_dir(digest)
    if is_hf_folder(target):
        return target
    converter = ensure_converter(sdist, log)
    import_gguf_py(converter)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import import_utils

    import_utils.is_gguf_available.cache_clear()
    log(f"dequantising {gguf_path.name} into a trainable model")
    try:
        with _gguf_parsed_once():
            tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
            loaded = AutoModelForCausalLM.from_pretrained(
                str(gguf_path.parent), gguf_file=gguf_path.name, dtype=torch.float32
            )
    except (ValueError, KeyError, RuntimeError, OSError) as exc:
        raise InputError(gguf_path, f"transformers cannot read this GGUF ({exc})") from exc
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)  # type: ignore[no-untyped-call]
    result = plain.load_state_dict(loaded.state_dict(), strict=False)
    missing = [k for k in result.missing_keys if not k.endswith("lm_head.weight")]
    if missing or result.unexpected_keys:
        raise BackendError(f"{gguf_path}: weights do not match the rebuilt model ({missing or result.unexpected_keys})")
    plain.tie_weights()
    with staged_dir(target) as staged:
        plain.save_pretrained(str(staged))
        tokenizer.save_pretrained(str(staged))
        write_json(staged / PROVENANCE_FILE, {"base_gguf": str(gguf_path), "base_sha256": digest})
    return target


@contextlib.contextmanager
def _gguf_parsed_once() -> Iterator[None]:
    """While transformers loads one GGUF: parse the file once and build each tensor-name map once.

    transformers reads the file's header three times (tokenizer, config, weights), each a walk through every
    vocabulary entry, and builds gguf-py's name map afresh for every module of the model; both are read-only, so
    one copy serves every call. Undone on exit.
    """
    import gguf

    real_reader, real_map = gguf.GGUFReader, gguf.get_tensor_name_map
    readers: dict[tuple[str, str], Any] = {}
    maps: dict[tuple[Any, int], Any] = {}

    def reader(path: str | Path, mode: str = "r") -> Any:
        key = (str(Path(path).resolve()), mode)
        if key not in readers:
            readers[key] = real_reader(path, mode)
        return readers[key]

    def name_map(arch: Any, n_blocks: int) -> Any:
        if (arch, n_blocks) not in maps:
            maps[arch, n_blocks] = real_map(arch, n_blocks)
        return maps[arch, n_blocks]

    gguf.GGUFReader, gguf.get_tensor_name_map = reader, name_map
    try:
        yield
    finally:
        gguf.GGUFReader, gguf.get_tensor_name_map = real_reader, real_map


def resolve_base(base: Path, *, sdist: Path | None = None, log: Log = _no_log) -> Path:
    """A Hugging Face folder for ``base``: itself when it is one, else the dequantised copy of a GGUF file."""
    if is_hf_folder(base):
        return base
    if base.is_file() and base.suffix.lower() == ".gguf":
        return hf_base_from_gguf(base, sdist=sdist, log=log)
    raise InputError(base, "not a GGUF file or a Hugging Face model folder (config.json missing)")


def merge_adapter(base_dir: Path, adapter_dir: Path, out_dir: Path, *, log: Log = _no_log) -> Path:
    """Fold the LoRA adapter into its base and save the merged model (safetensors) with the base tokenizer."""
    if not is_adapter_folder(adapter_dir):
        raise InputError(adapter_dir, "not a LoRA adapter folder (adapter_config.json missing)")
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log(f"merging {adapter_dir} into {base_dir}")
    model = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32)
    merged = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
    with staged_dir(out_dir) as staged:
        merged.save_pretrained(str(staged))
        tokenizer.save_pretrained(str(staged))
    return out_dir


def convert_to_gguf(
    hf_dir: Path,
    out_path: Path,
    *,
    outtype: str = "f16",
    model_name: str | None = None,
    sdist: Path | None = None,
    log: Log = _no_log,
) -> Path:
    """Convert a Hugging Face folder to a GGUF file with llama.cpp's converter."""
    converter = ensure_converter(sdist, log)
    args = [str(hf_dir), "--outtype", outtype, "--model-name", model_name or out_path.stem, "--outfile"]
    with staged_file(out_path) as staged:
        run_converter(converter, "convert_hf_to_gguf.py", [*args, str(staged)], log)
    return out_path


def convert_adapter_to_gguf(
    adapter_dir: Path, base_dir: Path, out_path: Path, *, sdist: Path | None = None, log: Log = _no_log
) -> Path:
    """Convert a LoRA adapter to a GGUF adapter, loadable with llama.cpp's ``lora_path``."""
    if not is_adapter_folder(adapter_dir):
        raise InputError(adapter_dir, "not a LoRA adapter folder (adapter_config.json missing)")
    converter = ensure_converter(sdist, log)
    args = [str(adapter_dir), "--base", str(base_dir), "--outfile"]
    with staged_file(out_path) as staged:
        run_converter(converter, "convert_lora_to_gguf.py", [*args, str(staged), "--outtype", "f16"], log)
    return out_path


def quantize_gguf(source: Path, out_path: Path, kind: str, *, threads: int = 2) -> Path:
    """Quantise a GGUF file (f16 or f32) with llama.cpp's quantiser."""
    import llama_cpp

    ftypes = {"q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0, "q4_k_m": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M}
    if kind not in ftypes:
        raise InputError(None, f"unknown quantisation {kind!r} (choose {', '.join(ftypes)})", where="--quant")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftypes[kind]
    params.nthread = threads
    with staged_file(out_path) as staged:
        code = llama_cpp.llama_model_quantize(str(source).encode(), str(staged).encode(), ctypes.byref(params))
        if code != 0:
            raise BackendError(f"{source}: llama.cpp quantisation to {kind} failed (code {code})")
    return out_path


@dataclass
class ExportResult:
    files: dict[str, Path]
    lineage: dict[str, Any]
    registered: list[str] = field(default_factory=list)


def read_provenance(folder: Path) -> dict[str, Any]:
    path = folder / PROVENANCE_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(path, f"unreadable provenance record ({exc.msg})", line=exc.lineno) from exc
    return data if isinstance(data, dict) else {}


def export_model(
    trained: Path,
    out_dir: Path,
    *,
    name: str,
    base: Path | None = None,
    quants: tuple[str, ...] = ("f16", "q8_0"),
    adapter_gguf: bool = False,
    registry: ModelRegistry | None = None,
    sdist: Path | None = None,
    log: Log = _no_log,
) -> ExportResult:
    """Turn a trained LoRA adapter (or a full model folder) into GGUF files under ``out_dir``.

    ``base`` (GGUF or HF folder) is needed for an adapter unless its provenance record names one. Given a
    ``registry``, the GGUF files are registered in it.
    """
    for kind in quants:
        if kind not in QUANT_KINDS:
            raise InputError(None, f"unknown quantisation {kind!r} (choose {', '.join(QUANT_KINDS)})", where="--quant")
    provenance = read_provenance(trained)
    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    base_dir: Path | None = None
    if is_adapter_folder(trained):
        base_ref = base or (Path(provenance["base"]) if provenance.get("base") else None)
        if base_ref is None:
            raise InputError(trained, "adapter has no recorded base model; pass --base")
        base_dir = resolve_base(base_ref, sdist=sdist, log=log)
        with tempfile.TemporaryDirectory(prefix="merged-", dir=out_dir) as tmp:
            merged = merge_adapter(base_dir, trained, Path(tmp) / "merged", log=log)
            files.update(_convert_all(merged, out_dir, name, quants, sdist, log))
        if adapter_gguf:
            files["lora"] = convert_adapter_to_gguf(
                trained, base_dir, out_dir / f"{name}.lora-f16.gguf", sdist=sdist, log=log
            )
    elif is_hf_folder(trained):
        files.update(_convert_all(trained, out_dir, name, quants, sdist, log))
    else:
        raise InputError(trained, "not a LoRA adapter or Hugging Face model folder")
    lineage = {
        "name": name,
        "exported_utc": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "studio_version": __version__,
        "trained_from": str(trained),
        "base": provenance.get("base") or (str(base) if base else None),
        "base_gguf": provenance.get("base_gguf"),
        "base_sha256": provenance.get("base_sha256"),
        "data_sha256": provenance.get("data_sha256"),
        "job": provenance.get("job"),
        "stage": provenance.get("stage"),
        "files": {kind: {"path": str(p), "sha256": sha256_file(p)} for kind, p in files.items()},
    }
    for kind, path in files.items():
        write_json(path.with_name(path.name + ".lineage.json"), {**lineage, "this_file": kind})
    result = ExportResult(files=files, lineage=lineage)
    if registry is not None:
        result.registered = _register(registry, files, name, lineage)
    return result


def _convert_all(
    hf_dir: Path, out_dir: Path, name: str, quants: tuple[str, ...], sdist: Path | None, log: Log
) -> dict[str, Path]:
    files: dict[str, Path] = {}
    f16 = convert_to_gguf(hf_dir, out_dir / f"{name}.f16.gguf", model_name=name, sdist=sdist, log=log)
    for kind in quants:
        if kind != "f16":
            log(f"quantising to {kind}")
            files[kind] = quantize_gguf(f16, out_dir / f"{name}.{kind}.gguf", kind)
    if "f16" in quants:
        files["f16"] = f16
    else:
        f16.unlink()
    return files


def _register(registry: ModelRegistry, files: dict[str, Path], name: str, lineage: dict[str, Any]) -> list[str]:
    """Add the exported GGUF files to the model registry; returns the registered names."""
    names: list[str] = []
    for kind, path in files.items():
        if kind == "lora":
            continue
        entry_name = f"{name}-{kind}"
        registry.add(path, source=f"studio-train:{lineage.get('stage') or 'export'}", name=entry_name)
        names.append(entry_name)
    return names


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as indented JSON through a temporary file (nothing half-written on a crash)."""
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
