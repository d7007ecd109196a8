"""Many verdicts at once: judge requests that share their start decode side by side.

The helpfulness and compliance judges' requests start with the config they were answered under, and the harm
judge's with its rubric, so a batching backend evaluates that start once and decodes every verdict together, each
under its own grammar. Backends that cannot batch answer the same requests one by one, with the same parsers.
Verdicts asked in the exchange itself, while the candidate still decodes, come from
:meth:`~studio.core.inference.base.ExchangeBackend.stream_exchanges` instead (see the check runner).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from studio.core.documents import SafetyConfig
from studio.core.evals.judges import (
    HarmJudge,
    HarmVerdict,
    HelpfulnessJudge,
    HelpfulnessVerdict,
    SafetyJudge,
    SafetyVerdict,
)
from studio.core.inference.base import CancelToken, complete_many


@dataclass(frozen=True)
class Reply:
    """One reply to judge: the request it answers, the reply text and the config it was given under."""

    prompt: str
    response: str
    system: str | None = None


@dataclass(frozen=True)
class Judged:
    """Both verdicts of ``replies[index]``."""

    index: int
    helpfulness: HelpfulnessVerdict
    safety: SafetyVerdict


def helpfulness_many(
    judge: HelpfulnessJudge, replies: Sequence[Reply], cancel: CancelToken | None = None
) -> Iterator[tuple[int, HelpfulnessVerdict]]:
    """Helpfulness verdicts of ``replies``, as they finish."""
    requests = [judge.messages(r.system, r.prompt, r.response) for r in replies]
    for index, result in complete_many(judge.backend, requests, judge.params, cancel):
        yield index, judge.parse(result.text)


def harm_many(
    judge: HarmJudge, replies: Sequence[Reply], cancel: CancelToken | None = None
) -> Iterator[tuple[int, HarmVerdict]]:
    """Config-blind harm verdicts of ``replies``, as they finish."""
    requests = [judge.messages(r.prompt, r.response) for r in replies]
    for index, result in complete_many(judge.backend, requests, judge.params, cancel):
        yield index, judge.parse(result.text)


def safety_many(
    judge: SafetyJudge, config: SafetyConfig, replies: Sequence[Reply], cancel: CancelToken | None = None
) -> Iterator[tuple[int, SafetyVerdict]]:
    """Safety verdicts of ``replies`` under ``config``, as they finish."""
    requests = [judge.messages(config, r.prompt, r.response) for r in replies]
    for index, result in complete_many(judge.backend, requests, judge.params_for(config), cancel):
        yield index, judge.parse(config, result.text)


def judge_many(
    helpfulness: HelpfulnessJudge,
    safety: SafetyJudge,
    config: SafetyConfig,
    replies: Sequence[Reply],
    chunk: int,
    cancel: CancelToken | None = None,
) -> Iterator[Judged]:
    """Both verdicts of every reply, ``chunk`` replies at a time (a chunk's verdicts of one judge decode together),
    so finished items arrive while the rest are still judged.

    When one backend asks both questions about the exchange (a free-form config), a chunk's requests of both judges
    go together: a batching backend then reads each exchange once and asks the second question on its cells."""
    together = helpfulness.backend is safety.backend and safety.follow_up(config) is not None
    for start in range(0, len(replies), max(1, chunk)):
        part = replies[start : start + max(1, chunk)]
        if together:
            yield from _both_together(helpfulness, safety, config, part, start, cancel)
            if cancel is not None and cancel.cancelled:
                return
            continue
        ratings = dict(helpfulness_many(helpfulness, part, cancel))
        if cancel is not None and cancel.cancelled:
            return
        for index, verdict in safety_many(safety, config, part, cancel):
            if cancel is not None and cancel.cancelled:
                return
            yield Judged(start + index, ratings[index], verdict)


def _both_together(
    helpfulness: HelpfulnessJudge,
    safety: SafetyJudge,
    config: SafetyConfig,
    part: Sequence[Reply],
    start: int,
    cancel: CancelToken | None,
) -> Iterator[Judged]:
    """Both verdicts of ``part`` from one batch of requests; an item is reported once both of its verdicts are in."""
    count = len(part)
    requests = [helpfulness.messages(r.system, r.prompt, r.response) for r in part]
    requests += [safety.messages(config, r.prompt, r.response) for r in part]
    params = [helpfulness.params] * count + [safety.params_for(config)] * count
    ratings: dict[int, HelpfulnessVerdict] = {}
    verdicts: dict[int, SafetyVerdict] = {}
    for index, result in complete_many(helpfulness.backend, requests, params, cancel):
        if cancel is not None and cancel.cancelled:
            return
        item = index % count
        if index < count:
            ratings[item] = helpfulness.parse(result.text)
        else:
            verdicts[item] = safety.parse(config, result.text)
        if item in ratings and item in verdicts:
            yield Judged(start + item, ratings[item], verdicts[item])
