"""``studio import-benchmark``: CoSApien or CoSAlign-Test data (files or a Hub dataset) stored as configs and suites."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from studio.core.documents import ID_PATTERN
from studio.core.errors import ExitCode, InputError
from studio.core.evals.importers import (
    import_cosalign_test,
    import_cosapien,
    import_counts,
    save_benchmark,
)
from studio.core.store.store import Store


def register(sub: Any) -> None:
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


#: File suffixes that make a source a local file, never a Hub dataset id: the data files the importers read, and
#: other files a mistyped source may name.
FILE_SUFFIXES = frozenset(".jsonl .ndjson .json .csv .tsv .parquet .arrow .txt .xlsx .xls .yaml .yml .gz .zip".split())


def looks_like_path(source: str) -> bool:
    """Whether ``source`` names a local file whether or not it exists: a data-file suffix (``data/Violence.jsonl``),
    an explicit folder (``./``, ``../``, ``/``, ``~``, a backslash) or a first part that is a folder here."""
    if source.startswith(("./", "../", "/", "~", ".\\", "..\\")) or "\\" in source:
        return True
    if Path(source).suffix.casefold() in FILE_SUFFIXES:
        return True
    first = source.split("/", 1)[0]
    return bool(first) and "/" in source and Path(first).is_dir()


def _source_kind(source: str) -> str:
    """``"file"`` for an existing data file, ``"hub"`` for a Hub dataset id; InputError for a file that is not
    there (a mistyped path is never looked up on the Hub) or a folder."""
    from studio.core.inference.hub import REPO_ID_RE

    path = Path(source).expanduser()
    if path.is_dir():
        raise InputError(path, "is a directory; give the data files in it")
    if path.exists():
        return "file"
    if REPO_ID_RE.match(source) and not looks_like_path(source):
        return "hub"
    raise InputError(path, "no such file")


def _benchmark_files(source: str) -> list[Path]:
    """The data files of ``source``: the file itself, or the data files of a Hub dataset (fetched, resumable)."""
    if _source_kind(source) == "file":
        return [Path(source).expanduser()]
    from studio.cli.models import TerminalProgress
    from studio.core.inference.hub import download_dataset
    from studio.core.paths import app_home

    print(f"fetching the data files of Hub dataset {source}", file=sys.stderr)
    return download_dataset(source, app_home() / "datasets", TerminalProgress(sys.stderr))


def _import_benchmark(args: argparse.Namespace) -> int:
    if args.prefix is not None and not re.fullmatch(ID_PATTERN, f"{args.prefix}-0"):
        raise InputError("--prefix", f"{args.prefix!r} cannot start a config id (use a-z, 0-9, '.', '_', '-')")
    for source in args.file:
        _source_kind(source)  # every local file checked before anything is fetched
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
