"""``studio-train evaluate``: how strongly a local model prefers the chosen reply of held-out pairs.

For each pair, the summed log-probability of the chosen and of the rejected reply is computed from llama.cpp
logits, with the prompt rendered by the GGUF's own chat template (config in the system turn). The margin is
chosen minus rejected; training along CoSAlign should raise the mean margin and the share of pairs with a
positive margin. Comparing two files is fairest when both went through the same export and quantisation.

With a probe suite and configs, :func:`cosa_score` also runs the studio's check engine on each model, so the
CoSA-Score of the base and the trained model can be compared on a held-out suite.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.core.documents import ProbeSuite, SafetyConfig
from studio.core.errors import BackendError, InputError, StateError
from studio.core.inference.base import Backend, GenerationParams, Message
from studio.core.inference.embedded import sha256_file
from studio.trainer.progress import Progress

if TYPE_CHECKING:
    from studio.core.store.runs import RunStore
    from studio.core.store.store import Store


@dataclass(frozen=True)
class MarginReport:
    model: str
    model_sha256: str
    pairs: int
    mean_margin: float
    positive_share: float
    mean_chosen_logprob: float
    mean_rejected_logprob: float
    margins: list[float]

    def summary(self) -> dict[str, Any]:
        record = asdict(self)
        del record["margins"]
        return record


def _log_softmax_at(logits: Any, token: int) -> float:
    import numpy as np

    row = np.asarray(logits, dtype=np.float64)
    peak = float(row.max())
    return float(row[token] - peak - np.log(np.exp(row - peak).sum()))


def _completion_ids(renderer: Any, messages: list[Message], response: str, prompt_ids: list[int]) -> list[int]:
    full: list[int] = renderer.render([*messages, Message("assistant", response)], add_generation_prompt=False)
    if full[: len(prompt_ids)] != prompt_ids:
        raise BackendError("the chat template renders the prompt differently once a reply is added")
    return full[len(prompt_ids) :]


def _sequence_logprob(llm: Any, prompt_ids: list[int], completion_ids: list[int]) -> float:
    tokens = prompt_ids + completion_ids
    llm.reset()
    llm.eval(tokens)
    total = 0.0
    for offset, token in enumerate(completion_ids):
        position = len(prompt_ids) + offset - 1
        total += _log_softmax_at(llm.scores[position], token)
    return total


def _pair_logprobs(rows: Sequence[dict[str, Any]], n_ctx: int) -> Callable[[Any], Iterator[tuple[float, float]]]:
    """The job that scores ``rows`` inside a llama.cpp backend's owner thread: (chosen, rejected) per row."""

    def job(llm: Any) -> Iterator[tuple[float, float]]:
        from studio.core.inference.chat_render import ChatRenderer

        renderer = ChatRenderer(llm)
        for number, row in enumerate(rows, start=1):
            messages = [Message("system", row["system"])] if row.get("system") else []
            messages.append(Message("user", row["prompt"]))
            prompt_ids = renderer.render(messages, add_generation_prompt=True)
            scores = []
            for key in ("chosen", "rejected"):
                completion = _completion_ids(renderer, messages, row[key], prompt_ids)
                if len(prompt_ids) + len(completion) > n_ctx:
                    raise InputError(None, f"pair {row.get('id', number)} needs more than n_ctx={n_ctx} tokens")
                scores.append(_sequence_logprob(llm, prompt_ids, completion))
            yield scores[0], scores[1]

    return job


def pair_margins(
    model: str,
    rows: Sequence[dict[str, Any]],
    *,
    n_ctx: int = 1024,
    threads: int = 2,
    progress: Progress | None = None,
    store: Store,
) -> MarginReport:
    """Log-prob margins of ``rows`` (dicts with ``system``, ``prompt``, ``chosen``, ``rejected``) under ``model``:
    a registered model or a GGUF path, opened like every model of the studio. An endpoint cannot be scored: chat
    servers return the log-probabilities of what they generate, not of a given reply."""
    from studio.core.inference.llama_backend import LlamaCppBackend
    from studio.core.inference.opening import LoadOptions, open_backend

    if not rows:
        raise InputError(None, "no pairs to evaluate")
    options = LoadOptions(max_context=n_ctx, threads=threads, use_cache=False, parallel_sequences=1, logits_all=True)
    backend = open_backend(model, options, store=store)
    chosen_lp: list[float] = []
    rejected_lp: list[float] = []
    try:
        if not isinstance(backend, LlamaCppBackend):
            raise StateError(
                f"{model}: log-prob margins need a local GGUF model; a {backend.info.kind} endpoint does not return "
                "the log-probabilities of a given reply (evaluate its GGUF file instead)"
            )
        for done, (chosen, rejected) in enumerate(backend.run_owned(_pair_logprobs(rows, n_ctx)), start=1):
            chosen_lp.append(chosen)
            rejected_lp.append(rejected)
            if progress is not None:
                progress.progress(f"evaluate:{Path(model).name}", done, len(rows))
        path, sha256 = backend.model_path, backend.info.model_sha256 or sha256_file(backend.model_path)
    finally:
        backend.close()
    margins = [c - r for c, r in zip(chosen_lp, rejected_lp, strict=True)]
    count = len(margins)
    return MarginReport(
        model=str(path),
        model_sha256=sha256,
        pairs=count,
        mean_margin=sum(margins) / count,
        positive_share=sum(1 for m in margins if m > 0) / count,
        mean_chosen_logprob=sum(chosen_lp) / count,
        mean_rejected_logprob=sum(rejected_lp) / count,
        margins=margins,
    )


def cosa_score(
    candidate: Backend,
    judge: Backend,
    suite: ProbeSuite,
    configs: Sequence[SafetyConfig],
    runs: RunStore,
    *,
    label: str,
    max_tokens: int = 128,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """CoSA-Score of ``candidate`` on ``suite`` under ``configs``, through the studio's check engine.

    The run is stored like any ``studio check`` run; the returned dict is its score report plus the run id.
    """
    from studio.core.evals.runner import CheckRunner, CheckSpec, RunFinished
    from studio.core.evals.runner import Progress as RunProgress

    spec = CheckSpec(suite=suite, configs=tuple(configs), params=GenerationParams(max_tokens=max_tokens), label=label)
    for event in CheckRunner(runs, candidate, judge).check(spec):
        if isinstance(event, RunProgress) and progress is not None:
            progress.progress(f"check:{label}:{event.stage}", event.done, event.total)
        if isinstance(event, RunFinished):
            return {"run_id": event.run_id, **event.report.as_dict()}
    raise BackendError(f"check run for {label} ended without a result")
