"""What an audited write costs as the log grows: a config save in a long-lived process (the GUI), which checks only
what was added since its last write, against the same save checking the whole log first (what every write of a
process that just opened the store, or that saw another process write, does), measured in the same run.

Run: ``.venv/bin/python -m bench.bench_audit [--rows 100,1000,5000] [--writes 5]`` (a scratch home of its own).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _sizes(text: str) -> list[int]:
    try:
        sizes = sorted({int(part) for part in text.split(",")})
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of row counts: {text!r}") from None
    if not sizes or sizes[0] < 1:
        raise argparse.ArgumentTypeError(f"row counts must be positive: {text!r}")
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="audited write cost by log size")
    parser.add_argument("--rows", type=_sizes, default=[100, 1000, 5000], help="log sizes, comma-separated")
    parser.add_argument("--writes", type=int, default=5, choices=range(1, 101), metavar="1..100")
    args = parser.parse_args(argv)

    home = tempfile.mkdtemp(prefix="bench-audit-")
    os.environ["STUDIO_HOME"] = home
    os.environ["STUDIO_IDENTITY"] = "bench"
    from studio.core.documents import ConfigKind, SafetyConfig
    from studio.core.store import Store

    def config(n: int) -> SafetyConfig:
        return SafetyConfig(
            id=f"c{n}", title=f"Config {n}", kind=ConfigKind.FREE_FORM, text=f"Policy {n}.\n", author="bench"
        )

    made = 0

    def save(store: Store) -> None:
        nonlocal made
        store.configs.create(config(made))
        made += 1

    print(f"audited config saves, {args.writes} per figure; home {home}")
    with Store.open() as store:
        for rows in args.rows:
            logged = next(iter(store.db.query("SELECT COUNT(*) AS n FROM audit_log")))["n"]
            for _ in range(rows - logged):
                save(store)
            start = time.perf_counter()
            for _ in range(args.writes):
                save(store)
            cached = (time.perf_counter() - start) / args.writes
            start = time.perf_counter()
            for _ in range(args.writes):
                store.db.verified.clear()  # as after another process's write
                save(store)
            full = (time.perf_counter() - start) / args.writes
            start = time.perf_counter()
            problems = store.audit.verify()
            verify = time.perf_counter() - start
            print(
                f"{rows:7d} rows: a save {cached * 1000:7.1f} ms, checking the whole log {full * 1000:7.1f} ms "
                f"({full / cached:5.1f}x); `audit verify` {verify * 1000:7.1f} ms"
                + ("" if not problems else f"; {len(problems)} problem(s)!")
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
