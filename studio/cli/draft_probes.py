"""``studio draft-probes``: a model drafts probes on both sides of each clause of a config, written as a suite file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from studio.cli.check import open_models
from studio.core.errors import ExitCode
from studio.core.evals.probegen import DraftFailure, ProbeDraft, draft_probes, new_suite_from_drafts
from studio.core.fileio import output_target, write_output
from studio.core.inference.base import GenerationParams
from studio.core.inference.opening import add_load_arguments
from studio.core.refs import load_config_ref
from studio.core.store.store import Store
from studio.core.yamlio import dump_document


def register(sub: Any) -> None:
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


def _draft_probes(args: argparse.Namespace) -> int:
    output_target(args.out, what="suite")  # before the model is loaded
    with Store.open() as store:
        config = load_config_ref(args.config, store.configs)
        params = GenerationParams(temperature=0.7, max_tokens=args.max_tokens, seed=args.seed)
        drafts: list[ProbeDraft] = []
        with open_models(args, store) as (backend, _):
            for result in draft_probes(backend, config, params):
                if isinstance(result, DraftFailure):
                    print(f"no usable probes for: {result.clause}", file=sys.stderr)
                else:
                    drafts.append(result)
        if not drafts:
            print("studio: the model gave no usable probes", file=sys.stderr)
            return int(ExitCode.FAILURE)
        write_output(args.out, dump_document(new_suite_from_drafts(config, drafts)), what="suite")
        print(f"{len(drafts)} drafted probes written to {args.out}")
        return int(ExitCode.OK)
