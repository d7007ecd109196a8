"""Many requests in flight against a model server, for backends that serve them side by side.

A local llama.cpp model decodes many prompts in one batch (:mod:`batch`); a server does the batching itself and
only needs several requests open at once. :func:`complete_concurrently` keeps up to the backend's
``max_concurrency`` requests in flight from a small thread pool, yields each result as it finishes, and keeps going
when one request fails: the failures are raised together at the end as :class:`RequestsFailed`, after every
other result was delivered, so a caller can store what succeeded and retry the rest later.

Cancelling stops new requests at once; requests in flight see the same cancel token and end within one token.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TypeVar

from studio.core.errors import BackendError, StudioError
from studio.core.inference.base import (
    Backend,
    CancelToken,
    GenerationParams,
    GenerationResult,
    Message,
    complete,
    max_concurrency,
)

T = TypeVar("T")


class RequestsFailed(BackendError):
    """Some requests failed after their retries; ``failures`` maps request index to a one-line reason."""

    def __init__(self, failures: dict[int, str], total: int) -> None:
        first = failures[min(failures)]
        super().__init__(f"{len(failures)} of {total} requests failed (first: {first})")
        self.failures = failures


def complete_concurrently(
    backend: Backend,
    requests: Sequence[Sequence[Message]],
    params: GenerationParams | Sequence[GenerationParams],
    cancel: CancelToken | None = None,
    *,
    limit: int | None = None,
) -> Iterator[tuple[int, GenerationResult]]:
    """``(index, result)`` of every request as it finishes, with at most ``limit`` (default: the backend's
    ``max_concurrency``) in flight; raises :class:`RequestsFailed` at the end when some failed."""

    def task(index: int) -> Callable[[CancelToken], GenerationResult]:
        own = params if isinstance(params, GenerationParams) else params[index]
        return lambda token: complete(backend, requests[index], own, token)

    width = limit if limit is not None else max_concurrency(backend)
    yield from run_concurrently([task(i) for i in range(len(requests))], width, cancel)


def run_concurrently(
    tasks: Sequence[Callable[[CancelToken], T]], width: int, cancel: CancelToken | None = None
) -> Iterator[tuple[int, T]]:
    """``(index, value)`` of every task as it finishes, ``width`` at a time. Each task gets a cancel token that is
    set when ``cancel`` is, or when the consumer stops early. A task failing with a :class:`StudioError` is
    collected (those in flight go on, no new one starts: a dead server should not be asked again and again) and
    all such failures are raised at the end as :class:`RequestsFailed`; tasks never started stay undone."""
    width = max(1, width)
    token = _Linked(cancel)
    failures: dict[int, str] = {}
    pending = iter(range(len(tasks)))
    with ThreadPoolExecutor(max_workers=width, thread_name_prefix="endpoint-request") as pool:
        running: dict[Future[T], int] = {}

        def refill() -> None:
            while len(running) < width and not token.cancelled and not failures:
                index = next(pending, None)
                if index is None:
                    return
                running[pool.submit(tasks[index], token)] = index

        try:
            refill()
            while running:
                finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for future in finished:
                    index = running.pop(future)
                    error = future.exception()
                    if error is None:
                        yield index, future.result()
                    elif isinstance(error, StudioError):
                        failures[index] = str(error)
                    else:
                        raise error
                refill()
        finally:
            token.cancel()  # a consumer that stops early (or an error) ends the requests still in flight
    if failures and not (cancel is not None and cancel.cancelled):
        raise RequestsFailed(failures, len(tasks))


class _Linked(CancelToken):
    """A cancel token that is also set when the caller's token is: lets this module stop its own requests without
    touching the caller's token."""

    def __init__(self, parent: CancelToken | None) -> None:
        super().__init__()
        self._parent = parent

    @property
    def cancelled(self) -> bool:
        if self._parent is not None and self._parent.cancelled:
            self.cancel()
        return super().cancelled

    def wait(self, seconds: float) -> bool:
        step = 0.05
        waited = 0.0
        while waited < seconds:
            if self.cancelled:
                return True
            if super().wait(min(step, seconds - waited)):
                return True
            waited += step
        return self.cancelled
