"""``studio runs ...``: stored check runs listed, shown, reviewed, compared and exported."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from studio.cli.parser import command_group
from studio.cli.score import print_report
from studio.core.errors import ExitCode, StateError
from studio.core.evals.compare import PairRow, compare_configs, config_history, diff_runs, regression_matrix
from studio.core.evals.formatting import format_score
from studio.core.evals.review import (
    accept_judge_verdict,
    clear_human_verdict,
    run_agreement,
    set_human_verdict,
)
from studio.core.evals.runner import (
    export_run,
    run_report,
)
from studio.core.store.runs import ItemRecord
from studio.core.store.store import Store


def register(sub: Any) -> None:
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
    """Every run on one line; a damaged run is listed as such (the rest still show) and the exit code is 5."""
    damaged = 0
    with Store.open() as store:
        for run_id in store.runs.run_ids(args.config):
            try:
                record = store.runs.get_run(run_id)
                score = run_report(store.runs, record.id).score
            except StateError as exc:
                damaged += 1
                print(f"{run_id}  DAMAGED: {exc}")
                continue
            print(
                f"{record.id}  {record.created_utc}  {record.status.value:<9}  score {format_score(score)}  "
                f"suite {record.suite_id}  configs {','.join(record.config_ids)}  model {record.candidate['name']}"
            )
    if damaged:
        print(f"studio: error: {damaged} run(s) cannot be read (see DAMAGED above)", file=sys.stderr)
        return int(ExitCode.STATE)
    return int(ExitCode.OK)


def _runs_show(args: argparse.Namespace) -> int:
    with Store.open() as store:
        record = store.runs.get_run(args.run)
        report = run_report(store.runs, record.id, use=args.use)
        print(json.dumps(record.provenance(), indent=2))
        print_report(report, {"provenance": record.provenance(), "use": args.use}, args.json)
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
