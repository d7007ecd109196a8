"""torch's CPU threads follow the free cores during training, as llama.cpp's do during decoding."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

torch = pytest.importorskip("torch")

from studio.trainer.train import ProgressEvents, _TorchThreads  # noqa: E402


@pytest.fixture(autouse=True)
def _restore_threads() -> Iterator[None]:
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_threads_drop_while_another_process_is_busy_and_come_back() -> None:
    busy = [1]
    threads = _TorchThreads(2, read=lambda: busy[0])
    threads.fitter.cores = 2  # a two-core machine, whatever this one has
    assert threads.fit() == 1
    assert torch.get_num_threads() == 1
    busy[0] = 0
    assert threads.fit() == 2
    assert torch.get_num_threads() == 2


def test_every_step_refits(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    threads = _TorchThreads(2, read=lambda: 0)
    monkeypatch.setattr(threads, "fit", lambda: calls.append(1) or 2)
    events = ProgressEvents("sft", progress=None, threads=threads)  # type: ignore[arg-type]
    for _ in range(3):
        events.on_step_begin(None, None, None)
    assert len(calls) == 3
