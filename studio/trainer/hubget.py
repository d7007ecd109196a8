"""A safetensors model on the Hugging Face Hub made into a registered local GGUF: download, convert, quantise,
probe, register.

Every step checks the free disk it needs first and writes under a temporary name, so an interrupted run leaves
either nothing or a finished file; the next run resumes: a partial download continues from its ``.part`` file, a
finished f16 or quantised file whose recorded source matches the same commit is reused, anything else is redone.
The model is registered only after it has loaded and answered a probe, with a lineage record beside it (the
repository, the commit, the hash of every source file, the converter version and the quantisation).
"""

from __future__ import annotations

import json
import re
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from studio import __version__
from studio.core.errors import BackendError, InputError, StateError
from studio.core.inference.embedded import sha256_file
from studio.core.inference.hub import HubFile, download_files, list_files, resolve_commit
from studio.core.inference.recommended import require_disk
from studio.core.inference.registry import ModelRegistry
from studio.core.paths import app_home, models_dir
from studio.trainer.converter import LLAMA_CPP_PYTHON_VERSION, ensure_converter, gguf_py_path, gguf_py_version
from studio.trainer.export import convert_to_gguf, quantize_gguf, write_json
from studio.trainer.progress import Progress

#: Files of a model repository the converter reads: configuration, tokenizer, chat template, weights.
_NEEDED = re.compile(
    r"^(config\.json|generation_config\.json|tokenizer\.json|tokenizer_config\.json|tokenizer\.model|"
    r"special_tokens_map\.json|added_tokens\.json|vocab\.json|merges\.txt|chat_template\.(jinja|json)|"
    r"model\.safetensors\.index\.json|[^/]+\.safetensors)$"
)
#: Size of a quantised file relative to the f16 one (bits per weight / 16, rounded up a little).
QUANT_RATIO = {"q8_0": 0.55, "q4_k_m": 0.32}
PROBE_PROMPT = "Name the capital of France in one word."


@dataclass(frozen=True)
class GetPlan:
    """What a run will work with: the files of one commit, and where each product goes."""

    repo: str
    commit: str
    files: list[HubFile]
    name: str
    quant: str
    download_dir: Path
    f16_path: Path
    result_path: Path

    @property
    def weights_bytes(self) -> int:
        return sum(f.size for f in self.files if f.path.endswith(".safetensors"))


def default_name(repo: str) -> str:
    return repo.rsplit("/", 1)[-1].lower()


def plan_get(
    repo: str,
    *,
    quant: str,
    revision: str = "main",
    name: str | None = None,
    out_dir: Path | None = None,
    token: str | None = None,
) -> GetPlan:
    """List the repository, pick the files the converter needs and pin them to one commit."""
    if quant not in QUANT_RATIO:
        raise InputError(None, f"unknown quantisation {quant!r} (choose {', '.join(QUANT_RATIO)})", where="--quant")
    listing = list_files(repo, revision, token=token)
    files = [f for f in listing if _NEEDED.match(f.path)]
    if not any(f.path.endswith(".safetensors") for f in files):
        ggufs = [f.path for f in listing if f.path.lower().endswith(".gguf")]
        hint = " it publishes GGUF files: download one with `studio models get`" if ggufs else ""
        raise InputError(repo, f"no .safetensors weights in this Hub repository;{hint or ' nothing to convert'}")
    if not any(f.path == "config.json" for f in files):
        raise InputError(repo, "no config.json in this Hub repository; not a transformers model")
    commit = resolve_commit(repo, "config.json", revision, token=token)
    base = name or default_name(repo)
    out = out_dir or models_dir()
    download_dir = app_home() / "downloads" / repo.replace("/", "--") / commit
    return GetPlan(
        repo, commit, files, base, quant, download_dir, out / f"{base}.f16.gguf", out / f"{base}.{quant}.gguf"
    )


def _f16_estimate(plan: GetPlan) -> int:
    """The f16 file is about as large as 16-bit weights, half as large as 32-bit ones."""
    config = json.loads((plan.download_dir / "config.json").read_text(encoding="utf-8"))
    dtype = str(config.get("torch_dtype") or config.get("dtype") or "bfloat16")
    return plan.weights_bytes // 2 if dtype == "float32" else plan.weights_bytes


def source_hashes(plan: GetPlan) -> dict[str, str]:
    """sha256 of every source file: the Hub's LFS oid (checked on download) or computed for small files."""
    return {f.path: f.sha256 or sha256_file(plan.download_dir / f.path) for f in plan.files}


def _key(plan: GetPlan, kind: str) -> dict[str, str]:
    """What a product is made from: a commit pins every file, so repository, commit and kind identify it."""
    return {"repo": plan.repo, "commit": plan.commit, "kind": kind}


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".source.json")


def _finished_record(path: Path, key: dict[str, str]) -> dict[str, Any] | None:
    """The source record of a product an earlier run finished from the same source, else None."""
    sidecar = _sidecar(path)
    if not (path.is_file() and sidecar.is_file()):
        return None
    try:
        record = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(record, dict) or any(record.get(k) != v for k, v in key.items()):
        return None
    return record


def _forget(path: Path) -> None:
    for stale in (path, _sidecar(path), path.with_name(f".{path.name}.part")):
        stale.unlink(missing_ok=True)


def converter_version(converter: Path) -> dict[str, str]:
    return {"llama_cpp_python": LLAMA_CPP_PYTHON_VERSION, "gguf_py": gguf_py_version(gguf_py_path(converter))}


def probe_model(path: Path, *, threads: int = 2) -> str:
    """Load the model with llama.cpp and ask one question; the answer must not be empty."""
    from studio.core.inference.base import GenerationParams, Message, complete
    from studio.core.inference.llama_backend import LlamaCppBackend, LlamaSettings

    backend = LlamaCppBackend(path, LlamaSettings(max_context=512, n_threads=threads), name=path.stem)
    try:
        params = GenerationParams(temperature=0.0, max_tokens=16, seed=0)
        answer = complete(backend, [Message("user", PROBE_PROMPT)], params).text.strip()
    finally:
        backend.close()
    if not answer:
        raise BackendError(f"{path}: the converted model loaded but gave an empty answer to a probe; not registered")
    return answer


class _ByteProgress:
    """Download progress as ``progress`` events, at most a few per second and always the last one."""

    def __init__(self, progress: Progress, interval_s: float = 0.25) -> None:
        self.progress = progress
        self.interval_s = interval_s
        self._last = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self._last < self.interval_s:
            return
        self._last = now
        self.progress.progress("download", done, total)


def _download(plan: GetPlan, progress: Progress, token: str | None) -> None:
    present = sum(
        (plan.download_dir / f.path).stat().st_size
        for f in plan.files
        if (plan.download_dir / f.path).is_file() and (plan.download_dir / f.path).stat().st_size == f.size
    )
    require_disk(plan.download_dir.parent, sum(f.size for f in plan.files) - present, f"downloading {plan.repo}")
    progress.log(f"downloading {len(plan.files)} files of {plan.repo} at commit {plan.commit[:12]}")
    download_files(plan.repo, plan.files, plan.download_dir, _ByteProgress(progress), revision=plan.commit, token=token)


def _make_f16(plan: GetPlan, progress: Progress, *, keep_download: bool, sdist: Path | None, token: str | None) -> Any:
    key = _key(plan, "f16")
    record = _finished_record(plan.f16_path, key)
    if record is not None:
        progress.log(f"reusing {plan.f16_path} from an earlier run")
        return record
    _forget(plan.f16_path)
    _download(plan, progress, token)
    hashes = source_hashes(plan)
    require_disk(plan.f16_path.parent, _f16_estimate(plan), "converting to f16")
    progress.emit("progress", stage="convert", done=0, total=1, eta_s=None)
    convert_to_gguf(plan.download_dir, plan.f16_path, model_name=plan.name, sdist=sdist, log=progress.log)
    record = {**key, "files": hashes}
    write_json(_sidecar(plan.f16_path), record)
    progress.emit("progress", stage="convert", done=1, total=1, eta_s=0.0)
    if not keep_download:
        shutil.rmtree(plan.download_dir, ignore_errors=True)
    return record


def _make_quant(plan: GetPlan, progress: Progress, f16_record: dict[str, Any], threads: int) -> None:
    require_disk(
        plan.result_path.parent,
        int(plan.f16_path.stat().st_size * QUANT_RATIO[plan.quant]),
        f"quantising to {plan.quant}",
    )
    progress.emit("progress", stage="quantize", done=0, total=1, eta_s=None)
    quantize_gguf(plan.f16_path, plan.result_path, plan.quant, threads=threads)
    write_json(_sidecar(plan.result_path), {**_key(plan, plan.quant), "files": f16_record["files"]})
    progress.emit("progress", stage="quantize", done=1, total=1, eta_s=0.0)


def _registered_name(path: Path, registry: ModelRegistry) -> str | None:
    entry = registry.find_by_path(path) if path.exists() else None
    return entry.name if entry else None


def _register(plan: GetPlan, registry: ModelRegistry) -> str:
    existing = registry.find_by_path(plan.result_path)
    if existing is not None:
        return existing.name
    source = f"hub:{plan.repo}@{plan.commit[:12]} ({plan.quant})"
    return registry.add(plan.result_path, source=source, name=registry_name(plan, registry)).name


def registry_name(plan: GetPlan, registry: ModelRegistry) -> str:
    """``<name>-<quant>``, numbered when another model already has that name."""
    wanted = candidate = f"{plan.name}-{plan.quant}"
    number = 2
    while any(entry.name == candidate for entry in registry.list()):
        candidate = f"{wanted}-{number}"
        number += 1
    return candidate


def get_model(
    plan: GetPlan,
    progress: Progress,
    registry: ModelRegistry,
    *,
    keep_f16: bool = False,
    keep_download: bool = False,
    register: bool = True,
    sdist: Path | None = None,
    token: str | None = None,
    threads: int = 2,
) -> dict[str, Any]:
    """Run every step of ``plan`` that an earlier run has not finished; returns the lineage record.

    ``registry`` is asked whether the result file already belongs to another model, and (with ``register``) the
    result is registered in it.
    """
    plan.result_path.parent.mkdir(parents=True, exist_ok=True)
    converter = ensure_converter(sdist, progress.log)
    record = _finished_record(plan.result_path, _key(plan, plan.quant))
    if record is None:
        holder = _registered_name(plan.result_path, registry)
        if holder is not None:
            raise StateError(
                f"{plan.result_path} is registered as {holder!r} but was not made from {plan.repo} at "
                f"{plan.commit[:12]}; remove it first or choose another --name"
            )
        _forget(plan.result_path)
        record = _make_f16(plan, progress, keep_download=keep_download, sdist=sdist, token=token)
        _make_quant(plan, progress, record, threads)
    else:
        progress.log(f"reusing {plan.result_path} from an earlier run")
    progress.emit("progress", stage="probe", done=0, total=1, eta_s=None)
    answer = probe_model(plan.result_path, threads=threads)
    progress.emit("progress", stage="probe", done=1, total=1, eta_s=0.0)
    progress.log(f"probe answered: {answer!r}")
    lineage = {
        "repo": plan.repo,
        "commit": plan.commit,
        "source_files": record["files"],
        "converter": converter_version(converter),
        "quantization": plan.quant,
        "file": str(plan.result_path),
        "sha256": sha256_file(plan.result_path),
        "studio_version": __version__,
        "converted_utc": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "probe": {"prompt": PROBE_PROMPT, "answer": answer},
    }
    write_json(plan.result_path.with_name(plan.result_path.name + ".lineage.json"), lineage)
    registered = _register(plan, registry) if register else None
    if not keep_f16:
        _forget(plan.f16_path)
    kept = str(plan.f16_path) if keep_f16 and plan.f16_path.is_file() else None
    return {**lineage, "registered": registered, "f16": kept}
