"""End-to-end check on the embedded SmolLM2: the bundled game-studio suite, the model as candidate and judge.

* studio: ``CheckRunner`` (batched replies under the shared config, batched grammar-constrained verdicts on the
  shared rubric), as ``studio check`` runs it, with the CLI's default settings.
* naive baseline, same run, same work: raw llama-cpp-python, one ``create_chat_completion`` per reply and one per
  verdict, with the same prompts, token limits and verdict schemas (as ``response_format`` grammars).

Model loading is outside both timings. Run inside the CPU lock from the repository root:
``flock /tmp/studio-cpu.lock .venv/bin/python -m bench.bench_check [--json FILE]``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.common import Figure, machine, model_path, stopwatch
from studio.core.documents import SafetyConfig
from studio.core.evals.judges import HelpfulnessJudge, SafetyJudge
from studio.core.evals.runner import CheckRunner, CheckSpec, RunFinished
from studio.core.evals.suites import bundled_suite
from studio.core.inference.base import GenerationParams, Message
from studio.core.inference.llama_backend import LlamaCppBackend, LlamaSettings
from studio.core.store.db import open_database
from studio.core.store.runs import RunStore
from studio.core.templates import new_config

THREADS = 2
N_CTX = 4096
SUITE = "scenario-game-studio"
#: ``studio check`` defaults.
REPLY = GenerationParams(temperature=0.0, max_tokens=256)
VERDICT = GenerationParams(temperature=0.0, max_tokens=256)


def studio_check(
    backend: LlamaCppBackend, config: SafetyConfig, db_path: Path, judge: LlamaCppBackend | None = None
) -> tuple[float, dict[str, Any]]:
    """Wall time of the studio check and what it produced (``judge``: another loaded model as the judge)."""
    db = open_database(db_path)
    try:
        runner = CheckRunner(RunStore(db), backend, judge)
        spec = CheckSpec(suite=bundled_suite(SUITE), configs=(config,), params=REPLY, judge_params=VERDICT)
        finished: RunFinished | None = None
        with stopwatch() as elapsed:
            for event in runner.check(spec):
                if isinstance(event, RunFinished):
                    finished = event
        assert finished is not None
        report = finished.report
        return elapsed[0], {"score": report.score, "valid_rate": report.overall.valid_rate}
    finally:
        db.close()


def _raw_chat(llm: Any, messages: list[Message], params: GenerationParams) -> str:
    kwargs: dict[str, Any] = {}
    if params.json_schema is not None:
        kwargs["response_format"] = {"type": "json_object", "schema": params.json_schema}
    out = llm.create_chat_completion(
        messages=[{"role": m.role, "content": m.content} for m in messages],
        max_tokens=params.max_tokens,
        temperature=params.temperature,
        repeat_penalty=params.repeat_penalty,
        seed=params.seed,
        **kwargs,
    )
    return str(out["choices"][0]["message"]["content"] or "")


def naive_check(
    llm: Any, judge_backend: LlamaCppBackend, config: SafetyConfig, items: slice = slice(None)
) -> tuple[float, int]:
    """Wall time of the same check done one request at a time (``items``: a part of the suite's probes); returns
    (seconds, valid verdict pairs)."""
    suite = bundled_suite(SUITE)
    helpfulness = HelpfulnessJudge(judge_backend, VERDICT)
    safety = SafetyJudge(judge_backend, VERDICT)
    valid = 0
    with stopwatch() as elapsed:
        for probe in suite.probes[items]:
            reply = _raw_chat(llm, [Message("system", config.text), Message("user", probe.text)], REPLY)
            asked = helpfulness.messages(config.text, probe.text, reply)
            rated = helpfulness.parse(_raw_chat(llm, asked, helpfulness.params))
            judged = safety.parse(
                config, _raw_chat(llm, safety.messages(config, probe.text, reply), safety.params_for(config))
            )
            valid += int(rated.rating is not None and judged.safe is not None)
    return elapsed[0], valid


def separate_judge() -> int:
    """The studio check with the judge in a second backend (two models in one process), timed alone."""
    print(f"machine: {machine()}; threads {THREADS}; n_ctx {N_CTX}; suite {SUITE}; judge: a second backend")
    config = new_config("game-studio", config_id="game-studio")
    settings = LlamaSettings(gpu="cpu", max_context=N_CTX, n_threads=THREADS, cache_dir=None)
    with (
        tempfile.TemporaryDirectory() as home,
        LlamaCppBackend(model_path(), settings, name="candidate") as backend,
        LlamaCppBackend(model_path(), settings, name="judge") as judge,
    ):
        seconds, outcome = studio_check(backend, config, Path(home) / "bench.db", judge)
    print(f"studio check, separate judge: {seconds:.1f} s, {outcome}")
    print(f"machine after: {machine()}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="End-to-end check: studio vs one request at a time")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument(
        "--part",
        choices=["both", "studio", "naive"],
        default="both",
        help="time one side only (each side alone fits a time limit that both together do not)",
    )
    parser.add_argument(
        "--items",
        default=":",
        help="naive side only: a part of the probes as START:END (the naive check in parts, each within a time limit)",
    )
    parser.add_argument(
        "--judge",
        choices=["same", "separate"],
        default="same",
        help="studio side only: the candidate judges itself, or a second loaded copy of the model judges",
    )
    args = parser.parse_args(argv)
    from llama_cpp import Llama

    if args.judge == "separate":
        return separate_judge()

    start, _, end = args.items.partition(":")
    items = slice(int(start) if start else None, int(end) if end else None)

    path = model_path()
    print(f"machine: {machine()}; threads {THREADS}; n_ctx {N_CTX}; suite {SUITE}", flush=True)
    config = new_config("game-studio", config_id="game-studio")
    studio_s = naive_s = float("nan")
    with tempfile.TemporaryDirectory() as home:
        settings = LlamaSettings(gpu="cpu", max_context=N_CTX, n_threads=THREADS, cache_dir=None)
        with LlamaCppBackend(path, settings) as backend:
            if args.part in ("both", "studio"):
                studio_s, outcome = studio_check(backend, config, Path(home) / "bench.db")
                print(f"studio check: {studio_s:.1f} s, {outcome}", flush=True)
            if args.part in ("both", "naive"):
                raw = Llama(str(path), n_ctx=N_CTX, n_threads=THREADS, n_threads_batch=THREADS, verbose=False)
                try:
                    # In the backend's owner thread, like the studio's decoding (see bench_inference._owned).
                    job = lambda _llm: iter([naive_check(raw, backend, config, items)])  # noqa: E731
                    ((naive_s, naive_valid),) = list(backend.run_owned(job))
                finally:
                    raw.close()
                print(
                    f"naive check (probes {args.items}): {naive_s:.1f} s, {naive_valid} items with both verdicts "
                    "readable",
                    flush=True,
                )
    if args.part != "both":
        return 0
    figures = [
        Figure(
            "Check, 18-probe game-studio suite, naive vs studio (wall time)",
            naive_s,
            studio_s,
            "s",
            3.0,
            True,
            f"studio {studio_s:.1f} s (goal <= 60 s: {'met' if studio_s <= 60 else 'MISSED'})",
        )
    ]
    for figure in figures:
        print(figure.line(), flush=True)
    if args.json:
        payload = {"machine": machine(), "figures": [asdict(f) | {"ratio": f.ratio} for f in figures]}
        args.json.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
