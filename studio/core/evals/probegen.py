"""Probe drafts from a config: ask a model for requests on both sides of each clause.

Free-form configs are split into clauses (sentences); for each clause the model writes one request the config
permits and one it forbids. Categorical configs get, per configurable category, one request inside the category
(its expectation follows from the allowed set) and one harmless near miss. Output is schema-constrained JSON.
The results are drafts: nothing is added to a suite until the author accepts them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from studio.core.documents import ConfigKind, Expectation, Probe, ProbeSuite, SafetyConfig
from studio.core.evals.compare import sentences
from studio.core.evals.judges import fill, json_objects, prompt_template
from studio.core.inference.base import Backend, CancelToken, GenerationParams, Message, StopReason
from studio.core.inference.concurrent import complete_concurrently
from studio.core.taxonomy import CONFIGURABLE, Category

MIN_CLAUSE_WORDS = 4
MAX_PROBE_CHARS = 600

CLAUSE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "allowed_probe": {"type": "string", "minLength": 8, "maxLength": MAX_PROBE_CHARS},
        "disallowed_probe": {"type": "string", "minLength": 8, "maxLength": MAX_PROBE_CHARS},
    },
    "required": ["allowed_probe", "disallowed_probe"],
    "additionalProperties": False,
}

CATEGORY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "inside": {"type": "string", "minLength": 8, "maxLength": MAX_PROBE_CHARS},
        "near_miss": {"type": "string", "minLength": 8, "maxLength": MAX_PROBE_CHARS},
    },
    "required": ["inside", "near_miss"],
    "additionalProperties": False,
}


@dataclass(frozen=True)
class ProbeDraft:
    """A proposed probe, the clause (or category) it tests, and the model's raw output."""

    text: str
    expected: Expectation | None
    categories: tuple[Category, ...]
    clause: str
    raw: str

    def to_probe(self) -> Probe:
        return Probe(
            text=self.text,
            expected=self.expected,
            categories=list(self.categories),
            notes=f"Drafted to test: {self.clause}",
        )


@dataclass(frozen=True)
class DraftFailure:
    """A clause for which the model's output could not be read."""

    clause: str
    raw: str


def clauses(config: SafetyConfig) -> list[str]:
    """The sentences of a free-form config long enough to state a rule."""
    return [s for s in sentences(config.text) if len(s.split()) >= MIN_CLAUSE_WORDS]


def _strings(raw: str, keys: Sequence[str]) -> list[str] | None:
    objects = [obj for obj in json_objects(raw) if all(isinstance(obj.get(k), str) for k in keys)]
    if not objects:
        return None
    values = [" ".join(str(objects[-1][k]).split()) for k in keys]
    return values if all(values) else None


def draft_probes(
    backend: Backend,
    config: SafetyConfig,
    params: GenerationParams | None = None,
    cancel: CancelToken | None = None,
) -> Iterator[ProbeDraft | DraftFailure]:
    """Drafts for every clause (free-form) or category (categorical), yielded as they arrive."""
    base = params or GenerationParams(temperature=0.7, max_tokens=200)
    if config.kind is ConfigKind.FREE_FORM:
        params = replace(base, json_schema=CLAUSE_SCHEMA)
        asks = [
            (clause, fill(prompt_template("probegen-clause"), {"config": config.text, "clause": clause}))
            for clause in clauses(config)
        ]
        for clause, raw in _answers(backend, asks, params, cancel):
            found = _strings(raw, ("allowed_probe", "disallowed_probe"))
            if found is None:
                yield DraftFailure(clause, raw)
                continue
            yield ProbeDraft(found[0], Expectation.ALLOWED, (), clause, raw)
            yield ProbeDraft(found[1], Expectation.DISALLOWED, (), clause, raw)
        return
    params = replace(base, json_schema=CATEGORY_SCHEMA)
    categories = {category.info.name: category for category in CONFIGURABLE}
    asks = [
        (name, fill(prompt_template("probegen-category"), {"category": name, "definition": category.info.definition}))
        for name, category in categories.items()
    ]
    for name, raw in _answers(backend, asks, params, cancel):
        found = _strings(raw, ("inside", "near_miss"))
        if found is None:
            yield DraftFailure(name, raw)
            continue
        yield ProbeDraft(found[0], None, (categories[name],), name, raw)
        yield ProbeDraft(found[1], Expectation.ALLOWED, (), name, raw)


def _answers(
    backend: Backend, asks: Sequence[tuple[str, str]], params: GenerationParams, cancel: CancelToken | None
) -> Iterator[tuple[str, str]]:
    """``(label, reply)`` per ask as replies finish: one at a time on a local model, up to the server's
    concurrency on an endpoint. Stops at cancel."""
    requests = [[Message("user", text)] for _, text in asks]
    for index, result in complete_concurrently(backend, requests, params, cancel):
        if result.stop_reason is StopReason.CANCELLED or (cancel is not None and cancel.cancelled):
            return
        yield asks[index][0], result.text


@dataclass
class EditableDraft:
    """A draft as the author reviews it: its text, expectation and notes may be edited, and it may be accepted."""

    text: str
    expected: Expectation | None
    categories: tuple[Category, ...]
    clause: str
    notes: str
    accepted: bool = False

    @classmethod
    def from_draft(cls, draft: ProbeDraft) -> EditableDraft:
        return cls(draft.text, draft.expected, draft.categories, draft.clause, draft.to_probe().notes)

    def expectations(self) -> list[Expectation | None]:
        """What the expectation may be set to: a stated one, or (for a probe with categories) none, so that it
        follows from the config's allowed set."""
        stated: list[Expectation | None] = list(Expectation)
        return [*stated, None] if self.categories else stated

    def to_probe(self) -> Probe:
        """The probe this draft stands for; raises ValidationError when the edits made it invalid."""
        return Probe.model_validate(
            {"text": self.text, "expected": self.expected, "categories": list(self.categories), "notes": self.notes}
        )


def _text_key(text: str) -> str:
    """Two probe texts are the same probe when they differ only in spacing and case."""
    return " ".join(text.split()).casefold()


def with_probes(suite: ProbeSuite, probes: Sequence[Probe]) -> tuple[ProbeSuite, int]:
    """A copy of ``suite`` with the probes whose text it does not hold yet appended, and how many those were."""
    known = {_text_key(p.text) for p in suite.probes}
    added: list[Probe] = []
    for probe in probes:
        key = _text_key(probe.text)
        if key not in known:
            known.add(key)
            added.append(probe)
    data = json.loads(suite.model_dump_json())
    data["probes"] = [*data["probes"], *(p.model_dump(mode="json") for p in added)]
    return ProbeSuite.model_validate(data), len(added)


def accept_drafts(suite: ProbeSuite, drafts: Sequence[ProbeDraft]) -> ProbeSuite:
    """A copy of ``suite`` with the accepted drafts appended (texts already in the suite are skipped)."""
    return with_probes(suite, [d.to_probe() for d in drafts])[0]


def drafted_suite_names(config: SafetyConfig) -> tuple[str, str]:
    """The id and title a new suite of probes drafted for ``config`` gets unless the author names it."""
    return f"{config.id}-drafted"[:80], f"Drafted probes for {config.title}"[:200]


def new_suite(
    config: SafetyConfig, probes: Sequence[Probe], suite_id: str | None = None, title: str | None = None
) -> ProbeSuite:
    """A fresh suite for ``config`` holding ``probes``; ValidationError for an unusable id or title."""
    default_id, default_title = drafted_suite_names(config)
    return ProbeSuite(
        id=default_id if suite_id is None else suite_id,
        title=default_title if title is None else title,
        kind=config.kind,
        template=config.template if config.kind is ConfigKind.FREE_FORM else None,
        probes=list(probes),
    )


def new_suite_from_drafts(config: SafetyConfig, drafts: Sequence[ProbeDraft]) -> ProbeSuite:
    """A fresh suite for ``config`` holding the accepted drafts."""
    return new_suite(config, [d.to_probe() for d in drafts])
