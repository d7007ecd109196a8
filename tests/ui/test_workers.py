"""The generation worker and the task runner: streaming off the GUI thread, coalescing, cancelling, joining."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from pytestqt.qtbot import QtBot

from studio.core.inference.base import (
    CancelToken,
    GenerationParams,
    GenerationResult,
    Message,
    StopReason,
    StreamEvent,
    complete,
)
from studio.core.inference.fake import FakeBackend
from studio.ui.workers import GenerationWorker, LineBuffer, TaskRunner

MESSAGES = [Message("system", "be kind"), Message("user", "tell me a story")]


def test_stream_delivers_every_token_in_fewer_updates(qtbot: QtBot) -> None:
    backend = FakeBackend(token_delay_s=0.004)
    params = GenerationParams(max_tokens=64)
    expected = complete(FakeBackend(), MESSAGES, params).text
    worker = GenerationWorker(flush_ms=40)
    chunks: list[str] = []
    worker.text_arrived.connect(chunks.append)
    with qtbot.waitSignal(worker.finished, timeout=5000) as finished:
        worker.start(backend, MESSAGES, params)
    result = finished.args[0]
    assert isinstance(result, GenerationResult)
    assert "".join(chunks) == expected == result.text
    assert len(chunks) < result.completion_tokens  # coalesced, not one repaint per token
    assert not worker.running


def test_stop_cancels_within_one_token(qtbot: QtBot) -> None:
    backend = FakeBackend(token_delay_s=0.05)
    worker = GenerationWorker()
    chunks: list[str] = []
    worker.text_arrived.connect(chunks.append)
    with qtbot.waitSignal(worker.text_arrived, timeout=5000):
        worker.start(backend, MESSAGES, GenerationParams(max_tokens=64))
    streamed_when_stopped = len("".join(chunks).split())
    with qtbot.waitSignal(worker.finished, timeout=5000) as finished:
        worker.stop()
    result = finished.args[0]
    assert result.stop_reason is StopReason.CANCELLED
    assert result.completion_tokens <= streamed_when_stopped + 2


class _BrokenBackend(FakeBackend):
    def stream(
        self, messages: Sequence[Message], params: GenerationParams, cancel: CancelToken | None = None
    ) -> Iterator[StreamEvent]:
        yield from list(super().stream(messages, params, cancel))[:2]
        raise RuntimeError("the model ran out of memory")


def test_backend_failure_is_one_line(qtbot: QtBot) -> None:
    worker = GenerationWorker()
    with qtbot.waitSignal(worker.failed, timeout=5000) as failed:
        worker.start(_BrokenBackend(), MESSAGES, GenerationParams())
    assert failed.args == ["the model ran out of memory"]
    assert not worker.running


def test_shutdown_joins_a_running_stream(qtbot: QtBot) -> None:
    worker = GenerationWorker()
    finished: list[object] = []
    worker.finished.connect(finished.append)
    worker.start(FakeBackend(token_delay_s=0.05), MESSAGES, GenerationParams(max_tokens=200))
    worker.shutdown()
    assert not worker.running
    qtbot.wait(60)
    assert finished == []


def test_task_runner_delivers_on_gui_thread(qtbot: QtBot) -> None:
    import threading

    runner = TaskRunner()
    seen: list[tuple[object, bool]] = []
    errors: list[str] = []
    runner.submit(
        lambda: 21 * 2, lambda value: seen.append((value, threading.current_thread() is threading.main_thread()))
    )
    runner.submit(lambda: 1 / 0, seen.append, errors.append)
    qtbot.waitUntil(lambda: bool(seen) and bool(errors), timeout=3000)
    assert seen == [(42, True)]
    assert errors == ["division by zero"]
    assert not runner.busy


def test_line_buffer_hands_out_whole_lines_and_the_rest_at_the_end() -> None:
    lines = LineBuffer()
    assert lines.feed(b'{"event": "st') == []
    assert lines.feed(b'art"}\n{"event": "step"}\n{"ev') == ['{"event": "start"}', '{"event": "step"}']
    assert lines.finish(b'ent": "done"}') == ['{"event": "done"}']
    assert lines.finish() == []  # nothing carried over
    assert lines.finish(b"  \n") == ["  "]  # a complete blank line is still a line
    assert lines.feed("é\n".encode()[:1]) == [] and lines.finish(b"\xa9") == ["é"]  # a character split across reads
