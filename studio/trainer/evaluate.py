"""``studio-train evaluate``: how strongly a GGUF model prefers the chosen reply of held-out pairs.

For each pair, the summed log-probability of the chosen and of the rejected reply is computed from llama.cpp
logits, with the prompt rendered by the GGUF's own chat template (config in the system turn). The margin is
chosen minus rejected; training along CoSAlign should raise the mean margin and the share of pairs with a
positive margin. Comparing two files is fairest when both went through the same export and quantisation.

With a probe suite and configs, :func:`cosa_score` also runs the studio's check engine on each model, so the
CoSA-Score of the base and the trained model can be compared on a held-out suite.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.core.documents import ProbeSuite, SafetyConfig
from studio.core.errors import BackendError, InputError
from studio.core.inference.base import Backend, GenerationParams, Message
from studio.core.inference.embedded import sha256_file
from studio.trainer.progress import Progress

if TYPE_CHECKING:
    from studio.core.store.runs import RunStore


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


def pair_margins(
    model_path: Path,
    rows: Sequence[dict[str, Any]],
    *,
    n_ctx: int = 1024,
    threads: int = 2,
    progress: Progress | None = None,
) -> MarginReport:
    """Log-prob margins of ``rows`` (dicts with ``system``, ``prompt``, ``chosen``, ``rejected``) under a GGUF."""
    if not model_path.is_file():
        raise InputError(model_path, "model file not found")
    from llama_cpp import Llama

    from studio.core.inference.chat_render import ChatRenderer

    llm = Llama(str(model_path), n_ctx=n_ctx, n_threads=threads, logits_all=True, verbose=False)
    try:
        renderer = ChatRenderer(llm)
        margins: list[float] = []
        chosen_lp: list[float] = []
        rejected_lp: list[float] = []
        for done, row in enumerate(rows, start=1):
            messages = [Message("system", row["system"])] if row.get("system") else []
            messages.append(Message("user", row["prompt"]))
            prompt_ids = renderer.render(messages, add_generation_prompt=True)
            scores = []
            for key in ("chosen", "rejected"):
                completion = _completion_ids(renderer, messages, row[key], prompt_ids)
                if len(prompt_ids) + len(completion) > n_ctx:
                    raise InputError(None, f"pair {row.get('id', done)} needs more than n_ctx={n_ctx} tokens")
                scores.append(_sequence_logprob(llm, prompt_ids, completion))
            chosen_lp.append(scores[0])
            rejected_lp.append(scores[1])
            margins.append(scores[0] - scores[1])
            if progress is not None:
                progress.progress(f"evaluate:{model_path.name}", done, len(rows))
    finally:
        llm.close()
    count = len(margins)
    if count == 0:
        raise InputError(None, "no pairs to evaluate")
    return MarginReport(
        model=str(model_path),
        model_sha256=sha256_file(model_path),
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
