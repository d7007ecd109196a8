"""``studio score``: CoSA-Score of a file of judged items, by the studio's strict parsing or the reference metric's."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from studio.core.errors import ExitCode, InputError
from studio.core.evals.importers import (
    explain_record,
    read_reference_items,
    read_score_items,
)
from studio.core.evals.reference import explain, format_table, score_reference
from studio.core.evals.reports import format_report
from studio.core.evals.scoring import Helpfulness, ScoreReport, Variant, score_items
from studio.core.fileio import output_target, write_output


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


def print_report(report: ScoreReport, extra: dict[str, Any] | None = None, out: Path | None = None) -> None:
    """The report as text on stdout and, given ``out``, as JSON there (with ``extra`` fields first)."""
    print(format_report(report))
    if out is not None:
        payload = {**(extra or {}), **report.as_dict()}
        write_output(out, json.dumps(payload, indent=2, ensure_ascii=False) + "\n", what="report")


def _score(args: argparse.Namespace) -> int:
    variant = Variant(args.variant)
    if args.json is not None:
        output_target(args.json, (args.items,), what="report")  # before any reading: never the items file
    if args.parsing == "reference":
        return _score_reference(args, variant)
    records = read_score_items(args.items, binary=args.binary)
    report = score_items(
        (r.scored(args.use, binary=args.binary) for r in records),
        helpfulness=Helpfulness.BINARY if args.binary else Helpfulness.GRADED,
        variant=variant,
    )
    print_report(report, {"source": str(args.items), "use": args.use, "parsing": "strict"}, args.json)
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
        write_output(args.json, json.dumps(payload, indent=2, ensure_ascii=False) + "\n", (args.items,), what="report")
    return int(ExitCode.OK)
