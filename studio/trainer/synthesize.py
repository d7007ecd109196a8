"""``studio-train synthesize``: CoSAlign preference pairs from seed prompts with known risk categories.

1. For each prompt, responses are generated under varied configs (no config, and configs sampled in the four
   modes), each with its own sampling seed.
2. Every response is labelled once, config-blind. With the ``judge`` labeler the harm judge flags its risk
   categories and the helpfulness judge rates it; "addressed" means a rating above 0. A response whose judge output
   cannot be read is dropped. The ``prompt-categories`` labeler is a heuristic for models too small to judge: a
   reply with a refusal phrase is not addressed and flags nothing; any other reply is addressed and flags exactly
   the seed prompt's known categories.
   A tiny generator almost never refuses; ``written_refusals`` adds one written refusal per prompt so that pairs
   can prefer declining where a config disallows the request.
3. For each prompt, training configs are sampled in the four modes, every labelled response is scored under
   each (see :mod:`studio.trainer.data`), and pairs are built. Each JSONL row carries everything needed to audit it;
   every labelled response, paired or not, goes to ``<out>.responses.jsonl`` with the judges' raw outputs.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from studio.core.evals.judges import HarmJudge, HarmVerdict, HelpfulnessJudge, HelpfulnessVerdict
from studio.core.evals.judging import Reply, harm_many, helpfulness_many
from studio.core.fileio import atomic_write_text, atomic_writer
from studio.core.inference.base import (
    Backend,
    BatchBackend,
    CancelToken,
    GenerationParams,
    GenerationResult,
    chat,
    max_concurrency,
)
from studio.core.inference.concurrent import complete_concurrently
from studio.core.paths import resource
from studio.core.taxonomy import CONFIGURABLE, Category, ordered
from studio.core.templates import render_categorical
from studio.core.yamlio import load_document
from studio.trainer.data import ConfigMode, error_score_tenths, preference_pairs, sample_configs
from studio.trainer.progress import Progress


class SeedPrompt(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,79}$")
    categories: list[Category] = Field(description="Risk categories of the request; empty for a benign one.")
    text: str = Field(min_length=1, max_length=20_000)

    @field_validator("categories")
    @classmethod
    def _ordered(cls, value: list[Category]) -> list[Category]:
        return ordered(value)


class SeedSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: Literal["cosa-studio/seed-prompts/v1"] = "cosa-studio/seed-prompts/v1"
    prompts: list[SeedPrompt] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> SeedSet:
        seen: set[str] = set()
        for prompt in self.prompts:
            if prompt.id in seen:
                raise ValueError(f"prompt id {prompt.id!r} is used twice")
            seen.add(prompt.id)
        return self


def default_seed_path() -> Path:
    return resource("trainer", "seed-prompts.yaml")


def load_seed_prompts(path: Path | None = None) -> list[SeedPrompt]:
    return load_document(path or default_seed_path(), SeedSet).prompts


@dataclass(frozen=True)
class SynthesisSettings:
    responses_per_prompt: int = 4
    seed: int = 0
    max_tokens: int = 96
    temperature: float = 0.9
    judge_max_tokens: int = 160
    #: "judge": addressed = helpfulness rating > 0; "markers": addressed = no refusal phrase (for tiny judges).
    addressed_by: Literal["judge", "markers"] = "judge"
    #: "judge": the harm judge flags categories; "prompt-categories": the heuristic of :func:`label_by_prompt`.
    labeler: Literal["judge", "prompt-categories"] = "judge"
    #: Add one written refusal per prompt to the generated replies (see :data:`WRITTEN_REFUSALS`).
    written_refusals: bool = False
    universe: tuple[Category, ...] = CONFIGURABLE


@dataclass(frozen=True)
class RenderedConfig:
    allowed: frozenset[Category]
    mode: str
    text: str | None
    phrasing: int | None
    phrasing_seed: int | None

    def record(self) -> dict[str, Any]:
        return {
            "allowed": [c.value for c in ordered(self.allowed)],
            "mode": self.mode,
            "text": self.text,
            "phrasing": self.phrasing,
            "phrasing_seed": self.phrasing_seed,
        }


@dataclass
class Response:
    prompt_index: int
    config: RenderedConfig
    seed: int
    text: str = ""
    flagged: frozenset[Category] | None = None
    rating: int | None = None
    judge_raw: dict[str, str] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return self.flagged is not None and self.rating is not None

    @property
    def addressed(self) -> bool:
        return self.rating is not None and self.rating > 0


@dataclass
class SynthesisSummary:
    prompts: int
    responses: int
    invalid_labels: int
    pairs: int
    skipped_equal: int
    out_path: str
    responses_path: str
    data_sha256: str
    manifest_path: str
    extra: dict[str, Any] = field(default_factory=dict)


def render(allowed: frozenset[Category], mode: str, rng: random.Random) -> RenderedConfig:
    seed = rng.getrandbits(32)
    rendered = render_categorical(ordered(allowed), seed=seed)
    return RenderedConfig(allowed, mode, rendered.text, rendered.phrasing, rendered.seed)


def plan_responses(prompts: Sequence[SeedPrompt], settings: SynthesisSettings, rng: random.Random) -> list[Response]:
    """The responses to generate: per prompt, one without a config and the rest under sampled configs."""
    planned: list[Response] = []
    for index, prompt in enumerate(prompts):
        configs = [RenderedConfig(frozenset(), "none", None, None, None)]
        sampled = sample_configs(prompt.categories, rng, universe=settings.universe)
        configs += [render(s.allowed, s.mode.value, rng) for s in sampled]
        for n in range(settings.responses_per_prompt):
            planned.append(Response(index, configs[n % len(configs)], rng.getrandbits(31)))
    return planned


def generate(
    backend: Backend,
    prompts: Sequence[SeedPrompt],
    planned: Sequence[Response],
    settings: SynthesisSettings,
    progress: Progress,
    cancel: CancelToken | None = None,
) -> None:
    """Fill in ``text`` of every planned response (batched by shared system turn when the backend can)."""
    total = len(planned)
    done = 0
    progress.progress("generate", 0, total)
    if isinstance(backend, BatchBackend):
        groups: dict[str | None, list[Response]] = {}
        for response in planned:
            groups.setdefault(response.config.text, []).append(response)
        for system, members in groups.items():
            # One sampling seed per shared system turn, recorded on every member.
            for member in members:
                member.seed = members[0].seed
            texts = [prompts[r.prompt_index].text for r in members]
            for index, event in backend.stream_batch(system, texts, _gen_params(settings, members[0].seed), cancel):
                if isinstance(event, GenerationResult):
                    members[index].text = event.text.strip()
                    done += 1
                    progress.progress("generate", done, total)
        return
    # A server takes up to its concurrency at once; anything else answers one request at a time.
    requests = [chat(r.config.text, prompts[r.prompt_index].text) for r in planned]
    params = [_gen_params(settings, r.seed) for r in planned]
    for index, result in complete_concurrently(backend, requests, params, cancel):
        planned[index].text = result.text.strip()
        done += 1
        progress.progress("generate", done, total)


#: Refusals added with ``written_refusals``: a tiny generator almost never declines on its own, so without them no
#: reply to a prompt would ever be preferred for declining. Each contains a refusal marker.
WRITTEN_REFUSALS = (
    "I'm sorry, but I can't help with that request.",
    "I can't assist with this one. If something is worrying you, a trusted person or a local support service can help.",
    "I won't write that, because it could be used to hurt someone. I'm happy to help with something else.",
    "I'm not able to help with this request, but I can talk about the topic in general, safe terms.",
    "I must decline this request. Let me know if there is another way I can help.",
    "I cannot provide that. Is there something related but harmless I could do instead?",
)

WRITTEN_REFUSAL_MODE = "written-refusal"


def add_written_refusals(prompts: Sequence[SeedPrompt], planned: list[Response], rng: random.Random) -> list[Response]:
    """One written refusal per prompt, appended after its generated replies; ``config.phrasing`` is its index."""
    extended: list[Response] = []
    for index in range(len(prompts)):
        extended += [r for r in planned if r.prompt_index == index]
        choice = rng.randrange(len(WRITTEN_REFUSALS))
        config = RenderedConfig(frozenset(), WRITTEN_REFUSAL_MODE, None, choice, None)
        extended.append(Response(index, config, seed=0, text=WRITTEN_REFUSALS[choice]))
    return extended


def _gen_params(settings: SynthesisSettings, seed: int) -> GenerationParams:
    return GenerationParams(temperature=settings.temperature, max_tokens=settings.max_tokens, seed=seed)


#: Phrases that open or carry a refusal; matched case-insensitively with straight or curly apostrophes.
REFUSAL_MARKERS = (
    "i can't",
    "i cannot",
    "i can not",
    "i won't",
    "i will not",
    "i'm not able to",
    "i am not able to",
    "i'm unable to",
    "i am unable to",
    "i'm sorry",
    "i am sorry",
    "i apologize",
    "i apologise",
    "as an ai",
    "not able to help",
    "can't help with",
    "cannot help with",
    "can't assist",
    "cannot assist",
    "i must decline",
    "i decline",
)


def is_refusal(text: str) -> bool:
    """Whether a reply refuses (an empty reply counts as a refusal)."""
    norm = " ".join(text.casefold().replace("\u2019", "'").split())
    return not norm or any(marker in norm for marker in REFUSAL_MARKERS)


#: Replies labelled per batch: the verdicts of one judge on a chunk decode together on their shared rubric.
LABEL_CHUNK = 16

#: Verdicts of one reply as they finish: (index in the chunk, harm verdict, helpfulness verdict or None).
Verdicts = Iterator[tuple[int, HarmVerdict, HelpfulnessVerdict | None]]


def label(
    judge_backend: Backend,
    prompts: Sequence[SeedPrompt],
    responses: Sequence[Response],
    settings: SynthesisSettings,
    progress: Progress,
    cancel: CancelToken | None = None,
) -> None:
    """Label every response with its flagged categories and whether it addresses the request.

    A local judge decodes a chunk's verdicts of one judge side by side; a server judge gets the requests of both
    judges for every reply through one queue, as many at once as its concurrency allows (as generation does).
    With ``addressed_by="markers"`` the helpfulness judge is not asked: a reply with a refusal phrase gets rating
    0, any other reply rating 5 (``judge_raw`` records which).
    """
    params = GenerationParams(temperature=0.0, max_tokens=settings.judge_max_tokens, seed=settings.seed)
    harm = HarmJudge(judge_backend, params)
    helpful = HelpfulnessJudge(judge_backend, params) if settings.addressed_by == "judge" else None
    served = max_concurrency(judge_backend) > 1 and not isinstance(judge_backend, BatchBackend)
    chunk = max(1, len(responses)) if served else LABEL_CHUNK
    progress.progress("label", 0, len(responses))
    done = 0
    for start in range(0, len(responses), chunk):
        part = responses[start : start + chunk]
        replies = [Reply(prompts[r.prompt_index].text, r.text, r.config.text) for r in part]
        verdicts = _served_verdicts if served else _batched_verdicts
        for index, harm_verdict, rating in verdicts(harm, helpful, replies, cancel):
            _apply_labels(part[index], harm_verdict, rating)
            done += 1
            progress.progress("label", done, len(responses))


def _batched_verdicts(
    harm: HarmJudge, helpful: HelpfulnessJudge | None, replies: Sequence[Reply], cancel: CancelToken | None
) -> Verdicts:
    """All helpfulness verdicts of the chunk first, then the harm verdicts (each judge's requests batch together)."""
    ratings = dict(helpfulness_many(helpful, replies, cancel)) if helpful is not None else {}
    for index, harm_verdict in harm_many(harm, replies, cancel):
        if helpful is None or index in ratings:
            yield index, harm_verdict, ratings.get(index)


def _served_verdicts(
    harm: HarmJudge, helpful: HelpfulnessJudge | None, replies: Sequence[Reply], cancel: CancelToken | None
) -> Verdicts:
    """Both judges' requests in one concurrent queue; a reply is done when its last verdict arrives. Requests that
    failed are raised together at the end (:class:`RequestsFailed`), after every finished reply was labelled."""
    judges: list[HarmJudge | HelpfulnessJudge] = [harm] if helpful is None else [harm, helpful]
    requests = [
        judge.messages(r.prompt, r.response)
        if isinstance(judge, HarmJudge)
        else judge.messages(r.system, r.prompt, r.response)
        for r in replies
        for judge in judges
    ]
    params = [judge.params for _ in replies for judge in judges]
    found: dict[int, list[Any]] = {}
    for number, result in complete_concurrently(harm.backend, requests, params, cancel):
        index, which = divmod(number, len(judges))
        found.setdefault(index, [None] * len(judges))[which] = judges[which].parse(result.text)
        if all(v is not None for v in found[index]):
            harm_verdict, *rating = found.pop(index)
            yield index, harm_verdict, rating[0] if rating else None


def _apply_labels(response: Response, harm_verdict: HarmVerdict, rating: HelpfulnessVerdict | None) -> None:
    response.flagged = harm_verdict.flagged
    response.judge_raw = {"harm": harm_verdict.raw}
    if rating is None:
        refused = is_refusal(response.text)
        response.rating = 0 if refused else 5
        response.judge_raw["addressed"] = "refusal markers: " + ("refusal" if refused else "no refusal")
    else:
        response.rating = rating.rating
        response.judge_raw["helpfulness"] = rating.raw


def label_by_prompt(
    prompts: Sequence[SeedPrompt], responses: Sequence[Response], progress: Progress | None = None
) -> None:
    """Heuristic labels without a judge: a refusal flags nothing; any other reply flags the prompt's categories.

    "Addressed" comes from the refusal markers (rating 0 for a refusal, 5 otherwise). This assumes that a reply
    which engages with a request touches exactly the request's categories, which holds only roughly; it exists
    for generators too small to judge their own replies, and ``judge_raw`` says that no judge was asked.
    """
    if progress is not None:
        progress.progress("label", 0, len(responses))
    for done, response in enumerate(responses, start=1):
        refused = is_refusal(response.text)
        response.rating = 0 if refused else 5
        response.flagged = frozenset() if refused else frozenset(prompts[response.prompt_index].categories)
        verdict = "refusal: flags nothing" if refused else "no refusal: flags the prompt's categories"
        response.judge_raw = {"labeler": f"prompt-categories heuristic, {verdict}"}
        if progress is not None:
            progress.progress("label", done, len(responses))


def build_pair_rows(
    prompts: Sequence[SeedPrompt], responses: Sequence[Response], settings: SynthesisSettings, rng: random.Random
) -> tuple[list[dict[str, Any]], int]:
    """Pairs over the valid responses of each prompt under freshly sampled training configs.

    Returns the rows and the number of response pairs skipped because their scores were equal.
    """
    by_prompt: dict[int, list[Response]] = {}
    for response in responses:
        if response.valid:
            by_prompt.setdefault(response.prompt_index, []).append(response)
    rows: list[dict[str, Any]] = []
    skipped_equal = 0
    for index, prompt in enumerate(prompts):
        pool = by_prompt.get(index, [])
        if len(pool) < 2:
            continue
        for sampled in sample_configs(prompt.categories, rng, universe=settings.universe):
            config = render(sampled.allowed, sampled.mode.value, rng)
            scores = [
                error_score_tenths(r.flagged or frozenset(), r.addressed, sampled.allowed, universe=settings.universe)
                for r in pool
            ]
            pairs = preference_pairs(scores)
            skipped_equal += sum(1 for i in range(len(pool)) for j in range(i + 1, len(pool)) if scores[i] == scores[j])
            for chosen, rejected in pairs:
                rows.append(_pair_row(prompt, config, pool[chosen], scores[chosen], pool[rejected], scores[rejected]))
    for number, row in enumerate(rows):
        row["id"] = f"pair-{number:06d}"
    return rows, skipped_equal


def _response_record(response: Response, score_tenths: int) -> dict[str, Any]:
    return {
        "text": response.text,
        "score": score_tenths / 10,
        "flagged": [c.value for c in ordered(response.flagged or frozenset())],
        "rating": response.rating,
        "addressed": response.addressed,
        "generated_under": response.config.record(),
        "generation_seed": response.seed,
    }


def _labelled_record(prompts: Sequence[SeedPrompt], response: Response) -> dict[str, Any]:
    return {
        "prompt_id": prompts[response.prompt_index].id,
        "prompt": prompts[response.prompt_index].text,
        "text": response.text,
        "valid": response.valid,
        "flagged": None if response.flagged is None else [c.value for c in ordered(response.flagged)],
        "rating": response.rating,
        "generated_under": response.config.record(),
        "generation_seed": response.seed,
        "judge_raw": response.judge_raw,
    }


def _pair_row(
    prompt: SeedPrompt,
    config: RenderedConfig,
    chosen: Response,
    chosen_score: int,
    rejected: Response,
    rejected_score: int,
) -> dict[str, Any]:
    return {
        "id": "",
        "prompt_id": prompt.id,
        "prompt": prompt.text,
        "prompt_categories": [c.value for c in prompt.categories],
        "config_mode": config.mode,
        "allowed": [c.value for c in ordered(config.allowed)],
        "system": config.text,
        "phrasing": config.phrasing,
        "phrasing_seed": config.phrasing_seed,
        "chosen": chosen.text,
        "rejected": rejected.text,
        "chosen_score": chosen_score / 10,
        "rejected_score": rejected_score / 10,
        "chosen_detail": _response_record(chosen, chosen_score),
        "rejected_detail": _response_record(rejected, rejected_score),
    }


def write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> str:
    """Write rows atomically; return the sha256 of the file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with atomic_writer(path) as handle:
        for row in rows:
            line = json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n"
            digest.update(line.encode())
            handle.write(line)
    return digest.hexdigest()


def synthesize(
    backend: Backend,
    judge_backend: Backend,
    prompts: Sequence[SeedPrompt],
    out_path: Path,
    settings: SynthesisSettings,
    progress: Progress,
    *,
    provenance: dict[str, Any] | None = None,
    cancel: CancelToken | None = None,
) -> SynthesisSummary:
    """Generate, label and pair; write the pairs JSONL and a manifest next to it."""
    rng = random.Random(settings.seed)
    planned = plan_responses(prompts, settings, rng)
    generate(backend, prompts, planned, settings, progress, cancel)
    if settings.written_refusals:
        planned = add_written_refusals(prompts, planned, random.Random(settings.seed + 1))
    if settings.labeler == "prompt-categories":
        label_by_prompt(prompts, planned, progress)
    else:
        label(judge_backend, prompts, planned, settings, progress, cancel)
    rows, skipped_equal = build_pair_rows(prompts, planned, settings, rng)
    digest = write_jsonl(out_path, rows)
    responses_path = out_path.with_name(out_path.name + ".responses.jsonl")
    write_jsonl(responses_path, [_labelled_record(prompts, r) for r in planned])
    manifest_path = out_path.with_name(out_path.name + ".manifest.json")
    summary = SynthesisSummary(
        prompts=len(prompts),
        responses=len(planned),
        invalid_labels=sum(1 for r in planned if not r.valid),
        pairs=len(rows),
        skipped_equal=skipped_equal,
        out_path=str(out_path),
        responses_path=str(responses_path),
        data_sha256=digest,
        manifest_path=str(manifest_path),
    )
    manifest = {
        "summary": asdict(summary),
        "settings": {**asdict(settings), "universe": [c.value for c in settings.universe]},
        "modes": [m.value for m in ConfigMode],
        "generator": backend.info.name,
        "generator_sha256": backend.info.model_sha256,
        "labeler": settings.labeler,
        "judge": judge_backend.info.name if settings.labeler == "judge" else None,
        "judge_sha256": judge_backend.info.model_sha256 if settings.labeler == "judge" else None,
        **(provenance or {}),
    }
    atomic_write_text(manifest_path, json.dumps(manifest, indent=2, sort_keys=True, default=str))
    return summary
