"""End to end on the embedded SmolLM2: GGUF -> trainable model -> GGUF, and a CI-sized CoSAlign run.

These run ``studio-train`` in subprocesses (as the GUI does) and read its JSON-lines progress.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.real_model, pytest.mark.train, pytest.mark.slow]


def studio_train(*args: str, timeout: float = 1200) -> list[dict[str, Any]]:
    proc = subprocess.run(
        [sys.executable, "-m", "studio.trainer", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert events[-1]["event"] == "done"
    return events


def test_gguf_round_trip_generates_coherent_text(embedded_model: Path, trainer_env: Path, tmp_path: Path) -> None:
    from studio.core.inference.base import GenerationParams, Message, complete
    from studio.core.inference.llama_backend import LlamaCppBackend, LlamaSettings
    from studio.core.inference.registry import ModelRegistry
    from studio.core.paths import database_path
    from studio.core.store.db import open_database

    done = studio_train("export", str(embedded_model), "--out", str(tmp_path), "--name", "smol-rt", "--quant", "q8_0")
    q8 = Path(done[-1]["files"]["q8_0"])
    assert q8.is_file() and not (tmp_path / "smol-rt.f16.gguf").exists()
    lineage = json.loads(q8.with_name(q8.name + ".lineage.json").read_text())
    assert lineage["files"]["q8_0"]["sha256"]
    db = open_database(database_path())
    try:
        assert ModelRegistry(db).get("smol-rt-q8_0").path == q8.resolve()
    finally:
        db.close()
    with LlamaCppBackend(q8, LlamaSettings(gpu="cpu", max_context=512, n_threads=2)) as backend:
        question = "What is the capital of France?"
        messages = [Message("system", "Answer in one short sentence."), Message("user", question)]
        reply = complete(backend, messages, GenerationParams(max_tokens=24)).text
    assert "Paris" in reply


def test_cosalign_pairs_dpo_export_and_margin(embedded_model: Path, trainer_env: Path, tmp_path: Path) -> None:
    pairs = tmp_path / "pairs.jsonl"
    synth = studio_train(
        "synthesize",
        "--model",
        str(embedded_model),
        "--out",
        str(pairs),
        "--limit-prompts",
        "10",
        "--responses",
        "5",
        "--max-tokens",
        "24",
        "--addressed-by",
        "markers",
        "--n-ctx",
        "2048",
    )
    assert synth[-1]["pairs"] >= 4, synth[-1]
    rows = [json.loads(line) for line in pairs.read_text().splitlines()]
    assert all(r["chosen_score"] < r["rejected_score"] for r in rows)
    labelled = Path(synth[-1]["responses_path"]).read_text().splitlines()
    assert len(labelled) == 50

    run = tmp_path / "dpo"
    dpo = studio_train(
        "dpo",
        "--base",
        str(embedded_model),
        "--data",
        str(pairs),
        "--output",
        str(run),
        "--max-steps",
        "3",
        "--batch-size",
        "4",
        "--grad-accum",
        "1",
        "--learning-rate",
        "1e-4",
        "--max-length",
        "512",
        "--max-prompt-length",
        "448",
        "--threads",
        "2",
    )
    steps = [e for e in dpo if e["event"] == "step"]
    assert [e["step"] for e in steps] == [1, 2, 3]
    assert all({"loss", "reward_margin", "eta_s"} <= e.keys() for e in steps)

    trained = studio_train("export", str(run), "--out", str(tmp_path / "gguf"), "--name", "smol-dpo", "--quant", "q8_0")
    base_dir = json.loads((run / "model" / "studio-train.json").read_text())["base"]
    base = studio_train(
        "export", base_dir, "--out", str(tmp_path / "gguf"), "--name", "smol-base", "--quant", "q8_0", "--no-register"
    )
    lineage = trained[-1]["lineage"]
    assert lineage["base_sha256"] and lineage["data_sha256"] and lineage["job"]["beta"] == 0.1

    report = studio_train(
        "evaluate",
        "--pairs",
        str(pairs),
        "--model",
        base[-1]["files"]["q8_0"],
        "--model",
        trained[-1]["files"]["q8_0"],
        "--limit",
        "8",
    )
    before, after = report[-1]["reports"]
    assert after["mean_margin"] > before["mean_margin"], (before, after)
