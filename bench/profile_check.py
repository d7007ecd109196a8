"""Where the time of a check goes: the bundled game-studio suite on the embedded model, split by phase.

Every ``llama_decode`` call and every native sampling call is timed and attributed to the phase running at the
time (the candidate's replies, or a judge's verdicts); a batch with no sequence asking for logits is prefill only,
one where every token asks for logits is decode only, anything else is mixed. What is left of a phase's wall time
after the native calls is Python work (batch building, detokenizing, stop strings, events, the store).

Run inside the CPU lock from the repository root:
``flock /tmp/studio-cpu.lock .venv/bin/python -m bench.profile_check [--n-ctx N]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.bench_check import REPLY, SUITE, THREADS, VERDICT
from bench.common import machine, model_path
from studio.core.evals.runner import CheckRunner, CheckSpec, RunFinished
from studio.core.evals.suites import bundled_suite
from studio.core.inference.llama_backend import LlamaCppBackend, LlamaSettings
from studio.core.store.db import open_database
from studio.core.store.runs import RunStore
from studio.core.templates import new_config


@dataclass
class PhaseTimes:
    """Native time and token counts of one phase."""

    wall: float = 0.0
    calls: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    tokens: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    sample_s: float = 0.0
    samples: int = 0

    def native(self) -> float:
        return sum(self.seconds.values()) + self.sample_s


class Recorder:
    """Wraps llama.cpp's decode and sample entry points; attributes their time to the current phase."""

    def __init__(self) -> None:
        self.phase = "other"
        self.phases: dict[str, PhaseTimes] = defaultdict(PhaseTimes)

    def install(self) -> Callable[[], None]:
        import llama_cpp
        import llama_cpp.llama_cpp as low

        from studio.core.inference import batch as batching

        decode = low.llama_decode
        samplers = {cls: cls.sample for cls in (batching._NativeChain, batching._Greedy)}

        def timed_decode(ctx: Any, batch: Any) -> int:
            n = int(batch.n_tokens)
            wanted = sum(1 for i in range(n) if batch.logits[i]) if batch.logits else n
            kind = "prefill" if wanted == 0 else ("decode" if wanted == n else "mixed")
            start = time.perf_counter()
            status = int(decode(ctx, batch))
            times = self.phases[self.phase]
            times.seconds[kind] += time.perf_counter() - start
            times.calls[kind] += 1
            times.tokens[kind] += n
            times.tokens[kind + "_logits"] += wanted
            return status

        def timed(sample: Callable[..., int]) -> Callable[..., int]:
            def timed_sample(sampler: Any, ctx: Any, index: int) -> int:
                start = time.perf_counter()
                token = sample(sampler, ctx, index)
                times = self.phases[self.phase]
                times.sample_s += time.perf_counter() - start
                times.samples += 1
                return token

            return timed_sample

        for module in (llama_cpp, low):
            module.llama_decode = timed_decode  # type: ignore[assignment]
        for cls, sample in samplers.items():
            cls.sample = timed(sample)  # type: ignore[method-assign]

        def uninstall() -> None:
            for module in (llama_cpp, low):
                module.llama_decode = decode  # type: ignore[assignment]
            for cls, sample in samplers.items():
                cls.sample = sample  # type: ignore[method-assign]

        return uninstall

    @contextmanager
    def during(self, phase: str) -> Iterator[None]:
        previous, self.phase = self.phase, phase
        start = time.perf_counter()
        try:
            yield
        finally:
            self.phases[phase].wall += time.perf_counter() - start
            self.phase = previous


def phase_of(backend_call: str, requests: Any) -> str:
    """Name the phase of a batched call from what it asks."""
    if backend_call == "stream_batch":
        return "candidate"
    if backend_call == "stream_exchanges":
        return "replies with their verdicts"
    last = requests[0][-1].content if requests and requests[0] else ""
    return "judge:helpfulness" if '"rating"' in last else "judge:safety"


def wrap_backend(backend: LlamaCppBackend, recorder: Recorder) -> None:
    """Time the backend's batched entry points as phases (the owner thread runs while the caller iterates)."""
    for name in ("stream_batch", "stream_requests", "stream_exchanges"):
        original = getattr(backend, name)

        def wrapped(*args: Any, _original: Any = original, _name: str = name, **kwargs: Any) -> Iterator[Any]:
            phase = phase_of(_name, args[0] if _name == "stream_requests" else None)
            with recorder.during(phase):
                yield from _original(*args, **kwargs)

        setattr(backend, name, wrapped)


def report(recorder: Recorder, total: float) -> None:
    print(f"total wall {total:.1f} s")
    for phase, times in recorder.phases.items():
        python = times.wall - times.native()
        print(
            f"\n[{phase}] wall {times.wall:.1f} s, native {times.native():.1f} s, "
            f"rest (Python, hand-off) {python:.1f} s"
        )
        for kind in ("prefill", "mixed", "decode"):
            if times.calls[kind]:
                n, s = times.tokens[kind], times.seconds[kind]
                print(
                    f"  {kind:8s} {times.calls[kind]:5d} calls {s:7.1f} s  {n:6d} tokens "
                    f"({times.tokens[kind + '_logits']} with logits)  {1000 * s / times.calls[kind]:.1f} ms/call"
                )
        if times.samples:
            print(
                f"  sample   {times.samples:5d} calls {times.sample_s:7.1f} s  "
                f"{1e3 * times.sample_s / times.samples:.2f} ms/call"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Where the time of a check goes")
    parser.add_argument("--n-ctx", type=int, default=4096)
    parser.add_argument("--sequences", type=int, default=17)
    parser.add_argument("--kv", choices=["f16", "f32", "auto"], default="f16")
    parser.add_argument("--flash", choices=["auto", "on", "off"], default="auto", help="flash attention")
    parser.add_argument(
        "--native-sampling",
        action="store_true",
        help="greedy tokens through the full native chain, grammar over the whole vocabulary (for comparison)",
    )
    parser.add_argument("--judge-chunk", type=int, help="replies judged per batch (the runner's JUDGE_CHUNK)")
    args = parser.parse_args(argv)
    if args.judge_chunk:
        from studio.core.evals import runner

        runner.JUDGE_CHUNK = args.judge_chunk
    print(f"machine: {machine()}; threads {THREADS}; n_ctx {args.n_ctx}; suite {SUITE}", flush=True)
    if args.native_sampling:
        from studio.core.inference import batch as batching

        batching._Greedy = batching.native_greedy_chain  # type: ignore[assignment,misc]
    recorder = Recorder()
    uninstall = recorder.install()
    config = new_config("game-studio", config_id="game-studio")
    settings = LlamaSettings(
        gpu="cpu",
        max_context=args.n_ctx,
        n_threads=THREADS,
        cache_dir=None,
        parallel_sequences=args.sequences,
        kv_cache=args.kv,
        flash_attention=args.flash,
    )
    try:
        with tempfile.TemporaryDirectory() as home, LlamaCppBackend(model_path(), settings) as backend:
            wrap_backend(backend, recorder)
            db = open_database(Path(home) / "bench.db")
            spec = CheckSpec(suite=bundled_suite(SUITE), configs=(config,), params=REPLY, judge_params=VERDICT)
            start = time.perf_counter()
            finished = None
            for event in CheckRunner(RunStore(db), backend).check(spec):
                if isinstance(event, RunFinished):
                    finished = event
            total = time.perf_counter() - start
            db.close()
    finally:
        uninstall()
    assert finished is not None
    print(f"score {finished.report.score}, valid rate {finished.report.overall.valid_rate}")
    report(recorder, total)
    print(f"machine after: {machine()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
