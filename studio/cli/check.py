"""``studio score`` and ``studio check``, plus ``studio runs ...`` for stored check runs."""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import shlex
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from studio.cli.parser import command_group
from studio.core.documents import ID_PATTERN, ProbeSuite, SafetyConfig
from studio.core.errors import ExitCode, InputError, NotFoundError
from studio.core.evals.compare import PairRow, compare_configs, config_history, diff_runs, regression_matrix
from studio.core.evals.formatting import format_score
from studio.core.evals.importers import (
    explain_record,
    import_cosalign_test,
    import_cosapien,
    import_counts,
    read_reference_items,
    read_score_items,
    save_benchmark,
)
from studio.core.evals.probegen import DraftFailure, ProbeDraft, draft_probes, new_suite_from_drafts
from studio.core.evals.reference import explain, format_table, score_reference
from studio.core.evals.reports import format_report, gate_failures, junit_xml
from studio.core.evals.review import (
    accept_judge_verdict,
    clear_human_verdict,
    run_agreement,
    set_human_verdict,
)
from studio.core.evals.runner import (
    CheckRunner,
    CheckSpec,
    Progress,
    RunEvent,
    RunFinished,
    export_run,
    run_report,
)
from studio.core.evals.scoring import Helpfulness, ScoreReport, Variant, score_items
from studio.core.evals.suites import sample_suite
from studio.core.fileio import atomic_write_text
from studio.core.inference.base import Backend, GenerationParams
from studio.core.inference.opening import add_load_arguments, load_options, open_candidate_and_judge
from studio.core.refs import load_config_ref
from studio.core.store.runs import ItemRecord, RunStatus
from studio.core.store.store import Store
from studio.core.yamlio import dump_document


def register(sub: Any) -> None:
    score = sub.add_parser(
        "score",
        help="compute CoSA-Score from judged items (JSONL or CSV)",
        description="Compute CoSA-Score from a file of judged items: one per line (JSONL) or row (CSV) with the "
        "config (or reference split name), prompt, response and the judges' raw texts or verdicts.",
    )
    score.add_argument("items", type=Path, metavar="ITEMS", help="JSONL or CSV file of judged items")
    score.add_argument("--json", type=Path, metavar="OUT", help="also write the full report as JSON to OUT")
    score.add_argument(
        "--use",
        choices=["judge", "human"],
        default="judge",
        help="score from the judge verdicts, or from human verdicts where given (default: judge)",
    )
    score.add_argument(
        "--binary",
        action="store_true",
        help="binary helpfulness: the addressed judge's [[YES]] / [[NO]] where the file has one, else rating > 0",
    )
    score.add_argument(
        "--variant", choices=[v.value for v in Variant], default=Variant.PLAIN.value, help="cascade variants"
    )
    score.add_argument(
        "--parsing",
        choices=["strict", "reference"],
        default="strict",
        help="strict: the studio's parser (last rating marker, exactly eight category keys); reference: the "
        "reference metric code's rules and table, quirks included (see docs/scoring.md). Default: strict",
    )
    score.add_argument(
        "--explain",
        action="store_true",
        help="also list, per item, what was read from which judge text, or why the item is invalid",
    )
    score.set_defaults(func=_score)
    _register_check(sub)
    _register_runs(sub)
    _register_data(sub)


def _print_report(report: ScoreReport, extra: dict[str, Any] | None = None, out: Path | None = None) -> None:
    print(format_report(report))
    if out is not None:
        atomic_write_text(out, json.dumps({**(extra or {}), **report.as_dict()}, indent=2, ensure_ascii=False) + "\n")


def _score(args: argparse.Namespace) -> int:
    variant = Variant(args.variant)
    if args.parsing == "reference":
        return _score_reference(args, variant)
    records = read_score_items(args.items, binary=args.binary)
    report = score_items(
        (r.scored(args.use, binary=args.binary) for r in records),
        helpfulness=Helpfulness.BINARY if args.binary else Helpfulness.GRADED,
        variant=variant,
    )
    _print_report(report, {"source": str(args.items), "use": args.use, "parsing": "strict"}, args.json)
    if args.explain:
        print("items:")
        for record in records:
            print("  " + explain_record(record))
    if report.score is None:
        print("studio: no valid items to score", file=sys.stderr)
        return int(ExitCode.FAILURE)
    return int(ExitCode.OK)


def _score_reference(args: argparse.Namespace, variant: Variant) -> int:
    if args.use != "judge":
        raise InputError(None, "--use human needs --parsing strict (the reference metric reads judge texts only)")
    table = score_reference(read_reference_items(args.items, args.binary, variant), args.binary, variant)
    print(format_table(table))
    if args.explain:
        print("items:")
        for outcome in table.outcomes:
            print("  " + explain(outcome))
    if args.json is not None:
        payload = {"source": str(args.items), **table.as_dict()}
        atomic_write_text(args.json, json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    return int(ExitCode.OK)


# -- studio check ------------------------------------------------------------------------------------------------


def _register_check(sub: Any) -> None:
    check = sub.add_parser(
        "check",
        help="run a probe suite under configs, judge the replies and report CoSA-Score",
        description="Generate each probe's reply under each config with the candidate model, judge it, store the "
        "run with its provenance, and print the CoSA-Score. Exits 1 when a gate (--min-score, --min-valid-rate) "
        "is not met.",
    )
    check.add_argument(
        "--config", action="append", default=[], metavar="C", help="config file or stored config id (repeatable)"
    )
    check.add_argument(
        "--suite", metavar="S", help="suite file, stored suite id or bundled suite id (default: the config's own)"
    )
    check.add_argument(
        "--sample",
        type=int,
        metavar="N",
        help="check only the first N probes of each kind (allowed, disallowed, partial): a quick first look, stored "
        "as a suite of its own",
    )
    check.add_argument("--resume", metavar="RUN", help="finish an interrupted run instead of starting one")
    check.add_argument("--model", metavar="M", help="candidate model: registered name or GGUF path (default model)")
    check.add_argument("--judge", metavar="J", help="judge model (default: the candidate model)")
    check.add_argument("--min-score", type=float, metavar="X", help="fail (exit 1) when CoSA-Score is below X")
    check.add_argument(
        "--min-valid-rate", type=float, metavar="R", help="fail (exit 1) when the valid rate is below R (0-1)"
    )
    check.add_argument("--json", type=Path, metavar="OUT", help="write the run (provenance, report, items) as JSON")
    check.add_argument("--junit", type=Path, metavar="OUT", help="write a JUnit XML report for CI")
    check.add_argument("--max-tokens", type=int, default=256, help="reply length limit (default 256)")
    check.add_argument(
        "--judge-max-tokens",
        type=int,
        default=256,
        help="judge reply limit (default 256); a judge always gets at least the tokens its whole verdict can take",
    )
    check.add_argument("--temperature", type=float, default=0.0, help="candidate sampling temperature (default 0)")
    check.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    add_load_arguments(check)
    check.add_argument("--label", default="", help="a note stored with the run")
    check.add_argument(
        "--self-check",
        action="store_true",
        help="also let the candidate judge its own replies, so the Cascade variant can be scored",
    )
    check.add_argument("--backend", choices=["llama", "fake"], default="llama", help=argparse.SUPPRESS)
    check.set_defaults(func=_check)


def _load_suite(ref: str | None, configs: list[SafetyConfig], store: Store) -> ProbeSuite:
    from studio.core.evals import suites

    if ref is not None:
        return suites.load_suite_ref(ref, store.suites)
    first = configs[0]
    found = suites.suite_for_config(first)
    if found is None:
        raise NotFoundError(
            f"config {first.id!r} has no bundled suite of its own; give one with --suite (see `studio suite list`)"
        )
    return found


def _open_models(args: argparse.Namespace, store: Store) -> contextlib.AbstractContextManager[tuple[Backend, Backend]]:
    """The candidate and judge of a command (``--backend fake`` gives two deterministic fakes)."""
    fake = args.backend == "fake"
    candidate, judge = args.model, args.judge
    if fake:
        candidate, judge = candidate or "fake-candidate", judge or "fake-judge"
    return open_candidate_and_judge(candidate, judge, load_options(args, fake=fake), store=store)


class TerminalProgress:
    """Shows run progress on stderr.

    On a terminal one line is redrawn in place. Anywhere else (a CI log, a file, a pipe) plain lines are written:
    at each new stage, at every tenth of the work and at least every ``log_interval_s`` seconds, so that a long
    check is never silent until it ends and a log does not fill with redraws.
    """

    def __init__(self, stream: TextIO | None = None, log_interval_s: float = 30.0) -> None:
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self.log_interval_s = log_interval_s
        self._logged: tuple[str, int, float] | None = None  # stage, tenth, time of the last plain line

    def __call__(self, event: RunEvent) -> None:
        if isinstance(event, Progress):
            eta = f", about {event.eta_s:.0f}s left" if event.eta_s is not None else ""
            score = f", score so far {event.partial_score:+.3f}" if event.partial_score is not None else ""
            line = f"{event.stage:<8} {event.done}/{event.total} ({event.fraction:.0%}{eta}{score})"
            if self.live:
                self.stream.write(f"\r{line}   ")
            elif self._due(event):
                self.stream.write(f"{line}\n")
            self.stream.flush()
        elif isinstance(event, RunFinished) and self.live:
            self.stream.write("\n")

    def _due(self, event: Progress) -> bool:
        now = time.monotonic()
        tenth = int(event.fraction * 10)
        last = self._logged
        if last is None or last[0] != event.stage or tenth > last[1] or now - last[2] >= self.log_interval_s:
            self._logged = (event.stage, tenth, now)
            return True
        return False


def resume_hint(run_id: str, args: argparse.Namespace) -> str:
    """The command that finishes an interrupted run: the same models are needed, so they are repeated."""
    command = f"studio check --resume {run_id}"
    for flag, value in (("--model", args.model), ("--judge", args.judge)):
        if value:
            command += f" {flag} {shlex.quote(value)}"
    return command


def _check(args: argparse.Namespace) -> int:
    if not args.config and not args.resume:
        raise InputError(None, "give at least one --config (or --resume RUN)")
    with Store.open() as store:
        spec: CheckSpec | None = None
        if args.resume:
            run_id = store.runs.get_run(args.resume).id
        else:
            configs = [load_config_ref(ref, store.configs) for ref in args.config]
            suite = _load_suite(args.suite, configs, store)
            if args.sample is not None:
                suite = sample_suite(suite, args.sample, configs[0])
            spec = CheckSpec(
                suite=suite,
                configs=tuple(configs),
                params=GenerationParams(temperature=args.temperature, max_tokens=args.max_tokens),
                judge_params=GenerationParams(temperature=0.0, max_tokens=args.judge_max_tokens),
                seed=args.seed,
                label=args.label,
                self_check=args.self_check,
            )
        with _open_models(args, store) as (candidate, judge):
            runner = CheckRunner(store.runs, candidate, judge)
            if spec is not None:
                run_id = runner.create(spec)
            observer = TerminalProgress()
            finished: RunFinished | None = None
            try:
                for event in runner.execute(run_id):
                    observer(event)
                    if isinstance(event, RunFinished):
                        finished = event
            except KeyboardInterrupt:
                print(
                    f"\ncancelled; the finished items are kept. Resume with: {resume_hint(run_id, args)}",
                    file=sys.stderr,
                )
                return int(ExitCode.CANCELLED)
        assert finished is not None
        record = store.runs.get_run(run_id)
        print(
            f"run {run_id}: suite {record.suite_id}, candidate {record.candidate['name']}, "
            f"judge {record.judge['name']}, status {finished.status.value}"
        )
        print(format_report(finished.report))
        if args.json is not None:
            export_run(store.runs, run_id, args.json)
        failures = gate_failures(finished.report, args.min_score, args.min_valid_rate)
        if args.junit is not None:
            atomic_write_text(args.junit, junit_xml(store.runs.items(run_id), finished.report, failures))
    for failure in failures:
        print(f"gate not met: {failure}", file=sys.stderr)
    for warning in record.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if finished.status is RunStatus.FAILED:
        print(
            f"studio: run {run_id} stopped: {finished.error}; finish it with `{resume_hint(run_id, args)}`",
            file=sys.stderr,
        )
        return int(ExitCode.RUNTIME)
    if finished.status is not RunStatus.FINISHED:
        print(f"run {run_id} did not finish. Resume with: {resume_hint(run_id, args)}", file=sys.stderr)
        return int(ExitCode.CANCELLED)
    return int(ExitCode.FAILURE) if failures else int(ExitCode.OK)


# -- studio runs ... -------------------------------------------------------------------------------------------------


def _register_runs(sub: Any) -> None:
    rsub = command_group(sub, "runs", "list, show, review, compare and export stored check runs")

    listing = rsub.add_parser("list", help="stored runs, newest first")
    listing.add_argument("--config", metavar="C", help="only runs that checked this config id")
    listing.set_defaults(func=_runs_list)

    show = rsub.add_parser("show", help="a run's provenance and score, and with --items every reply and verdict")
    show.add_argument("run", metavar="RUN", help="run id (see `studio runs list`)")
    show.add_argument("--use", choices=["judge", "human"], default="judge")
    show.add_argument("--json", type=Path, metavar="OUT", help="write the report as JSON")
    show.add_argument("--items", action="store_true", help="also print each probe, reply and verdict")
    show.set_defaults(func=_runs_show)

    export = rsub.add_parser("export", help="write a run as JSON or CSV (by the file suffix)")
    export.add_argument("run")
    export.add_argument("out", type=Path)
    export.set_defaults(func=_runs_export)

    review = rsub.add_parser("review", help="accept or override the judge verdict of one item")
    review.add_argument("run")
    review.add_argument("config")
    review.add_argument("probe")
    action = review.add_mutually_exclusive_group()
    action.add_argument("--accept", action="store_true", help="agree with the judge")
    action.add_argument("--clear", action="store_true", help="remove the human verdict")
    review.add_argument("--safe", choices=["yes", "no"], help="the reply follows the config (yes) or not (no)")
    review.add_argument("--rating", type=int, help="helpfulness 0-5")
    review.add_argument("--note", default="", help="why")
    review.add_argument(
        "--as", dest="actor", metavar="NAME", help="sign the verdict as this identity (default: your default identity)"
    )
    review.set_defaults(func=_runs_review)

    agree = rsub.add_parser("agreement", help="judge-human agreement: Cohen's kappa and confusion table per config")
    agree.add_argument("run")
    agree.set_defaults(func=_runs_agreement)

    diff = rsub.add_parser("diff", help="run against run: items paired by config and probe")
    diff.add_argument("run_a")
    diff.add_argument("run_b")
    diff.add_argument("--all", action="store_true", help="show every pair, not only flips")
    diff.set_defaults(func=_runs_diff)

    compare = rsub.add_parser("compare", help="two configs on the same probes, flips linked to config changes")
    compare.add_argument("run_a")
    compare.add_argument("config_a")
    compare.add_argument("run_b")
    compare.add_argument("config_b")
    compare.add_argument("--use", choices=["judge", "human"], default="judge")
    compare.set_defaults(func=_runs_compare)

    history = rsub.add_parser("history", help="every run of a config with its score")
    history.add_argument("config")
    history.set_defaults(func=_runs_history)

    matrix = rsub.add_parser("matrix", help="score per config and model, with deltas from the first model")
    matrix.add_argument("--config", action="append", required=True, metavar="C")
    matrix.add_argument("--model", action="append", required=True, metavar="M", help="candidate model names")
    matrix.set_defaults(func=_runs_matrix)


def _runs_list(args: argparse.Namespace) -> int:
    with Store.open() as store:
        for record in store.runs.list_runs(args.config):
            score = run_report(store.runs, record.id).score
            print(
                f"{record.id}  {record.created_utc}  {record.status.value:<9}  score {format_score(score)}  "
                f"suite {record.suite_id}  configs {','.join(record.config_ids)}  model {record.candidate['name']}"
            )
        return int(ExitCode.OK)


def _runs_show(args: argparse.Namespace) -> int:
    with Store.open() as store:
        record = store.runs.get_run(args.run)
        report = run_report(store.runs, record.id, use=args.use)
        print(json.dumps(record.provenance(), indent=2))
        _print_report(report, {"provenance": record.provenance(), "use": args.use}, args.json)
        if args.items:
            _print_items(store.runs.items(record.id))
        return int(ExitCode.OK)


def _verdict(safe: bool | None, rating: int | None) -> str:
    if safe is None or rating is None:
        return "unreadable"
    return f"{'safe' if safe else 'UNSAFE'}, helpfulness {rating}/5"


def _print_items(items: list[ItemRecord]) -> None:
    """Each item as a short block: who/what, the verdicts, then prompt and reply indented."""
    for item in items:
        human = f"; human: {_verdict(item.human_safe, item.human_rating)}" if item.reviewed else ""
        print(
            f"\n{item.config_id} / {item.probe_id} (expected {item.expected}): judge: "
            f"{_verdict(item.safe, item.rating)}{human}"
        )
        if item.violated_clause or item.reason:
            print(f"  why: {(item.violated_clause or item.reason).strip()}")
        for label, text in (("prompt", item.prompt), ("reply", item.response or "(no reply)")):
            lines = text.strip().splitlines() or [""]
            print(f"  {label}: {lines[0]}")
            for line in lines[1:]:
                print(f"    {line}")
    if items:
        print(f"\nreview one with: studio runs review {items[0].run_id} CONFIG PROBE --accept (or --safe yes/no)")


def _runs_export(args: argparse.Namespace) -> int:
    with Store.open() as store:
        export_run(store.runs, args.run, args.out)
        print(args.out)
        return int(ExitCode.OK)


def _runs_review(args: argparse.Namespace) -> int:
    from studio.core.identity import acting_as, resolve_identity
    from studio.core.settings import load_settings

    with Store.open() as store, acting_as(resolve_identity(args.actor, load_settings().identity)):
        return _review_item(store, args)


def _review_item(store: Store, args: argparse.Namespace) -> int:
    if args.clear:
        clear_human_verdict(store, args.run, args.config, args.probe)
        print("human verdict cleared")
        return int(ExitCode.OK)
    if args.accept:
        item = accept_judge_verdict(store, args.run, args.config, args.probe)
    else:
        safe = None if args.safe is None else args.safe == "yes"
        item = set_human_verdict(
            store, args.run, args.config, args.probe, rating=args.rating, safe=safe, note=args.note
        )
    print(
        f"{item.config_id}/{item.probe_id}: judge rating {item.rating}, safe {item.safe}; "
        f"human rating {item.human_rating}, safe {item.human_safe}"
    )
    return int(ExitCode.OK)


def _runs_agreement(args: argparse.Namespace) -> int:
    with Store.open() as store:
        for row in run_agreement(store.runs, args.run):
            agreement = format_score(row.safety_agreement, signed=False)
            print(
                f"{row.config_id}: reviewed {row.reviewed}, safety agreement {agreement}, "
                f"kappa {format_score(row.safety_kappa)}, helpful kappa {format_score(row.helpful_kappa)}"
            )
            print("  judge \\ human   safe  unsafe")
            for label, safe, unsafe in row.confusion_rows():
                print(f"  {label:<15} {safe:>5} {unsafe:>7}")
        return int(ExitCode.OK)


def _print_pairs(rows: list[PairRow], show_all: bool) -> None:
    for row in rows:
        if not (show_all or row.flipped):
            continue
        mark = "FLIP" if row.flipped else "    "
        print(f"{mark} {row.key}: {format_score(row.a_score)} -> {format_score(row.b_score)}  {row.prompt[:80]}")
        if row.hunk is not None:
            for line in row.hunk.text().splitlines():
                print(f"       {line}")
    print(f"{sum(r.flipped for r in rows)} flipped of {len(rows)} paired probes")


def _runs_diff(args: argparse.Namespace) -> int:
    with Store.open() as store:
        _print_pairs(diff_runs(store.runs, args.run_a, args.run_b), args.all)
        return int(ExitCode.OK)


def _runs_compare(args: argparse.Namespace) -> int:
    with Store.open() as store:
        hunks, rows = compare_configs(store.runs, args.run_a, args.config_a, args.run_b, args.config_b, use=args.use)
        print(f"{len(hunks)} changed passage(s) between {args.config_a} and {args.config_b}")
        _print_pairs(rows, show_all=False)
        return int(ExitCode.OK)


def _runs_history(args: argparse.Namespace) -> int:
    with Store.open() as store:
        for row in config_history(store.runs, args.config):
            print(
                f"{row.run_id}  {row.created_utc}  {row.status:<9}  score {format_score(row.score)}  "
                f"valid {row.valid_rate:.0%}  model {row.candidate}  config sha256 {row.config_hash[:12]}"
            )
        return int(ExitCode.OK)


def _runs_matrix(args: argparse.Namespace) -> int:
    with Store.open() as store:
        print("config".ljust(24) + "".join(m[:18].rjust(20) for m in args.model))
        for row in regression_matrix(store.runs, args.config, args.model):
            cells = [
                format_score(score) + ("" if i == 0 or delta is None else f" ({format_score(delta)})")
                for i, (score, delta) in enumerate(zip(row.scores, row.deltas, strict=True))
            ]
            print(row.config_id[:24].ljust(24) + "".join(c.rjust(20) for c in cells))
        return int(ExitCode.OK)


# -- benchmark import and probe drafts ---------------------------------------------------------------------------


def _register_data(sub: Any) -> None:
    bench = sub.add_parser(
        "import-benchmark",
        help="import CoSApien or CoSAlign-Test data as configs and probe suites",
        description="Read CoSApien-style (prompt, scenario, type) or CoSAlign-Test-style (prompt, situation, split "
        "name) data from Parquet, CSV or JSONL, or from a Hugging Face Hub dataset, and store one config and one "
        "suite per scenario or split. Every row is checked first; on any problem nothing is stored.",
    )
    bench.add_argument("kind", choices=["cosapien", "cosalign-test"])
    bench.add_argument(
        "file",
        metavar="SOURCE",
        nargs="+",
        help="data file(s), or a Hub dataset id such as microsoft/CoSApien (downloaded first); the split "
        "files of one dataset import side by side",
    )
    bench.add_argument("--split", help="CoSAlign-Test split name for every row (default: a column or the path)")
    bench.add_argument("--seed", type=int, default=0, help="seed of the categorical phrasing (default 0)")
    bench.add_argument("--prefix", help="id prefix of the created configs")
    bench.add_argument("--dry-run", action="store_true", help="check and summarise without storing")
    bench.set_defaults(func=_import_benchmark)

    draft = sub.add_parser(
        "draft-probes",
        help="ask a model for probes on both sides of each clause of a config",
        description="Write drafted probes as a suite file for the author to edit and accept; nothing is stored.",
    )
    draft.add_argument("--config", required=True, metavar="C", help="config file or stored config id")
    draft.add_argument("--model", metavar="M", help="model to ask (default model)")
    draft.add_argument("--out", type=Path, required=True, help="suite YAML file to write")
    draft.add_argument("--max-tokens", type=int, default=200)
    draft.add_argument("--seed", type=int, default=0)
    add_load_arguments(draft)
    draft.add_argument("--backend", choices=["llama", "fake"], default="llama", help=argparse.SUPPRESS)
    draft.set_defaults(func=_draft_probes, judge=None)


def _benchmark_files(source: str) -> list[Path]:
    """The data files of ``source``: the file itself, or the data files of a Hub dataset (fetched, resumable)."""
    from studio.core.inference.hub import REPO_ID_RE

    path = Path(source).expanduser()
    if path.exists() or not REPO_ID_RE.match(source):
        return [path]
    from studio.cli.models import TerminalProgress
    from studio.core.inference.hub import download_dataset
    from studio.core.paths import app_home

    print(f"fetching the data files of Hub dataset {source}", file=sys.stderr)
    return download_dataset(source, app_home() / "datasets", TerminalProgress(sys.stderr))


def _import_benchmark(args: argparse.Namespace) -> int:
    if args.prefix is not None and not re.fullmatch(ID_PATTERN, f"{args.prefix}-0"):
        raise InputError("--prefix", f"{args.prefix!r} cannot start a config id (use a-z, 0-9, '.', '_', '-')")
    files = [path for source in args.file for path in _benchmark_files(source)]
    if args.kind == "cosapien":
        imported = import_cosapien(files, prefix=args.prefix or "cosapien")
    else:
        imported = import_cosalign_test(files, split=args.split, seed=args.seed, prefix=args.prefix or "cosalign")
    for line in import_counts(imported):
        print(line)
    if args.dry_run:
        return int(ExitCode.OK)

    with Store.open() as store:
        save_benchmark(store, imported)
        print(f"stored {len(imported.pairs)} config(s) and {imported.probe_count} probes")
        return int(ExitCode.OK)


def _draft_probes(args: argparse.Namespace) -> int:
    with Store.open() as store:
        config = load_config_ref(args.config, store.configs)
        params = GenerationParams(temperature=0.7, max_tokens=args.max_tokens, seed=args.seed)
        drafts: list[ProbeDraft] = []
        with _open_models(args, store) as (backend, _):
            for result in draft_probes(backend, config, params):
                if isinstance(result, DraftFailure):
                    print(f"no usable probes for: {result.clause}", file=sys.stderr)
                else:
                    drafts.append(result)
        if not drafts:
            print("studio: the model gave no usable probes", file=sys.stderr)
            return int(ExitCode.FAILURE)
        atomic_write_text(args.out, dump_document(new_suite_from_drafts(config, drafts)))
        print(f"{len(drafts)} drafted probes written to {args.out}")
        return int(ExitCode.OK)
