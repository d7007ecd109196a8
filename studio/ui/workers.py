"""Work done off the GUI thread.

Worker threads never touch Qt objects. They leave their results in plain Python state guarded by a lock, and a
timer on the GUI thread collects them. That one rule keeps every signal emission on the GUI thread and lets token
updates be coalesced: a fast model produces many tokens per timer tick, the view repaints once per tick.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, QTimer, Signal

from studio.core.inference.base import (
    Backend,
    CancelToken,
    GenerationParams,
    GenerationResult,
    Message,
    TokenEvent,
)

#: How often the GUI collects streamed tokens (milliseconds); 30-50 ms keeps typing-speed updates smooth.
TOKEN_FLUSH_MS = 40
#: How often finished background tasks are collected (milliseconds).
TASK_POLL_MS = 25
#: The trainer command (the GUI never imports the training stack); tests point it at a stand-in script.
DEFAULT_TRAINER: tuple[str, ...] = (sys.executable, "-m", "studio.trainer")
#: How long a subprocess asked to stop (SIGTERM) gets before it is killed (milliseconds).
KILL_AFTER_MS = 5000


class GenerationWorker(QObject):
    """Streams one reply at a time from a backend on a worker thread.

    ``text_arrived`` carries the text produced since the last tick; ``finished`` the final
    :class:`GenerationResult`; ``failed`` a one-line message.
    """

    text_arrived = Signal(str)
    finished = Signal(object)
    failed = Signal(str)

    def __init__(self, parent: QObject | None = None, flush_ms: int = TOKEN_FLUSH_MS) -> None:
        super().__init__(parent)
        self._lock = threading.Lock()
        self._pending: list[str] = []
        self._result: GenerationResult | None = None
        self._error: str | None = None
        self._thread: threading.Thread | None = None
        self._cancel: CancelToken | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(flush_ms)
        self._timer.timeout.connect(self._on_tick)

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self, backend: Backend, messages: Sequence[Message], params: GenerationParams) -> None:
        if self._thread is not None:
            raise RuntimeError("a reply is already streaming")
        self._pending = []
        self._result = None
        self._error = None
        self._cancel = CancelToken()
        self._thread = threading.Thread(
            target=self._run, args=(backend, list(messages), params, self._cancel), name="studio-generation"
        )
        self._thread.start()
        self._timer.start()

    def stop(self) -> None:
        """Ask the backend to stop; it does so before the next token."""
        if self._cancel is not None:
            self._cancel.cancel()

    def shutdown(self) -> None:
        """Cancel any reply and wait for the worker thread to end, without emitting further signals."""
        self.stop()
        thread = self._thread
        if thread is not None:
            thread.join()
        self._thread = None
        self._timer.stop()

    def _run(self, backend: Backend, messages: list[Message], params: GenerationParams, cancel: CancelToken) -> None:
        try:
            for event in backend.stream(messages, params, cancel):
                with self._lock:
                    if isinstance(event, TokenEvent):
                        self._pending.append(event.text)
                    else:
                        self._result = event
            if self._result is None:
                raise RuntimeError("the model stopped without a result")
        except Exception as exc:  # reported to the user as one line
            with self._lock:
                self._error = f"{type(exc).__name__}: {exc}" if not str(exc) else str(exc)

    def _on_tick(self) -> None:
        thread = self._thread
        done = thread is not None and not thread.is_alive()
        with self._lock:
            text = "".join(self._pending)
            self._pending.clear()
            result, error = self._result, self._error
        if text:
            self.text_arrived.emit(text)
        if not done or thread is None:
            return
        thread.join()
        self._thread = None
        self._timer.stop()
        if error is not None:
            self.failed.emit(error)
        elif result is not None:
            self.finished.emit(result)


class TaskRunner(QObject):
    """Runs short blocking calls (token counts, model loads, downloads) on threads and hands results back on the
    GUI thread through callbacks."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._tasks: list[_Task] = []
        self._timer = QTimer(self)
        self._timer.setInterval(TASK_POLL_MS)
        self._timer.timeout.connect(self._on_poll)

    @property
    def busy(self) -> bool:
        return bool(self._tasks)

    def submit(
        self,
        func: Callable[[], Any],
        on_done: Callable[[Any], None],
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        task = _Task(func, on_done, on_error)
        self._tasks.append(task)
        task.thread.start()
        self._timer.start()

    def wait_all(self, deliver: bool = False) -> None:
        """Join every running task (used when a window closes); with ``deliver`` their callbacks still run."""
        for task in self._tasks:
            task.thread.join()
        if deliver:
            self._on_poll()
        self._tasks.clear()
        self._timer.stop()

    def _on_poll(self) -> None:
        finished = [t for t in self._tasks if not t.thread.is_alive()]
        for task in finished:
            task.thread.join()
            self._tasks.remove(task)
        if not self._tasks:
            self._timer.stop()
        for task in finished:
            if task.error is None:
                task.on_done(task.result)
            elif task.on_error is not None:
                task.on_error(task.error)


class _Task:
    def __init__(
        self, func: Callable[[], Any], on_done: Callable[[Any], None], on_error: Callable[[str], None] | None
    ) -> None:
        self.func = func
        self.on_done = on_done
        self.on_error = on_error
        self.result: Any = None
        self.error: str | None = None
        self.thread = threading.Thread(target=self._run, name="studio-task")

    def _run(self) -> None:
        try:
            self.result = self.func()
        except Exception as exc:  # handed to on_error as one line
            self.error = str(exc) or type(exc).__name__


class BatchRelay(QObject):
    """Runs a generator on a :class:`TaskRunner` thread and hands its items to the GUI thread in batches.

    The worker only appends to a locked list; a GUI timer drains it, so ``items`` is emitted on the GUI thread at
    most once per tick (with a list). With ``stop_on_cancel`` the worker stops pulling items as soon as the
    cancel token is set; otherwise the generator is left to wind down itself (a check run records its own
    cancellation before it ends).
    """

    items = Signal(object)
    failed = Signal(str)
    done = Signal()

    def __init__(self, parent: QObject | None = None, flush_ms: int = TOKEN_FLUSH_MS, stop_on_cancel: bool = False):
        super().__init__(parent)
        self._tasks = TaskRunner(self)
        self._lock = threading.Lock()
        self._pending: list[Any] = []
        self._cancel: CancelToken | None = None
        self._stop_on_cancel = stop_on_cancel
        self._timer = QTimer(self)
        self._timer.setInterval(flush_ms)
        self._timer.timeout.connect(self._flush)

    @property
    def running(self) -> bool:
        return self._tasks.busy

    @property
    def cancelled(self) -> bool:
        return self._cancel is not None and self._cancel.cancelled

    def start(self, work: Callable[[CancelToken], Iterable[Any]]) -> None:
        if self._tasks.busy:
            raise RuntimeError("work is already running")
        cancel = CancelToken()
        self._cancel = cancel

        def consume() -> None:
            for item in work(cancel):
                with self._lock:
                    self._pending.append(item)
                if self._stop_on_cancel and cancel.cancelled:
                    return

        self._tasks.submit(consume, self._on_done, self._on_failed)
        self._timer.start()

    def cancel(self) -> None:
        if self._cancel is not None:
            self._cancel.cancel()

    def shutdown(self) -> None:
        """Cancel and wait for the worker without delivering anything more."""
        self.cancel()
        self._tasks.wait_all()
        self._timer.stop()
        with self._lock:
            self._pending.clear()

    def _flush(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
        if batch:
            self.items.emit(batch)

    def _on_done(self, _result: Any) -> None:
        self._flush()
        self._timer.stop()
        self.done.emit()

    def _on_failed(self, message: str) -> None:
        self._flush()
        self._timer.stop()
        self.failed.emit(message)
        self.done.emit()


class LineBuffer:
    """Splits a subprocess's output into whole lines: a line is handed out only once its newline has arrived, and
    whatever is left when the process ends is handed out by :meth:`finish`."""

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, data: bytes) -> list[str]:
        *lines, self._pending = (self._pending + data).split(b"\n")
        return [line.decode("utf-8", errors="replace") for line in lines]

    def finish(self, data: bytes = b"") -> list[str]:
        """The complete lines in ``data`` and the unterminated rest, if it is not blank; then start afresh."""
        lines = self.feed(data)
        rest, self._pending = self._pending, b""
        if rest.strip():
            lines.append(rest.decode("utf-8", errors="replace"))
        return lines


class TrainerProcess(QObject):
    """One run at a time of the trainer command as a subprocess of the studio (same home, unbuffered output).

    Its standard output is handed out as whole lines, its standard error as text; :meth:`stop` asks it to stop
    (SIGTERM) and kills it once ``kill_after_ms`` has passed; :meth:`shutdown` kills it and waits (window closing).
    Every run that started ends with exactly one ``ended`` signal, after its last line.
    """

    line = Signal(str)
    error_text = Signal(str)
    #: Exit code, whether the process exited by itself (it did not crash and was not killed), and whether it was
    #: asked to stop.
    ended = Signal(int, bool, bool)
    #: The command could not be started at all; no ``ended`` follows.
    failed_to_start = Signal()
    #: The process did not stop in time after :meth:`stop` and was killed.
    killed = Signal()

    def __init__(
        self, command: Sequence[str], home: Path, parent: QObject | None = None, kill_after_ms: int = KILL_AFTER_MS
    ) -> None:
        super().__init__(parent)
        self.command = tuple(command)
        self.home = home
        self.kill_after_ms = kill_after_ms
        self._process: QProcess | None = None
        self._lines = LineBuffer()
        self._stopping = False
        self._kill_timer = QTimer(self)
        self._kill_timer.setSingleShot(True)
        self._kill_timer.timeout.connect(self._kill)

    @property
    def running(self) -> bool:
        return self._process is not None

    def start(self, args: Sequence[str], work_dir: Path | None = None) -> None:
        """Run the command with ``args`` appended (in ``work_dir`` when given)."""
        process = QProcess(self)
        environment = QProcessEnvironment.systemEnvironment()
        environment.insert("STUDIO_HOME", str(self.home))
        environment.insert("PYTHONUNBUFFERED", "1")
        process.setProcessEnvironment(environment)
        if work_dir is not None:
            process.setWorkingDirectory(str(work_dir))
        process.readyReadStandardOutput.connect(self._on_stdout)
        process.readyReadStandardError.connect(self._on_stderr)
        process.finished.connect(self._on_finished)
        process.errorOccurred.connect(self._on_error)
        self._process = process
        self._lines = LineBuffer()
        self._stopping = False
        process.start(self.command[0], [*self.command[1:], *args])

    def stop(self) -> None:
        if self._process is not None:
            self._stopping = True
            self._process.terminate()
            self._kill_timer.start(self.kill_after_ms)

    def shutdown(self) -> None:
        process = self._process
        if process is not None:
            self._stopping = True
            process.kill()
            process.waitForFinished(self.kill_after_ms)

    def _kill(self) -> None:
        if self._process is not None:
            self.killed.emit()
            self._process.kill()

    def _on_stdout(self) -> None:
        if self._process is not None:
            for line in self._lines.feed(bytes(self._process.readAllStandardOutput().data())):
                self.line.emit(line)

    def _on_stderr(self) -> None:
        if self._process is not None:
            self.error_text.emit(bytes(self._process.readAllStandardError().data()).decode("utf-8", errors="replace"))

    def _on_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self._end()
            self.failed_to_start.emit()

    def _on_finished(self, exit_code: int, exit_status: QProcess.ExitStatus) -> None:
        rest = bytes(self._process.readAllStandardOutput().data()) if self._process is not None else b""
        for line in self._lines.finish(rest):
            self.line.emit(line)
        stopping = self._stopping
        self._end()
        self.ended.emit(exit_code, exit_status == QProcess.ExitStatus.NormalExit, stopping)

    def _end(self) -> None:
        self._kill_timer.stop()
        if self._process is not None:
            self._process.deleteLater()
        self._process = None
