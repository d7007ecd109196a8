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


def test_synthesize_with_the_embedded_model(embedded_model: Path, tmp_path: Path) -> None:
    pairs = tmp_path / "pairs.jsonl"
    done = studio_train(
        "synthesize",
        "--model",
        str(embedded_model),
        "--out",
        str(pairs),
        "--limit-prompts",
        "3",
        "--responses",
        "3",
        "--max-tokens",
        "24",
        "--addressed-by",
        "markers",
    )[-1]
    labelled = [json.loads(line) for line in Path(done["responses_path"]).read_text().splitlines()]
    assert len(labelled) == 9
    assert all(r["text"] for r in labelled)
    # The grammar-constrained harm judge always answers with the eight keys, so every reply gets a label.
    assert done["invalid_labels"] == 0 and all(r["valid"] for r in labelled)
    rows = [json.loads(line) for line in pairs.read_text().splitlines()]
    assert len(rows) == done["pairs"]
    assert all(r["chosen_score"] < min(3, r["rejected_score"]) for r in rows)


def test_dpo_export_and_margin(embedded_model: Path, trainer_env: Path, tmp_path: Path) -> None:
    """A few DPO steps on hand-written CoSAlign-style pairs must raise the chosen-vs-rejected margin of the GGUF.

    The pairs are fixed rather than synthesized: the 135M model's own judge labels too uniformly to promise pairs.
    """
    pairs = tmp_path / "pairs.jsonl"
    studio_train("import", str(Path(__file__).parent / "data" / "cosalign-mini.jsonl"), "--out", str(pairs))
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
        "4",
        "--batch-size",
        "4",
        "--grad-accum",
        "1",
        "--learning-rate",
        "1e-4",
        "--max-length",
        "256",
        "--max-prompt-length",
        "192",
        "--threads",
        "2",
    )
    steps = [e for e in dpo if e["event"] == "step"]
    assert [e["step"] for e in steps] == [1, 2, 3, 4]
    assert all({"loss", "reward_margin", "eta_s"} <= e.keys() for e in steps)

    gguf = tmp_path / "gguf"
    trained = studio_train("export", str(run), "--out", str(gguf), "--name", "smol-dpo", "--quant", "q8_0")
    base_dir = json.loads((run / "model" / "studio-train.json").read_text())["base"]
    base = studio_train(
        "export", base_dir, "--out", str(gguf), "--name", "smol-base", "--quant", "q8_0", "--no-register"
    )
    lineage = trained[-1]["lineage"]
    assert lineage["base_sha256"] and lineage["data_sha256"] and lineage["job"]["beta"] == 0.1

    report = studio_train(
        "evaluate", "--pairs", str(pairs), "--model", base[-1]["files"]["q8_0"], "--model", trained[-1]["files"]["q8_0"]
    )
    before, after = report[-1]["reports"]
    assert after["mean_margin"] > before["mean_margin"], (before, after)
