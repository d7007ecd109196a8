"""``studio-train``: the headless CoSAlign trainer.

Commands: ``synthesize`` (preference pairs from seed prompts), ``import`` (CoSAlign-Train files, marked
exchanges), ``sft`` and ``dpo`` (TRL + PEFT), ``export`` (merge, GGUF, quantise, register), ``convert-hub`` (a
safetensors model from the Hub to a registered GGUF) and ``evaluate`` (log-prob margins on held-out pairs).
Progress is written to stdout as JSON lines (see :mod:`studio.trainer.progress`); human-readable errors go to
stderr as one line. Exit codes are those of ``studio`` (:class:`studio.core.errors.ExitCode`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio import __version__
from studio.cli.parser import StudioParser, run_command
from studio.core.errors import ExitCode, InputError
from studio.core.store.store import Store
from studio.trainer.jobspec import add_job_flags
from studio.trainer.progress import Progress

if TYPE_CHECKING:
    from studio.core.inference.opening import LoadOptions


def make_parser() -> argparse.ArgumentParser:
    parser = StudioParser(
        prog="studio-train",
        description="CoSAlign training for CoSA Studio: synthesize pairs, SFT, DPO, export to GGUF, evaluate.",
        epilog="Progress is printed as JSON lines on stdout. Exit codes: 0 ok, 2 usage, 3 invalid input, "
        "4 not found, 5 state conflict, 6 model/backend failure, 130 cancelled.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=StudioParser)

    syn = sub.add_parser("synthesize", help="generate, label and pair responses to seed prompts")
    syn.add_argument("--out", required=True, type=Path, help="pairs JSONL to write (a .manifest.json goes next to it)")
    syn.add_argument("--seeds", type=Path, help="seed prompts YAML (default: the bundled set)")
    syn.add_argument("--model", help="generator: registered model name or GGUF path (default: the default model)")
    syn.add_argument("--judge-model", help="judge model (default: the generator)")
    syn.add_argument("--fake", action="store_true", help="use the deterministic fake backend (for pipeline tests)")
    syn.add_argument("--responses", type=int, default=4, help="responses per prompt (default 4)")
    syn.add_argument("--limit-prompts", type=int, help="use only the first N seed prompts")
    syn.add_argument("--categories", help="training categories (comma list); others count as Other Harms")
    syn.add_argument("--max-tokens", type=int, default=96, help="reply length limit (default 96)")
    syn.add_argument(
        "--labeler",
        choices=["judge", "prompt-categories"],
        default="judge",
        help="judge: the harm and helpfulness judges label each reply (the paper; default); prompt-categories: a "
        "heuristic that asks no judge, for models too small to judge: a refusal flags nothing, any other reply "
        "flags the seed prompt's categories",
    )
    syn.add_argument(
        "--written-refusals",
        action="store_true",
        help="add one written refusal per prompt to the generated replies (for generators that never refuse)",
    )
    syn.add_argument(
        "--addressed-by",
        choices=["judge", "markers"],
        help="with --labeler judge: judge = helpfulness rating > 0 (the paper, default); markers = no refusal phrase",
    )
    syn.add_argument("--temperature", type=float, default=0.9)
    syn.add_argument("--seed", type=int, default=0)
    syn.add_argument("--n-ctx", type=int, default=2048)
    syn.add_argument("--threads", type=int, default=2)
    syn.set_defaults(func=_synthesize)

    imp = sub.add_parser("import", help="pairs from CoSAlign-Train-style files or marked exchanges")
    imp.add_argument("sources", nargs="*", type=Path, help="JSONL or Parquet files")
    imp.add_argument("--exchanges", action="store_true", help="also pair marked exchanges from the studio database")
    imp.add_argument("--config-id", help="only exchanges of this config")
    imp.add_argument("--out", required=True, type=Path)
    imp.set_defaults(func=_import)

    for stage, text in (("sft", "supervised fine-tuning on chosen replies"), ("dpo", "DPO on preference pairs")):
        job = sub.add_parser(stage, help=text)
        job.add_argument("--job", type=Path, help="YAML job spec (flags override it)")
        add_job_flags(job)
        job.set_defaults(func=_train, stage=stage)

    exp = sub.add_parser("export", help="merge, convert to GGUF, quantise and register")
    exp.add_argument("trained", type=Path, help="studio-train output, adapter or HF folder, or a GGUF to round-trip")
    exp.add_argument("--out", required=True, type=Path, help="folder for the GGUF files")
    exp.add_argument("--name", required=True, help="base name of the files and registry entries")
    exp.add_argument("--base", type=Path, help="base model of an adapter (default: recorded in its provenance)")
    exp.add_argument("--quant", nargs="+", default=["f16", "q8_0"], help="f16, q8_0, q4_k_m (default f16 q8_0)")
    exp.add_argument("--adapter-gguf", action="store_true", help="also write the LoRA adapter as GGUF")
    exp.add_argument("--no-register", action="store_true", help="do not add the files to the model registry")
    exp.add_argument("--sdist", type=Path, help="llama-cpp-python sdist to take the converter from (offline)")
    exp.set_defaults(func=_export)

    hub = sub.add_parser(
        "convert-hub",
        help="download a safetensors model from the Hub, convert it to GGUF, quantise, probe and register it",
        description="Every step checks free disk first and resumes what an earlier, interrupted run finished.",
    )
    hub.add_argument("repo", help="Hub repository id, e.g. owner/name")
    hub.add_argument("--quant", default="q4_k_m", choices=["q4_k_m", "q8_0"], help="quantisation (default q4_k_m)")
    hub.add_argument("--revision", default="main", help="branch, tag or commit (default main)")
    hub.add_argument("--name", help="base name of the files and the registry entry (default: the repository name)")
    hub.add_argument("--out", type=Path, help="folder for the GGUF file (default: the model store)")
    hub.add_argument("--keep-f16", action="store_true", help="keep the intermediate f16 GGUF")
    hub.add_argument("--keep-download", action="store_true", help="keep the downloaded safetensors files")
    hub.add_argument("--no-register", action="store_true", help="do not add the result to the model registry")
    hub.add_argument("--threads", type=int, default=2, help="CPU threads for quantising and the probe")
    hub.add_argument("--sdist", type=Path, help="llama-cpp-python sdist to take the converter from (offline)")
    hub.set_defaults(func=_convert_hub)

    ev = sub.add_parser("evaluate", help="chosen-vs-rejected log-prob margins of local models on held-out pairs")
    ev.add_argument("--pairs", required=True, type=Path)
    ev.add_argument("--model", required=True, action="append", help="registered model name or GGUF path (repeatable)")
    ev.add_argument("--limit", type=int, help="first N pairs only")
    ev.add_argument("--n-ctx", type=int, default=1024)
    ev.add_argument("--threads", type=int, default=2)
    ev.add_argument("--out", type=Path, help="write the full report (with per-pair margins) as JSON")
    ev.add_argument("--suite", type=Path, help="probe suite YAML: also compute each model's CoSA-Score")
    ev.add_argument("--config", action="append", type=Path, default=[], help="safety config YAML for --suite")
    ev.add_argument("--judge-model", help="judge for --suite (default: the model under test)")
    ev.add_argument("--max-tokens", type=int, default=128, help="reply length limit for --suite (default 128)")
    ev.set_defaults(func=_evaluate)
    return parser


def _synthesize(args: argparse.Namespace, progress: Progress) -> int:
    from studio.core.inference.opening import open_candidate_and_judge
    from studio.core.taxonomy import CONFIGURABLE, parse_category
    from studio.trainer.synthesize import SynthesisSettings, load_seed_prompts, synthesize

    prompts = load_seed_prompts(args.seeds)
    if args.limit_prompts:
        prompts = prompts[: args.limit_prompts]
    universe = CONFIGURABLE
    if args.categories:
        try:
            universe = tuple(parse_category(c) for c in args.categories.split(",") if c.strip())
        except ValueError as exc:
            raise InputError(None, str(exc), where="--categories") from None
    if args.responses < 2:
        raise InputError(None, "at least 2 responses per prompt are needed to build pairs", where="--responses")
    labeler = args.labeler
    if labeler == "prompt-categories" and args.judge_model:
        raise InputError(None, "the prompt-categories labeler asks no judge; drop --judge-model", where="--labeler")
    if labeler == "prompt-categories" and args.addressed_by == "judge":
        raise InputError(None, "the prompt-categories labeler uses refusal markers", where="--addressed-by")
    settings = SynthesisSettings(
        responses_per_prompt=args.responses,
        seed=args.seed,
        max_tokens=args.max_tokens,
        temperature=args.temperature,
        universe=universe,
        addressed_by=args.addressed_by or ("judge" if labeler == "judge" else "markers"),
        labeler=labeler,
        written_refusals=args.written_refusals,
    )
    progress.emit(
        "start", command="synthesize", prompts=len(prompts), total=len(prompts) * args.responses, labeler=labeler
    )
    judge_ref = None if args.fake else args.judge_model
    options = _load_options(args, fake=args.fake)
    with Store.open() as store, open_candidate_and_judge(args.model, judge_ref, options, store=store) as models:
        summary = synthesize(
            *models,
            prompts,
            args.out,
            settings,
            progress,
            provenance={"seeds": str(args.seeds or "bundled")},
        )
    progress.emit("done", command="synthesize", **vars(summary))
    return int(ExitCode.OK)


def _load_options(args: argparse.Namespace, *, fake: bool = False) -> LoadOptions:
    """How the models of this command load: the user's inference settings with --n-ctx and --threads applied."""
    from studio.core.inference.opening import load_options

    return load_options(args, fake=fake)


def _import(args: argparse.Namespace, progress: Progress) -> int:
    from studio.trainer.importers import import_exchanges, import_file
    from studio.trainer.synthesize import write_jsonl

    if not args.sources and not args.exchanges:
        raise InputError(None, "give files to import or --exchanges", where="arguments")
    rows: list[dict[str, Any]] = []
    for source in args.sources:
        rows.extend(import_file(source))
    if args.exchanges:
        with Store.open() as store:
            rows.extend(import_exchanges(store, args.config_id))
    if not rows:
        raise InputError(None, "nothing to import: no rows, and no prompt with both a follows and a violates mark")
    for number, row in enumerate(rows):
        row.setdefault("id", f"import-{number:06d}")
    digest = write_jsonl(args.out, rows)
    progress.emit("done", command="import", pairs=len(rows), out_path=str(args.out), data_sha256=digest)
    return int(ExitCode.OK)


def _train(args: argparse.Namespace, progress: Progress) -> int:
    from studio.trainer.jobspec import job_flag_names, require, resolve_spec
    from studio.trainer.train import run_training

    spec = resolve_spec(args.job, {name: getattr(args, name) for name in job_flag_names()})
    require(spec, "base", "data", "output")
    run_training(args.stage, spec, progress)
    return int(ExitCode.OK)


def _export(args: argparse.Namespace, progress: Progress) -> int:
    from studio.core.inference.registry import ModelRegistry
    from studio.trainer.export import QUANT_KINDS, export_model, resolve_base

    for kind in args.quant:
        if kind not in QUANT_KINDS:
            raise InputError(None, f"unknown quantisation {kind!r} (choose {', '.join(QUANT_KINDS)})", where="--quant")
    progress.emit("start", command="export", trained=str(args.trained))
    trained: Path = args.trained
    if (trained / "model").is_dir():
        trained = trained / "model"
    elif trained.is_file():
        trained = resolve_base(trained, sdist=args.sdist, log=progress.log)
    with contextlib.ExitStack() as stack:
        registry = None if args.no_register else ModelRegistry(stack.enter_context(Store.open()).models)
        result = export_model(
            trained,
            args.out,
            name=args.name,
            base=args.base,
            quants=tuple(args.quant),
            adapter_gguf=args.adapter_gguf,
            registry=registry,
            sdist=args.sdist,
            log=progress.log,
        )
    progress.emit(
        "done",
        command="export",
        files={kind: str(path) for kind, path in result.files.items()},
        registered=result.registered,
        lineage=result.lineage,
    )
    return int(ExitCode.OK)


def _convert_hub(args: argparse.Namespace, progress: Progress) -> int:
    import os

    from studio.core.inference.registry import ModelRegistry
    from studio.trainer.hubget import get_model, plan_get

    token = os.environ.get("HF_TOKEN") or None
    progress.emit("start", command="convert-hub", repo=args.repo, quant=args.quant)
    plan = plan_get(args.repo, quant=args.quant, revision=args.revision, name=args.name, out_dir=args.out, token=token)
    progress.log(f"{args.repo} at {plan.commit[:12]}: {len(plan.files)} files, {plan.weights_bytes / 1e9:.2f} GB")
    with Store.open() as store:
        lineage = get_model(
            plan,
            progress,
            ModelRegistry(store.models),
            keep_f16=args.keep_f16,
            keep_download=args.keep_download,
            register=not args.no_register,
            sdist=args.sdist,
            token=token,
            threads=args.threads,
        )
    progress.emit(
        "done", command="convert-hub", path=lineage["file"], registered=lineage["registered"], lineage=lineage
    )
    return int(ExitCode.OK)


def _evaluate(args: argparse.Namespace, progress: Progress) -> int:
    from studio.trainer.evaluate import pair_margins
    from studio.trainer.examples import load_pairs

    rows = load_pairs(args.pairs)
    if args.limit:
        rows = rows[: args.limit]
    if args.suite is not None and not args.config:
        raise InputError(None, "--suite needs at least one --config", where="--config")
    with Store.open() as store:
        reports = [
            pair_margins(m, rows, n_ctx=args.n_ctx, threads=args.threads, progress=progress, store=store)
            for m in args.model
        ]
        scores = _cosa_scores(args, store, progress) if args.suite is not None else []
    if args.out:
        from studio.trainer.export import write_json

        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_json(args.out, {"pairs": str(args.pairs), "reports": [vars(r) for r in reports], "cosa": scores})
    progress.emit("done", command="evaluate", reports=[r.summary() for r in reports], cosa=scores)
    return int(ExitCode.OK)


def _cosa_scores(args: argparse.Namespace, store: Store, progress: Progress) -> list[dict[str, Any]]:
    from studio.core.documents import ProbeSuite, SafetyConfig
    from studio.core.inference.opening import open_candidate_and_judge
    from studio.core.yamlio import load_document
    from studio.trainer.evaluate import cosa_score

    suite = load_document(args.suite, ProbeSuite)
    configs = [load_document(path, SafetyConfig) for path in args.config]
    results: list[dict[str, Any]] = []
    for model in args.model:
        with open_candidate_and_judge(model, args.judge_model, _load_options(args), store=store) as (candidate, judge):
            result = cosa_score(
                candidate,
                judge,
                suite,
                configs,
                store.runs,
                label=Path(model).name,
                max_tokens=args.max_tokens,
                progress=progress,
            )
        results.append({"model": model, **result})
    return results


def _interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    handler = getattr(args, "func", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return int(ExitCode.USAGE)
    # Under `accelerate launch` every process runs this; only the first one reports.
    progress = Progress(sys.stdout, enabled=os.environ.get("RANK", "0") in ("", "0"))
    # The GUI cancels with SIGTERM: turn it into the same clean stop as Ctrl-C (temporary files are removed).
    signal.signal(signal.SIGTERM, _interrupt)

    def call() -> int:
        # stdout carries only JSON progress lines; anything a library prints goes to stderr.
        with contextlib.redirect_stdout(sys.stderr):
            return int(handler(args, progress))

    def report(message: str, code: int) -> None:
        progress.emit("error", message=message, exit_code=code)

    return run_command("studio-train", call, on_error=report)
