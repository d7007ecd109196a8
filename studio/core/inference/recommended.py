"""Recommended models (data in ``resources/models/recommended.yaml``) and whether each one fits this machine.

The list is data so that it can be corrected without touching code; this module validates it strictly and turns
its facts into the two numbers a user needs per quantisation: disk space to get the model, and memory to run it.
The verdict compares them with this machine: physical RAM, the free space of the model store's file system, and
the memory of an accelerator when the installed llama.cpp reports one.

A safetensors source is converted here, so getting it takes more disk than the result: the download and the f16
intermediate exist side by side during conversion, then the download is deleted before quantising.
"""

from __future__ import annotations

import ctypes
import shutil
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from studio.core.errors import StateError
from studio.core.paths import models_dir, resource
from studio.core.yamlio import load_document

RECOMMENDED_FORMAT = "cosa-studio/recommended-models/v1"
QUANTS = ("q4_k_m", "q8_0")
#: Bytes per parameter of the f16 GGUF written by the converter.
F16_BYTES_PER_PARAM = 2
#: Memory above this share of physical RAM leaves too little for the rest of the machine: "tight".
COMFORTABLE_RAM_SHARE = 0.75
#: Free disk kept in reserve after a download or conversion, so the file system is never filled to the brim.
DISK_RESERVE_BYTES = 1_000_000_000


class QuantFacts(BaseModel):
    model_config = ConfigDict(extra="forbid")

    file_bytes: int = Field(gt=0, description="Size of the GGUF file in this quantisation.")


class RecommendedModel(BaseModel):
    """One recommended model and its published facts."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    title: str = Field(min_length=1)
    repo: str = Field(pattern=r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
    source: Literal["gguf", "safetensors"]
    parameters_b: float = Field(gt=0, description="Parameters, in billions.")
    uses: list[Literal["candidate", "judge"]] = Field(min_length=1)
    summary: str = Field(min_length=1)
    download_bytes: int | None = Field(default=None, gt=0, description="Safetensors weights to download.")
    kv_bytes_per_token: int = Field(gt=0, description="KV cache bytes per token of context (f16 cache).")
    quants: dict[str, QuantFacts] = Field(min_length=1)

    @model_validator(mode="after")
    def _download_size_for_conversion(self) -> RecommendedModel:
        unknown = sorted(set(self.quants) - set(QUANTS))
        if unknown:
            raise ValueError(f"unknown quantisation {unknown[0]!r} (choose {', '.join(QUANTS)})")
        if self.source == "safetensors" and self.download_bytes is None:
            raise ValueError("a safetensors model needs download_bytes")
        return self

    @property
    def f16_bytes(self) -> int:
        return int(self.parameters_b * 1e9 * F16_BYTES_PER_PARAM)


class RecommendedList(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: Literal["cosa-studio/recommended-models/v1"]
    context_tokens: int = Field(gt=0, description="Context the memory figures assume.")
    overhead_bytes: int = Field(ge=0, description="Compute buffers and runtime, on top of weights and KV cache.")
    models: list[RecommendedModel] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> RecommendedList:
        ids = [m.id for m in self.models]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate model id {duplicates[0]!r}")
        return self

    def get(self, key: str) -> RecommendedModel | None:
        """The model with this id or Hub repository (case-insensitive), if listed."""
        folded = key.casefold()
        return next((m for m in self.models if folded in (m.id.casefold(), m.repo.casefold())), None)


def load_recommended(path: Path | None = None) -> RecommendedList:
    return load_document(path or resource("models", "recommended.yaml"), RecommendedList)


@dataclass(frozen=True)
class Accelerator:
    name: str
    free_bytes: int
    total_bytes: int


@dataclass(frozen=True)
class Machine:
    """What this machine offers a model: RAM, free disk where models go, and accelerators llama.cpp reports."""

    ram_total_bytes: int
    ram_available_bytes: int
    disk_free_bytes: int
    accelerators: tuple[Accelerator, ...] = ()

    @property
    def gpu_free_bytes(self) -> int:
        return max((a.free_bytes for a in self.accelerators), default=0)


def _ram() -> tuple[int, int]:
    import psutil

    memory = psutil.virtual_memory()
    return int(memory.total), int(memory.available)


def llama_accelerators() -> tuple[Accelerator, ...]:
    """GPUs the installed llama.cpp can use, with their memory (none for a CPU-only build).

    llama-cpp-python does not bind ggml's device registry, so the three functions are called on the ggml library
    it ships; any failure means "no accelerator known".
    """
    try:
        import llama_cpp
        from llama_cpp import _ggml

        if not llama_cpp.llama_supports_gpu_offload():
            return ()
        lib = _ggml.libggml
        lib.ggml_backend_dev_count.restype = ctypes.c_size_t
        lib.ggml_backend_dev_get.restype = ctypes.c_void_p
        lib.ggml_backend_dev_get.argtypes = [ctypes.c_size_t]
        lib.ggml_backend_dev_type.restype = ctypes.c_int
        lib.ggml_backend_dev_type.argtypes = [ctypes.c_void_p]
        lib.ggml_backend_dev_name.restype = ctypes.c_char_p
        lib.ggml_backend_dev_name.argtypes = [ctypes.c_void_p]
        size_p = ctypes.POINTER(ctypes.c_size_t)
        lib.ggml_backend_dev_memory.argtypes = [ctypes.c_void_p, size_p, size_p]
        found = []
        for index in range(lib.ggml_backend_dev_count()):
            device = lib.ggml_backend_dev_get(index)
            if lib.ggml_backend_dev_type(device) == 0:  # GGML_BACKEND_DEVICE_TYPE_CPU
                continue
            free, total = ctypes.c_size_t(), ctypes.c_size_t()
            lib.ggml_backend_dev_memory(device, ctypes.byref(free), ctypes.byref(total))
            name = (lib.ggml_backend_dev_name(device) or b"gpu").decode("utf-8", errors="replace")
            found.append(Accelerator(name, int(free.value), int(total.value)))
        return tuple(found)
    except (ImportError, OSError, AttributeError):
        return ()


def free_disk(folder: Path) -> int:
    """Free bytes on the file system that holds ``folder`` (or would hold it, once created)."""
    path = folder.resolve()
    while not path.exists() and path != path.parent:
        path = path.parent
    return int(shutil.disk_usage(path).free)


def require_disk(folder: Path, needed: int, step: str) -> None:
    """Refuse a step whose output would not fit, before it writes anything."""
    free = free_disk(folder)
    if needed + DISK_RESERVE_BYTES > free:
        raise StateError(
            f"not enough free disk in {folder} for {step}: needs about {gb(needed)} plus {gb(DISK_RESERVE_BYTES)} "
            f"to spare, {gb(free)} free; free some space or choose another --out folder"
        )


def this_machine(store: Path | None = None) -> Machine:
    total, available = _ram()
    return Machine(total, available, free_disk(store or models_dir()), llama_accelerators())


class Verdict(StrEnum):
    FITS = "fits"
    TIGHT = "tight"
    TOO_BIG = "too big"


@dataclass(frozen=True)
class Fit:
    """The verdict for one model in one quantisation on one machine, with the figures behind it."""

    model: RecommendedModel
    quant: str
    file_bytes: int
    disk_bytes: int
    memory_bytes: int
    verdict: Verdict
    reason: str


def memory_needed(model: RecommendedModel, quant: str, listing: RecommendedList) -> int:
    kv_cache = model.kv_bytes_per_token * listing.context_tokens
    return model.quants[quant].file_bytes + kv_cache + listing.overhead_bytes


def disk_needed(model: RecommendedModel, quant: str) -> int:
    """Peak disk use while getting the model: the file itself, or for a conversion the larger of download + f16
    (converting) and f16 + result (quantising, after the download is deleted)."""
    result = model.quants[quant].file_bytes
    if model.source == "gguf":
        return result
    assert model.download_bytes is not None
    return max(model.download_bytes + model.f16_bytes, model.f16_bytes + result)


def gb(num_bytes: int) -> str:
    return f"{num_bytes / 1e9:.1f} GB"


def assess(model: RecommendedModel, quant: str, listing: RecommendedList, machine: Machine) -> Fit:
    """Fits: enough disk, and the model runs in an accelerator's free memory or in at most three quarters of RAM.
    Tight: it needs more than that share of RAM but no more than what is available now. Too big: otherwise."""
    memory = memory_needed(model, quant, listing)
    disk = disk_needed(model, quant)
    file_bytes = model.quants[quant].file_bytes
    figures = f"needs {gb(memory)} memory and {gb(disk)} disk"
    if disk + DISK_RESERVE_BYTES > machine.disk_free_bytes:
        verdict, why = Verdict.TOO_BIG, f"only {gb(machine.disk_free_bytes)} free disk"
    elif machine.gpu_free_bytes >= memory:
        verdict, why = Verdict.FITS, f"fits the accelerator's {gb(machine.gpu_free_bytes)} free memory"
    elif memory <= COMFORTABLE_RAM_SHARE * machine.ram_total_bytes and memory <= machine.ram_available_bytes:
        verdict, why = Verdict.FITS, f"{gb(machine.ram_total_bytes)} RAM"
    elif memory <= machine.ram_available_bytes:
        verdict, why = Verdict.TIGHT, f"uses most of the {gb(machine.ram_total_bytes)} RAM"
    elif memory <= machine.ram_total_bytes:
        verdict, why = Verdict.TIGHT, f"only {gb(machine.ram_available_bytes)} RAM available now; close other apps"
    else:
        verdict, why = Verdict.TOO_BIG, f"only {gb(machine.ram_total_bytes)} RAM"
    return Fit(model, quant, file_bytes, disk, memory, verdict, f"{figures}; {why}")


def assess_all(listing: RecommendedList, machine: Machine) -> list[Fit]:
    return [assess(model, quant, listing, machine) for model in listing.models for quant in model.quants]
