"""Training job specs: defaults < YAML file < command-line flags.

The defaults follow the CoSAlign recipe (SFT on chosen replies, then DPO with beta 0.1, warm-up 150 steps,
effective batch 32, 3 epochs) adapted to a small model trained with LoRA: the learning rate is 5e-5, because 2e-4
wrecks a 135M model within a few dozen steps. A full fine-tune uses the paper's 5e-7 unless the spec says otherwise.
"""

from __future__ import annotations

import argparse
import types
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from studio.core.errors import InputError, validation_problem
from studio.core.yamlio import load_document

LORA_LEARNING_RATE = 5e-5
FULL_LEARNING_RATE = 5e-7


class JobSpec(BaseModel):
    """One SFT or DPO job."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["cosa-studio/train-job/v1"] = "cosa-studio/train-job/v1"
    base: str | None = Field(default=None, description="GGUF file, HF model folder, or an earlier studio-train output.")
    data: str | None = Field(default=None, description="Pairs JSONL from synthesize or import.")
    output: str | None = Field(default=None, description="Folder for checkpoints and the trained model.")
    method: Literal["lora", "full"] = Field(default="lora", description="LoRA adapter or full fine-tune.")
    learning_rate: float | None = Field(default=None, gt=0, description="Defaults by method: LoRA 5e-5, full 5e-7.")
    epochs: float = Field(default=3.0, gt=0, description="Training epochs.")
    max_steps: int = Field(default=-1, description="Stop after this many optimiser steps (-1: run all epochs).")
    batch_size: int = Field(default=8, ge=1, description="Per-device batch size.")
    grad_accum: int = Field(default=4, ge=1, description="Effective batch = batch_size x grad_accum (paper: 32).")
    warmup_steps: int = Field(default=150, ge=0, description="Capped at a tenth of the run's steps.")
    beta: float = Field(default=0.1, gt=0, description="DPO beta.")
    lora_r: int = Field(default=16, ge=1, description="LoRA rank.")
    lora_alpha: int = Field(default=32, ge=1, description="LoRA alpha.")
    lora_dropout: float = Field(default=0.05, ge=0, lt=1, description="LoRA dropout.")
    lora_targets: str = Field(default="all-linear", description="PEFT target_modules; comma list or all-linear.")
    max_length: int = Field(default=1024, ge=32, description="Prompt plus response, in tokens.")
    max_prompt_length: int = Field(default=768, ge=16, description="Longer prompts drop the example (never cut).")
    seed: int = Field(default=0, description="Random seed.")
    device: Literal["auto", "cpu", "cuda"] = Field(default="auto", description="auto: CUDA when torch sees it.")
    save_steps: int = Field(default=50, ge=1, description="Checkpoint every N steps.")
    save_total_limit: int = Field(default=2, ge=1, description="Checkpoints kept.")
    gradient_checkpointing: bool = Field(default=False, description="Recompute activations to save memory.")
    threads: int | None = Field(
        default=None,
        ge=1,
        description="Most CPU threads for torch (default: torch's own); fewer while other processes are busy.",
    )
    held_out: float = Field(
        default=0.0, ge=0, lt=1, description="Fraction of prompts kept out of training (written to held-out.jsonl)."
    )

    @model_validator(mode="after")
    def _lengths(self) -> JobSpec:
        if self.max_prompt_length >= self.max_length:
            raise ValueError("max_prompt_length must be smaller than max_length")
        return self

    @property
    def effective_learning_rate(self) -> float:
        if self.learning_rate is not None:
            return self.learning_rate
        return LORA_LEARNING_RATE if self.method == "lora" else FULL_LEARNING_RATE

    def record(self) -> dict[str, Any]:
        return {**self.model_dump(mode="json"), "effective_learning_rate": self.effective_learning_rate}


#: Fields set only in a job spec file, never by a flag.
_NOT_FLAGS = frozenset({"format"})


def job_flag_names() -> tuple[str, ...]:
    """The spec fields that ``studio-train sft`` and ``dpo`` also take as ``--flags``: all but the format tag."""
    return tuple(name for name in JobSpec.model_fields if name not in _NOT_FLAGS)


def add_job_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per spec field, its type, choices and help taken from the field, so flags and spec never drift.

    Every flag defaults to ``None`` (not given), so :func:`resolve_spec` can tell a flag from the spec file's value.
    """
    for name in job_flag_names():
        field = JobSpec.model_fields[name]
        flag = f"--{name.replace('_', '-')}"
        kind = _plain_type(field.annotation)
        help_text = (field.description or "").removesuffix(".")
        if field.default is not None:
            help_text = f"{help_text} (default {field.default})"
        if kind is bool:
            parser.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        elif get_origin(kind) is Literal:
            parser.add_argument(flag, dest=name, choices=list(get_args(kind)), default=None, help=help_text)
        else:
            parser.add_argument(flag, dest=name, type=kind, default=None, help=help_text)


def _plain_type(annotation: Any) -> Any:
    """``int`` for ``int | None`` and the like; other annotations unchanged."""
    if isinstance(annotation, types.UnionType):
        (kind,) = [arg for arg in get_args(annotation) if arg is not type(None)]
        return kind
    return annotation


def resolve_spec(yaml_path: Path | None, flags: dict[str, Any]) -> JobSpec:
    """Merge defaults, the YAML spec (if any) and the flags that were given (``None`` means not given)."""
    data: dict[str, Any] = {}
    if yaml_path is not None:
        data = load_document(yaml_path, JobSpec).model_dump(exclude_unset=True)
    data.update({key: value for key, value in flags.items() if value is not None})
    try:
        return JobSpec.model_validate(data)
    except ValidationError as exc:
        problem = validation_problem(exc)
        raise InputError(yaml_path or "<flags>", problem.detail, where=problem.where or None) from None


def require(spec: JobSpec, *names: str) -> None:
    for name in names:
        if getattr(spec, name) in (None, ""):
            raise InputError(None, f"{name} is required (give --{name.replace('_', '-')} or set it in the job spec)")
