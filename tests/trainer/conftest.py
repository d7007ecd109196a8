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
