"""Progress of ``studio-train`` commands as JSON lines on stdout (the GUI's Train pane reads them).

Every line is one JSON object with an ``event`` field and ``t`` (seconds since the command started). Events, and
the fields they always carry:

* ``start``: ``command``; plus what the command is about to do (``total`` steps or items when known).
* ``progress``: ``stage``, ``done``, ``total``, ``eta_s`` (``null`` until it can be estimated).
* ``step``: ``stage`` (``sft`` or ``dpo``), ``step``, ``total``, ``epoch``, ``loss``, ``eta_s``; DPO steps add
  ``reward_margin`` and ``reward_accuracy``.
* ``checkpoint``: ``path``, ``step``.
* ``log``: ``message`` (human-readable notes).
* ``done``: ``command`` and the command's results (paths, counts, figures).
* ``error``: ``message``, ``exit_code``.

Fields are only ever added, never renamed or removed, so readers can ignore what they do not know.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO


class Progress:
    """Writes progress events as JSON lines to a stream (stdout by default)."""

    def __init__(self, stream: TextIO | None = None, *, enabled: bool = True) -> None:
        """``enabled=False`` keeps a process silent (the non-first processes of a multi-GPU launch)."""
        self.stream = stream if stream is not None else sys.stdout
        self.enabled = enabled
        self.started = time.monotonic()
        self._stage_started: dict[str, float] = {}

    def emit(self, event: str, **fields: Any) -> None:
        if not self.enabled:
            return
        record = {"event": event, "t": round(time.monotonic() - self.started, 3), **fields}
        self.stream.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        self.stream.flush()

    def log(self, message: str) -> None:
        self.emit("log", message=message)

    def eta(self, stage: str, done: int, total: int) -> float | None:
        """Seconds left in ``stage`` at the rate seen so far (``None`` before the first item is done)."""
        now = time.monotonic()
        start = self._stage_started.setdefault(stage, now)
        if done <= 0 or total <= done:
            return None if done <= 0 else 0.0
        return round((now - start) / done * (total - done), 1)

    def progress(self, stage: str, done: int, total: int) -> None:
        self.emit("progress", stage=stage, done=done, total=total, eta_s=self.eta(stage, done, total))
