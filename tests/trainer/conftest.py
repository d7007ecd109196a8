"""Trainer fixtures: the llama.cpp converter is fetched once per checkout into the git-ignored .cache/."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def converter_dir() -> Path:
    """The extracted llama.cpp converter, shared by every test of the session."""
    from studio.trainer.converter import LLAMA_CPP_PYTHON_VERSION, ensure_converter

    target = REPO / ".cache" / f"llama.cpp-converter-{LLAMA_CPP_PYTHON_VERSION}"
    previous = os.environ.get("STUDIO_CONVERTER_DIR")
    os.environ["STUDIO_CONVERTER_DIR"] = str(target)
    try:
        return ensure_converter()
    finally:
        if previous is None:
            del os.environ["STUDIO_CONVERTER_DIR"]
        else:
            os.environ["STUDIO_CONVERTER_DIR"] = previous


@pytest.fixture
def trainer_env(converter_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("STUDIO_CONVERTER_DIR", str(converter_dir))
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")
    return converter_dir


@pytest.fixture(scope="session")
def safetensors_model(embedded_model: Path, converter_dir: Path) -> Path:
    """A plain Hugging Face folder (bf16 safetensors, tokenizer, chat template) of the embedded SmolLM2.

    Rebuilt from the embedded GGUF once per checkout into the git-ignored .cache/; it stands in for a Hub model
    that is published as safetensors only.
    """
    import shutil
    import tempfile

    target = REPO / ".cache" / "hub-fixture-smollm2-bf16"
    if (target / "model.safetensors").is_file() and (target / "tokenizer.json").is_file():
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from studio.trainer.export import hf_base_from_gguf

    previous = {key: os.environ.get(key) for key in ("STUDIO_HOME", "STUDIO_CONVERTER_DIR")}
    with tempfile.TemporaryDirectory(prefix="fixture-", dir=REPO / ".cache") as tmp:
        os.environ["STUDIO_HOME"] = tmp
        os.environ["STUDIO_CONVERTER_DIR"] = str(converter_dir)
        try:
            base = hf_base_from_gguf(embedded_model)
        finally:
            for key, value in previous.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        staged = Path(tmp) / "bf16"
        model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.bfloat16)
        model.save_pretrained(str(staged))
        AutoTokenizer.from_pretrained(str(base)).save_pretrained(str(staged))
        if target.exists():
            shutil.rmtree(target)
        os.replace(staged, target)
    return target
