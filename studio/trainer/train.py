"""``studio-train sft`` and ``studio-train dpo``: TRL trainers with PEFT LoRA (or a full fine-tune), CPU or CUDA.

Examples (:mod:`studio.trainer.examples`) are rendered with the model's own chat template, with the config in a
real system turn, exactly as the studio sends them at inference; an example too long for the limits is dropped and
counted.

Output layout: ``<output>/model`` (the adapter or full model, its tokenizer and ``studio-train.json``),
``<output>/checkpoints`` (resumable trainer checkpoints), ``<output>/held-out.jsonl`` when pairs were held out.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from studio import __version__
from studio.core.errors import InputError
from studio.core.fileio import staged_dir
from studio.core.inference.embedded import sha256_file
from studio.trainer.examples import (
    Example,
    examples_from_rows,
    fit_example,
    load_pairs,
    prompt_messages,
    sft_examples,
    split_held_out,
)
from studio.trainer.export import (
    PROVENANCE_FILE,
    is_adapter_folder,
    is_hf_folder,
    merge_adapter,
    read_provenance,
    resolve_base,
    write_json,
)
from studio.trainer.jobspec import JobSpec
from studio.trainer.progress import Progress
from studio.trainer.synthesize import write_jsonl


def _resolve_training_base(spec: JobSpec, output: Path, progress: Progress) -> tuple[Path, dict[str, Any]]:
    """The HF folder to train from, and the lineage it carries (original GGUF, earlier stages)."""
    assert spec.base is not None
    base = Path(spec.base).expanduser()
    earlier = base / "model" if (base / "model").is_dir() else base
    if is_adapter_folder(earlier):
        parent = read_provenance(earlier)
        parent_base = parent.get("base")
        if not parent_base:
            raise InputError(earlier, "adapter has no recorded base model")
        merged = output / "base-merged"
        if not is_hf_folder(merged):
            progress.log(f"merging the earlier adapter {earlier} into its base")
            merge_adapter(Path(parent_base), earlier, merged)
        return merged, {
            "base_gguf": parent.get("base_gguf"),
            "base_sha256": parent.get("base_sha256"),
            "parent": parent,
        }
    if is_hf_folder(earlier):
        parent = read_provenance(earlier)
        return earlier, {
            "base_gguf": parent.get("base_gguf"),
            "base_sha256": parent.get("base_sha256"),
            "parent": parent,
        }
    if not base.exists() and len(spec.base.split("/")) == 2:
        # A Hugging Face Hub id such as meta-llama/Llama-3.1-8B-Instruct: transformers fetches it.
        return Path(spec.base), {"base_gguf": None, "base_sha256": None, "hub_id": spec.base}
    hf_dir = resolve_base(base, log=progress.log)
    return hf_dir, {"base_gguf": str(base), "base_sha256": read_provenance(hf_dir).get("base_sha256")}


def _device(spec: JobSpec) -> str:
    import torch

    if spec.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if spec.device == "cuda" and not torch.cuda.is_available():
        raise InputError(None, "device cuda requested but torch sees no CUDA device", where="--device")
    return spec.device


def run_training(stage: str, spec: JobSpec, progress: Progress) -> dict[str, Any]:
    """Run one SFT or DPO job; returns the summary also emitted as the ``done`` event."""
    assert spec.data is not None and spec.output is not None
    data_path = Path(spec.data).expanduser()
    output = Path(spec.output).expanduser()
    output.mkdir(parents=True, exist_ok=True)
    train_rows, held_rows = _split_data(data_path, output, spec)
    base_dir, lineage = _resolve_training_base(spec, output, progress)

    device = _device(spec)
    threads = _TorchThreads(spec.threads) if device == "cpu" else None
    tokenizer = _load_tokenizer(base_dir)
    fitted, dropped = _fitted_examples(stage, train_rows, tokenizer, spec, progress)
    if not fitted:
        raise InputError(data_path, "no example fits the length limits")
    records = _dataset_records(stage, fitted)
    total_steps, warmup = _schedule(spec, len(fitted))
    model, bf16 = _load_model(base_dir, device)
    progress.emit(
        "start",
        command=stage,
        examples=len(fitted),
        dropped=dropped,
        held_out_pairs=len(held_rows),
        total=total_steps,
        device=device,
        method=spec.method,
        learning_rate=spec.effective_learning_rate,
        warmup_steps=warmup,
    )
    trainer = _make_trainer(
        stage,
        spec,
        model,
        tokenizer,
        records,
        _training_arguments(spec, output, device, bf16, warmup),
        progress,
        threads,
    )
    result = _train_or_resume(trainer, output, progress)
    provenance = {
        "stage": stage,
        "method": spec.method,
        "base": str(base_dir),
        "base_gguf": lineage.get("base_gguf"),
        "base_sha256": lineage.get("base_sha256"),
        "parent": lineage.get("parent"),
        "data": str(data_path),
        "data_sha256": sha256_file(data_path),
        "examples": len(fitted),
        "dropped": dropped,
        "held_out_pairs": len(held_rows),
        "job": spec.record(),
        "steps": int(result.global_step),
        "train_loss": float(result.training_loss),
        "device": device,
        "trained_utc": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "studio_version": __version__,
        "data_fingerprint": hashlib.sha256(json.dumps(records, sort_keys=True).encode()).hexdigest(),
    }
    if not trainer.is_world_process_zero():
        # Under `accelerate launch` only the first process writes the model; the others help gather it.
        trainer.save_model(str(output / "model-gather"))
        return {"command": stage, "rank": "worker"}
    with staged_dir(output / "model") as staged:
        trainer.save_model(str(staged))
        tokenizer.save_pretrained(str(staged))
        write_json(staged / PROVENANCE_FILE, provenance)
    summary = {
        "command": stage,
        "model": str(output / "model"),
        "steps": provenance["steps"],
        "train_loss": provenance["train_loss"],
        "examples": len(fitted),
        "dropped": dropped,
    }
    progress.emit("done", **summary)
    return summary


def _split_data(data_path: Path, output: Path, spec: JobSpec) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The pairs to train on and those held out; the held-out ones are written beside the run for evaluation."""
    train_rows, held_rows = split_held_out(load_pairs(data_path), spec.held_out, spec.seed)
    if held_rows:
        write_jsonl(output / "held-out.jsonl", held_rows)
    return train_rows, held_rows


def _load_tokenizer(base_dir: Path) -> Any:
    """The base model's tokenizer, with a pad token; a base without a chat template cannot carry a config."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not tokenizer.chat_template:
        raise InputError(base_dir, "the base model has no chat template; CoSAlign needs one with a system turn")
    return tokenizer


def _fitted_examples(
    stage: str, rows: Sequence[dict[str, Any]], tokenizer: Any, spec: JobSpec, progress: Progress
) -> tuple[list[Example], int]:
    """The stage's examples cut to the length limits, and how many were dropped because their prompt is too long."""
    examples = examples_from_rows(rows)
    if stage == "sft":
        examples = sft_examples(examples)
    fitted: list[Example] = []
    dropped = 0
    for example in examples:
        fit = fit_example(tokenizer, example, spec.max_length, spec.max_prompt_length)
        if fit is None:
            dropped += 1
        else:
            fitted.append(fit)
    if dropped:
        progress.log(f"dropped {dropped} example(s) whose prompt does not fit max_prompt_length / max_length")
    return fitted, dropped


def _dataset_records(stage: str, fitted: Sequence[Example]) -> list[dict[str, Any]]:
    """Conversational records as TRL expects them: prompt + completion for SFT, prompt + chosen + rejected for DPO."""
    if stage == "sft":
        return [
            {
                "prompt": prompt_messages(e.system, e.prompt),
                "completion": [{"role": "assistant", "content": e.chosen}],
            }
            for e in fitted
        ]
    return [
        {
            "prompt": prompt_messages(e.system, e.prompt),
            "chosen": [{"role": "assistant", "content": e.chosen}],
            "rejected": [{"role": "assistant", "content": e.rejected}],
        }
        for e in fitted
    ]


def _schedule(spec: JobSpec, n_examples: int) -> tuple[int, int]:
    """Total optimiser steps and warm-up steps; warm-up is capped at a tenth of a short run so it still learns."""
    steps_per_epoch = max(1, math.ceil(n_examples / (spec.batch_size * spec.grad_accum)))
    total_steps = spec.max_steps if spec.max_steps > 0 else math.ceil(steps_per_epoch * spec.epochs)
    return total_steps, min(spec.warmup_steps, max(0, total_steps // 10))


def _lora_config(spec: JobSpec) -> Any:
    """The PEFT adapter settings, or ``None`` for a full fine-tune."""
    if spec.method != "lora":
        return None
    from peft import LoraConfig

    targets: str | list[str] = (
        "all-linear" if spec.lora_targets == "all-linear" else [t.strip() for t in spec.lora_targets.split(",")]
    )
    return LoraConfig(
        r=spec.lora_r,
        lora_alpha=spec.lora_alpha,
        lora_dropout=spec.lora_dropout,
        target_modules=targets,
        task_type="CAUSAL_LM",
    )


def _training_arguments(spec: JobSpec, output: Path, device: str, bf16: bool, warmup: int) -> dict[str, Any]:
    """The settings SFTConfig and DPOConfig share."""
    return {
        "output_dir": str(output / "checkpoints"),
        "learning_rate": spec.effective_learning_rate,
        "num_train_epochs": spec.epochs,
        "max_steps": spec.max_steps,
        "per_device_train_batch_size": spec.batch_size,
        "gradient_accumulation_steps": spec.grad_accum,
        "warmup_steps": warmup,
        "lr_scheduler_type": "cosine",
        "logging_steps": 1,
        "save_strategy": "steps",
        "save_steps": spec.save_steps,
        "save_total_limit": spec.save_total_limit,
        "seed": spec.seed,
        "report_to": "none",
        "disable_tqdm": True,
        "use_cpu": device == "cpu",
        "bf16": bf16,
        "activation_checkpointing": spec.gradient_checkpointing,
        "max_length": None,
        "dataloader_num_workers": 0,
    }


def _load_model(base_dir: Path, device: str) -> tuple[Any, bool]:
    """The base model in bfloat16 where the GPU supports it (half the memory), else float32; and whether bf16."""
    import torch
    from transformers import AutoModelForCausalLM

    bf16 = device == "cuda" and torch.cuda.is_bf16_supported()
    model = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.bfloat16 if bf16 else torch.float32)
    return model, bf16


def _make_trainer(
    stage: str,
    spec: JobSpec,
    model: Any,
    tokenizer: Any,
    records: list[dict[str, Any]],
    common: dict[str, Any],
    progress: Progress,
    threads: _TorchThreads | None = None,
) -> Any:
    """The TRL trainer for the stage, reporting through ``progress`` and never printing to stdout; on the CPU,
    ``threads`` fits torch's thread count to the free cores before every step."""
    from datasets import Dataset
    from transformers import PrinterCallback

    shared: dict[str, Any] = {
        "model": model,
        "train_dataset": Dataset.from_list(records),
        "processing_class": tokenizer,
        "peft_config": _lora_config(spec),
        "callbacks": [_progress_callback(stage, progress, threads)],
    }
    trainer: Any
    if stage == "sft":
        from trl import SFTConfig, SFTTrainer  # type: ignore[attr-defined]

        trainer = SFTTrainer(args=SFTConfig(**common, completion_only_loss=True), **shared)
    else:
        from trl import DPOConfig, DPOTrainer  # type: ignore[attr-defined]

        trainer = DPOTrainer(args=DPOConfig(**common, beta=spec.beta), **shared)
    # Library log lines must not reach stdout, which carries only JSON progress lines.
    trainer.remove_callback(PrinterCallback)
    return trainer


def _train_or_resume(trainer: Any, output: Path, progress: Progress) -> Any:
    """Train, continuing from the latest checkpoint when an earlier run of this job was interrupted."""
    checkpoints = output / "checkpoints"
    resume = checkpoints.is_dir() and any(checkpoints.glob("checkpoint-*"))
    if resume:
        progress.log(f"resuming from the latest checkpoint in {checkpoints}")
    return trainer.train(resume_from_checkpoint=True if resume else None)


class ProgressEvents:
    """Trainer callback methods that turn training logs into JSON-lines progress events.

    Mixed into a ``transformers.TrainerCallback`` subclass by :func:`_progress_callback`, because transformers may
    only be imported inside functions.
    """

    def __init__(self, stage: str, progress: Progress, threads: _TorchThreads | None = None) -> None:
        self.stage = stage
        self.progress = progress
        self.threads = threads

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.progress.eta(self.stage, 0, state.max_steps)

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.threads is not None:
            self.threads.fit()

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **kwargs: Any) -> None:
        logs = logs or {}
        if "loss" not in logs or not state.is_world_process_zero:
            return
        event: dict[str, Any] = {
            "stage": self.stage,
            "step": state.global_step,
            "total": state.max_steps,
            "epoch": round(float(state.epoch or 0.0), 4),
            "loss": logs.get("loss"),
            "learning_rate": logs.get("learning_rate"),
            "eta_s": self.progress.eta(self.stage, state.global_step, state.max_steps),
        }
        if self.stage == "dpo":
            event["reward_margin"] = logs.get("rewards/margins")
            event["reward_accuracy"] = logs.get("rewards/accuracies")
        self.progress.emit("step", **event)

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        path = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        self.progress.emit("checkpoint", path=str(path), step=state.global_step)


def _progress_callback(stage: str, progress: Progress, threads: _TorchThreads | None = None) -> Any:
    """A ``TrainerCallback`` emitting :class:`ProgressEvents` (and fitting torch's threads, when given)."""
    from transformers import TrainerCallback

    callback_class = type("JsonLinesCallback", (ProgressEvents, TrainerCallback), {})
    return callback_class(stage, progress, threads)


class _TorchThreads:
    """Keeps torch's CPU thread count fitted to the free cores (see :mod:`studio.core.inference.threads`).

    torch's CPU threads meet at a barrier after every parallel operation; beside another busy process on a small
    machine, one of them waits for a partner that is not running, and every step slows several times over. Before
    each step the count is set to what fits beside the other processes' runnable tasks: at most ``configured``
    (the job's ``threads``, by default torch's own thread count), at least one.
    """

    def __init__(self, configured: int | None, read: Callable[[], int | None] | None = None) -> None:
        import torch

        from studio.core.inference.threads import ThreadFitter, other_runnable_tasks

        # Without a setting, torch's own default (its count of physical cores) is the most.
        most = configured or torch.get_num_threads()
        self.fitter = ThreadFitter(self._apply, most, read=read or other_runnable_tasks)
        self._apply(self.fitter.configured)
        self.fit()

    @staticmethod
    def _apply(count: int) -> None:
        import torch

        torch.set_num_threads(count)

    def fit(self) -> int:
        return self.fitter.fit()
