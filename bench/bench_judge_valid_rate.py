"""Valid rate of the embedded model as judge: how many of its verdicts can be read, on the bundled suites.

A check judges every reply twice (helpfulness, then harm categories or compliance with a free-form config); an
item is valid when both verdicts parse. This runs real checks with the embedded SmolLM2 as candidate and judge on
the first probes of each chosen bundled suite and prints the valid rate per suite and per judge.

    python -m bench.bench_judge_valid_rate [--probes 4] [--suites category-violence,scenario-game-studio]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.common import machine, model_path
from studio.core.documents import ConfigKind, ProbeSuite, SafetyConfig
from studio.core.evals import suites
from studio.core.evals.runner import CheckRunner, CheckSpec, RunFinished
from studio.core.inference.base import GenerationParams
from studio.core.inference.llama_backend import LlamaCppBackend, LlamaSettings
from studio.core.store.db import open_database
from studio.core.store.runs import RunStore
from studio.core.templates import new_config

DEFAULT_SUITES = "category-violence,category-privacy,scenario-game-studio,scenario-childrens-publisher"


def config_for(suite: ProbeSuite) -> SafetyConfig:
    """A config the suite was written for: its category allowed, or the free-form template it belongs to."""
    if suite.kind is ConfigKind.CATEGORICAL:
        category = suite.probes[0].categories[0]
        return new_config("categorical", config_id=f"allow-{category.value}", allowed=[category], seed=0)
    template = suite.id.removeprefix("scenario-")
    return new_config(template, config_id=template)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, default=4, help="probes per suite (default 4)")
    parser.add_argument("--suites", default=DEFAULT_SUITES, help="comma-separated bundled suite ids")
    parser.add_argument("--reply-tokens", type=int, default=64, help="candidate reply limit (default 64)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    print(f"machine: {machine()}")
    backend = LlamaCppBackend(model_path(), LlamaSettings(max_context=4096, n_threads=args.threads))
    totals = {"items": 0, "valid": 0, "rating": 0, "safety": 0}
    with tempfile.TemporaryDirectory() as home, backend:
        db = open_database(Path(home) / "studio.db")
        runner = CheckRunner(RunStore(db), backend)
        for suite_id in args.suites.split(","):
            full = suites.bundled_suite(suite_id)
            suite = full.model_copy(update={"probes": full.probes[: args.probes]})
            spec = CheckSpec(
                suite=suite,
                configs=(config_for(full),),
                params=GenerationParams(max_tokens=args.reply_tokens),
                judge_params=GenerationParams(temperature=0.0),
            )
            started = time.perf_counter()
            finished = next(e for e in runner.check(spec) if isinstance(e, RunFinished))
            items = RunStore(db).items(finished.run_id)
            rating = sum(i.rating is not None for i in items)
            safety = sum(i.safe is not None for i in items)
            valid = sum(i.rating is not None and i.safe is not None for i in items)
            for key, value in (("items", len(items)), ("valid", valid), ("rating", rating), ("safety", safety)):
                totals[key] += value
            print(
                f"{suite_id:<30} valid {valid}/{len(items)}  helpfulness verdicts read {rating}/{len(items)}  "
                f"safety verdicts read {safety}/{len(items)}  ({time.perf_counter() - started:.0f} s)"
            )
        db.close()
    n = totals["items"]
    print(
        f"overall: valid rate {totals['valid'] / n:.1%} ({totals['valid']}/{n}); helpfulness "
        f"{totals['rating'] / n:.1%}, safety {totals['safety'] / n:.1%}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
