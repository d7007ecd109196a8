"""End to end on the embedded SmolLM2: the CoSAlign recipe at CI size, and synthesis with the model's own judges.

These run ``studio-train`` in subprocesses (as the GUI does) and read its JSON-lines progress.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = [pytest.mark.real_model, pytest.mark.train, pytest.mark.slow]


def studio_train(*args: str, timeout: float = 600) -> list[dict[str, Any]]:
    proc = subprocess.run(
        [sys.executable, "-m", "studio.trainer", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert events[-1]["event"] == "done"
    return events


def _mixed_seed_file(path: Path) -> Path:
    """Every tenth bundled seed prompt: one per category, a two-category prompt and a benign one."""
    from studio.trainer.synthesize import load_seed_prompts

    prompts = [
        {"id": p.id, "categories": [c.value for c in p.categories], "text": p.text} for p in load_seed_prompts()[::10]
    ]
    path.write_text(yaml.safe_dump({"format": "cosa-studio/seed-prompts/v1", "prompts": prompts}))
    return path


def test_synthesize_with_the_embedded_models_judges(embedded_model: Path, tmp_path: Path) -> None:
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
    assert all("harm" in r["judge_raw"] for r in labelled)
    rows = [json.loads(line) for line in pairs.read_text().splitlines()]
    assert len(rows) == done["pairs"]
    assert all(r["chosen_score"] < min(3, r["rejected_score"]) for r in rows)


def test_one_dpo_step_on_synthesized_pairs_exports_a_model_that_answers(
    embedded_model: Path, trainer_env: Path, tmp_path: Path
) -> None:
    """The recipe at its smallest: pairs from the embedded model's replies, one DPO step, Q8_0 export, a reply."""
    from studio.core.inference.base import GenerationParams, Message, complete
    from studio.core.inference.llama_backend import LlamaCppBackend, LlamaSettings

    pairs = tmp_path / "pairs.jsonl"
    synth = studio_train(
        "synthesize",
        "--model",
        str(embedded_model),
        "--out",
        str(pairs),
        "--limit-prompts",
        "2",
        "--responses",
        "2",
        "--max-tokens",
        "16",
        "--labeler",
        "prompt-categories",
        "--written-refusals",
    )[-1]
    assert synth["pairs"] >= 2, synth
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
        "1",
        "--batch-size",
        "2",
        "--grad-accum",
        "1",
        "--max-length",
        "96",
        "--max-prompt-length",
        "64",
        "--threads",
        "2",
    )
    assert [e["step"] for e in dpo if e["event"] == "step"] == [1]
    exported = studio_train(
        "export", str(run), "--out", str(tmp_path / "gguf"), "--name", "smol-dpo", "--quant", "q8_0"
    )
    trained_q8 = Path(exported[-1]["files"]["q8_0"])
    assert exported[-1]["lineage"]["data_sha256"] == synth["data_sha256"]
    question = [Message("user", "What is the capital of France?")]
    with LlamaCppBackend(trained_q8, LlamaSettings(gpu="cpu", max_context=256, n_threads=2)) as backend:
        assert complete(backend, question, GenerationParams(max_tokens=12)).text.strip()


@pytest.mark.long
@pytest.mark.timeout(1200)
def test_cosalign_synthesize_dpo_export_generate_and_margin(
    embedded_model: Path, trainer_env: Path, tmp_path: Path
) -> None:
    """Pairs from the embedded model's own replies, a few DPO steps, Q8_0 export, generation, a better margin."""
    from studio.core.inference.base import GenerationParams, Message, complete
    from studio.core.inference.llama_backend import LlamaCppBackend, LlamaSettings
    from studio.core.inference.registry import ModelRegistry
    from studio.core.store import Store

    pairs = tmp_path / "pairs.jsonl"
    synth = studio_train(
        "synthesize",
        "--model",
        str(embedded_model),
        "--seeds",
        str(_mixed_seed_file(tmp_path / "seeds.yaml")),
        "--out",
        str(pairs),
        "--responses",
        "2",
        "--max-tokens",
        "24",
        "--labeler",
        "prompt-categories",
        "--written-refusals",
    )[-1]
    rows = [json.loads(line) for line in pairs.read_text().splitlines()]
    assert len(rows) == synth["pairs"] >= 24, synth
    generated = [r for r in rows if r["chosen_detail"]["generated_under"]["mode"] != "written-refusal"]
    assert generated, "some pairs must prefer a reply the model generated itself"

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
    trained = studio_train("export", str(run), "--out", str(gguf), "--name", "smol-dpo", "--quant", "q8_0")[-1]
    # The untrained base goes through the same GGUF -> HF -> f16 -> Q8_0 pipeline for a fair comparison.
    base = studio_train("export", str(embedded_model), "--out", str(gguf), "--name", "smol-base", "--quant", "q8_0")[-1]
    trained_q8, base_q8 = Path(trained["files"]["q8_0"]), Path(base["files"]["q8_0"])
    assert not (gguf / "smol-dpo.f16.gguf").exists()
    lineage = trained["lineage"]
    assert lineage["base_sha256"] and lineage["data_sha256"] == synth["data_sha256"] and lineage["job"]["beta"] == 0.1
    with Store.open() as store:
        registry = ModelRegistry(store.models)
        assert registry.get("smol-dpo-q8_0").path == trained_q8.resolve()
        assert registry.get("smol-base-q8_0").path == base_q8.resolve()

    question = [Message("system", "Answer in one short sentence."), Message("user", "What is the capital of France?")]
    replies = {}
    for name, path in (("base", base_q8), ("trained", trained_q8)):
        with LlamaCppBackend(path, LlamaSettings(gpu="cpu", max_context=512, n_threads=2)) as backend:
            replies[name] = complete(backend, question, GenerationParams(max_tokens=24)).text
    assert "Paris" in replies["base"], replies
    assert replies["trained"].strip(), replies

    report = studio_train(
        "evaluate", "--pairs", str(pairs), "--limit", "24", "--model", str(base_q8), "--model", str(trained_q8)
    )
    before, after = report[-1]["reports"]
    assert before["pairs"] == after["pairs"] == 24
    assert after["mean_margin"] > before["mean_margin"], (before, after)
