"""``studio-train``: the headless trainer's command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def make_parser() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(prog="studio-train", description="CoSAlign training for CoSA Studio.")


def main(argv: Sequence[str] | None = None) -> int:
    make_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    return 0
