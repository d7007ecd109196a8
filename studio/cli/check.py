"""``studio check``: a probe suite under configs, judged and scored, stored as a resumable run; gates for CI."""

from __future__ import annotations

import argparse
import contextlib
import math
import shlex
import signal
import sys
import threading
import time
from collections.abc import Generator, Iterator
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from studio.core.documents import ProbeSuite, SafetyConfig
from studio.core.errors import ExitCode, InputError, NotFoundError
from studio.core.evals.reports import format_report, gate_failures, junit_xml
from studio.core.evals.runner import (
    CheckRunner,
    CheckSpec,
    Progress,
    RunEvent,
    RunFinished,
    check_export_path,
    export_run,
)
from studio.core.evals.suites import sample_suite
from studio.core.fileio import atomic_write_text, output_target
from studio.core.inference.base import Backend, GenerationParams
from studio.core.inference.opening import add_load_arguments, load_options, open_candidate_and_judge
from studio.core.paths import database_path
from studio.core.refs import is_file_ref, load_config_ref
from studio.core.settings import MAX_GPU_LAYERS, MAX_MAX_CONTEXT, MIN_MAX_CONTEXT, load_settings
from studio.core.store.runs import RunStatus
from studio.core.store.store import Store

#: The ranges of the numeric arguments of ``studio check``, checked before anything is loaded.
MAX_TOKENS = MAX_MAX_CONTEXT  # no reply can be longer than the largest context
MAX_TEMPERATURE = 2.0
MAX_SEED = 2**31 - 1
MAX_THREADS = 1024
MAX_LABEL_CHARS = 200
MAX_SAMPLE = 10_000  # the most probes a suite holds


def register(sub: Any) -> None:
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


def open_models(args: argparse.Namespace, store: Store) -> contextlib.AbstractContextManager[tuple[Backend, Backend]]:
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


def _finite(value: float, option: str, low: float, high: float, what: str) -> None:
    if not math.isfinite(value) or not low <= value <= high:
        raise InputError(option, f"must be a number from {low:g} to {high:g} ({what}), got {value:g}")


def _whole(value: int | None, option: str, low: int, high: int) -> None:
    if value is not None and value < low:
        raise InputError(option, f"must be at least {low}, got {value}")
    if value is not None and value > high:
        raise InputError(option, f"must be at most {high}, got {value}")


def _output(path: Path, option: str, inputs: tuple[Path, ...], what: str) -> None:
    """InputError naming ``option`` unless ``path`` can take the file: not a folder or special file, in a folder
    that exists, not one of the command's inputs (also one not created yet, such as a new database)."""
    if any(path.resolve() == source.resolve() for source in inputs):
        raise InputError(path, f"is also an input of this command; write the {what} somewhere else", where=option)
    try:
        output_target(path, inputs, what=what)
    except InputError as exc:
        raise InputError(exc.source, exc.message, line=exc.line, column=exc.column, where=option) from None


def _input_files(args: argparse.Namespace) -> tuple[Path, ...]:
    """The existing files a check reads (config and suite files, model files) and the studio database: an output
    written over one of them would destroy it."""
    refs = [*args.config, *(ref for ref in (args.suite, args.model, args.judge) if ref)]
    files = [Path(ref) for ref in refs if is_file_ref(ref) and Path(ref).is_file()]
    return (*files, database_path())


def validate_check_args(args: argparse.Namespace) -> None:
    """Every argument of ``studio check`` checked before any document, store or model is opened, so that a bad
    one is a one-line error now rather than after minutes of inference (or a gate that can never be met)."""
    if not args.config and not args.resume:
        raise InputError(None, "give at least one --config (or --resume RUN)")
    if args.resume is not None:
        kept = (
            ("--config", bool(args.config)),
            ("--suite", args.suite is not None),
            ("--sample", args.sample is not None),
        )
        given = [option for option, present in kept if present]
        if given:
            raise InputError("--resume", f"a resumed run keeps its own configs and suite; drop {', '.join(given)}")
    if args.min_score is not None:
        _finite(args.min_score, "--min-score", -1.0, 1.0, "the CoSA-Score range")
    if args.min_valid_rate is not None:
        _finite(args.min_valid_rate, "--min-valid-rate", 0.0, 1.0, "a share of the items")
    _finite(args.temperature, "--temperature", 0.0, MAX_TEMPERATURE, "0 is greedy")
    _whole(args.sample, "--sample", 1, MAX_SAMPLE)
    _whole(args.max_tokens, "--max-tokens", 1, MAX_TOKENS)
    _whole(args.judge_max_tokens, "--judge-max-tokens", 1, MAX_TOKENS)
    _whole(args.seed, "--seed", 0, MAX_SEED)
    _whole(args.n_ctx, "--n-ctx", MIN_MAX_CONTEXT, MAX_MAX_CONTEXT)
    _whole(args.threads, "--threads", 1, MAX_THREADS)
    if isinstance(args.gpu, int):
        _whole(args.gpu, "--gpu", 0, MAX_GPU_LAYERS)
    if len(args.label) > MAX_LABEL_CHARS or any(not ch.isprintable() for ch in args.label):
        raise InputError("--label", f"must be one line of at most {MAX_LABEL_CHARS} printable characters")
    inputs = _input_files(args)
    if args.json is not None:
        try:
            check_export_path(args.json)
        except InputError as exc:
            raise InputError(exc.source, exc.message, where="--json") from None
        _output(args.json, "--json", inputs, "run export")
    if args.junit is not None:
        if args.json is not None and args.junit.absolute().resolve() == args.json.absolute().resolve():
            raise InputError(
                args.junit, "is also the --json file; write the JUnit report somewhere else", where="--junit"
            )
        _output(args.junit, "--junit", inputs, "JUnit report")


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM (a cancelled CI job, ``kill``) stops the command as Ctrl-C does, so that a run is
    marked cancelled and can be resumed instead of staying ``running``; the previous handler is restored after.
    Signal handlers belong to the main thread: elsewhere the block changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def _check(args: argparse.Namespace) -> int:
    validate_check_args(args)
    load_settings()  # a damaged settings file is an error now, not when the finished run is signed
    with sigterm_as_interrupt():
        return _run_check(args)


def _run_check(args: argparse.Namespace) -> int:
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
        with open_models(args, store) as (candidate, judge):
            runner = CheckRunner(store.runs, candidate, judge)
            if spec is not None:
                run_id = runner.create(spec)
            observer = TerminalProgress()
            finished: RunFinished | None = None
            events = runner.execute(run_id)
            try:
                for event in events:
                    observer(event)
                    if isinstance(event, RunFinished):
                        finished = event
            except KeyboardInterrupt:
                # Stopped between two events (here, not inside the runner): the run is marked cancelled as it is
                # when the runner itself is interrupted.
                if isinstance(events, Generator):
                    with contextlib.suppress(KeyboardInterrupt, StopIteration):
                        events.throw(KeyboardInterrupt())
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
