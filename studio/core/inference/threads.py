"""Decode threads that follow the cores actually free.

llama.cpp's CPU threads meet at a barrier after every operation of the graph, hundreds of times per token. When
another process keeps one of the cores busy, a thread that waits at a barrier for a descheduled partner wastes
the rest of its time slice, and decoding with as many threads as cores becomes many times slower than decoding
with one. So before each job, and every few steps of a long one, the owner thread counts the other processes'
runnable tasks (``procs_running`` in ``/proc/stat`` less this process's own running threads; Linux only) and
lowers the thread count to the cores left, never below one and never above the configured count. Outputs do not
depend on the thread count: every output element of llama.cpp's CPU kernels is computed by one thread, in the
same order.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

#: Reads of ``procs_running`` per decision; the smallest wins, so a momentary spike (or this process's own
#: threads still spinning after a decode) does not count as load.
_READS = 3
_READ_GAP_S = 0.002


def usable_cores() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def runnable_tasks() -> int | None:
    """Tasks running or ready to run system-wide right now (this thread included), or None where unknown."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            for line in stat:
                if line.startswith("procs_running"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def own_running_threads() -> int:
    """Threads of this process that are running or ready to run (llama.cpp's workers may still be spinning)."""
    running = 0
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return 1
    for task in tasks:
        try:
            with open(f"/proc/self/task/{task}/stat", encoding="ascii", errors="replace") as stat:
                state = stat.read().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        running += state == "R"
    return max(1, running)


def other_runnable_tasks() -> int | None:
    """Runnable tasks of other processes right now, or None where unknown."""
    total = runnable_tasks()
    return None if total is None else max(0, total - own_running_threads())


def fitting_threads(configured: int, cores: int, read: Callable[[], int | None] = other_runnable_tasks) -> int:
    """How many decode threads fit beside other processes' runnable tasks (between 1 and ``configured``)."""
    readings: list[int] = []
    for attempt in range(_READS):
        value = read()
        if value is None:
            return configured
        readings.append(value)
        if value == 0:  # nothing else wants a core: no need to look again
            break
        if attempt + 1 < _READS:
            time.sleep(_READ_GAP_S)
    return max(1, min(configured, cores - min(readings)))


class ThreadFitter:
    """Keeps a llama.cpp context's thread count fitted to the free cores; called from the owner thread only."""

    def __init__(
        self,
        apply: Callable[[int], None],
        configured: int,
        enabled: bool = True,
        read: Callable[[], int | None] = other_runnable_tasks,
    ) -> None:
        self._apply = apply
        self._read = read
        self.configured = max(1, configured)
        self.enabled = enabled
        self.cores = usable_cores()
        self.current = self.configured

    def fit(self) -> int:
        """Re-count the free cores and apply the fitting thread count; returns it."""
        if not self.enabled:
            return self.current
        wanted = fitting_threads(self.configured, self.cores, self._read)
        if wanted != self.current:
            self._apply(wanted)
            self.current = wanted
        return wanted
