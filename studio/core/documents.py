"""The documents users author: safety configs and probe suites.

All models are strict (``extra="forbid"``): an unknown field is an error, never silently dropped. Field
descriptions become the JSON Schemas shipped in ``resources/schema``.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from studio.core.taxonomy import Category, ordered

MAX_TEXT_CHARS = 60_000
ID_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,79}$"


#: Characters that end a line (those :meth:`str.splitlines` splits at).
_LINE_BREAK = re.compile("[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")


def title_problem(title: str) -> str | None:
    """Why ``title`` cannot title a config or suite, or None: a title is one line without control characters, as
    the library, the listings (``config list``) and the tables show it on one row.

    Applied where a title is given (``config new --title``, ``config edit --set-title``, a document imported or
    validated from a file), not when a stored version is read: a version stored before the rule stays readable.
    """
    if _LINE_BREAK.search(title):
        return "a title must be one line (it has a line break)"
    control = next((ch for ch in title if unicodedata.category(ch) == "Cc"), None)
    if control is not None:
        return f"a title must not hold control characters (it has {control!r})"
    return None


def utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def slugify(text: str, fallback: str = "item") -> str:
    """An id-safe slug of ``text``; accented Latin letters lose their accents ("Ünïcode" -> "unicode")."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.casefold()).strip("-")[:80].strip("-")
    return slug or fallback


class ConfigKind(StrEnum):
    FREE_FORM = "free-form"
    CATEGORICAL = "categorical"


class ConfigStatus(StrEnum):
    DRAFT = "draft"
    IN_REVIEW = "in_review"
    APPROVED = "approved"
    RETIRED = "retired"


class Expectation(StrEnum):
    """What a model following the config should do with a probe."""

    ALLOWED = "allowed"
    DISALLOWED = "disallowed"
    PARTIAL = "partial"

    @classmethod
    def parse(cls, text: str) -> Expectation:
        """Accept the spellings found in CoSApien-style data, case-insensitively."""
        norm = " ".join(text.strip().casefold().replace("_", " ").replace("-", " ").split())
        table = {
            "allowed": cls.ALLOWED,
            "disallowed": cls.DISALLOWED,
            "not allowed": cls.DISALLOWED,
            "partial": cls.PARTIAL,
            "partially allowed": cls.PARTIAL,
        }
        if norm not in table:
            raise ValueError(
                f"unknown probe type {text!r} (expected allowed, disallowed, partial or partially allowed)"
            )
        return table[norm]


def expectation_for(probe_categories: frozenset[Category] | set[Category], allowed: frozenset[Category]) -> Expectation:
    """Set logic for categorical configs: a probe is allowed when all its categories are allowed,
    disallowed when none are (or it has none and the config allows nothing relevant), partial otherwise."""
    cats = set(probe_categories)
    if Category.OTHER_HARMS in cats:
        inside = cats & set(allowed)
        return Expectation.PARTIAL if inside else Expectation.DISALLOWED
    if not cats:
        return Expectation.ALLOWED
    inside = cats & set(allowed)
    if inside == cats:
        return Expectation.ALLOWED
    if not inside:
        return Expectation.DISALLOWED
    return Expectation.PARTIAL


Tag = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[^\s,][^,]*$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, str_strip_whitespace=False)


class SafetyConfig(_Strict):
    """A safety config: the text placed in the system turn that says what the model may and may not do."""

    format: Literal["cosa-studio/config/v1"] = Field(
        default="cosa-studio/config/v1", description="Format marker of this document; always cosa-studio/config/v1."
    )
    id: str = Field(
        pattern=ID_PATTERN,
        description="Stable identifier: lower-case letters, digits, '.', '_' or '-', at most 80 characters.",
    )
    title: str = Field(min_length=1, max_length=200, description="Human-readable name shown in the library.")
    kind: ConfigKind = Field(
        description="free-form: a policy written in prose; categorical: allowed risk categories rendered "
        "from a phrasing template."
    )
    text: str = Field(
        min_length=1,
        max_length=MAX_TEXT_CHARS,
        description="The config text exactly as it is placed in the system turn.",
    )
    allowed: list[Category] = Field(
        default_factory=list,
        description="Risk categories this config allows (categorical configs only; never other_harms).",
    )
    template: str | None = Field(default=None, description="Id of the template the config was created from.")
    phrasing: int | None = Field(
        default=None, ge=0, description="Index of the categorical phrasing used to render the text."
    )
    phrasing_seed: int | None = Field(
        default=None, description="Seed that chose the categorical phrasing, recorded for reproducibility."
    )
    author: str = Field(default="", max_length=200, description="Who wrote this version.")
    created: datetime = Field(default_factory=utc_now, description="When the config was first created (UTC).")
    updated: datetime = Field(default_factory=utc_now, description="When this version was saved (UTC).")
    version: int = Field(default=1, ge=1, description="Version number; every saved change makes a new one.")
    status: ConfigStatus = Field(default=ConfigStatus.DRAFT, description="Lifecycle state of this version.")
    tags: list[Tag] = Field(default_factory=list, description="Free labels for search and grouping.")
    notes: str = Field(default="", max_length=MAX_TEXT_CHARS, description="Authoring notes; never sent to a model.")

    @field_validator("text")
    @classmethod
    def _text_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("config text is blank")
        return value

    @field_validator("allowed")
    @classmethod
    def _allowed_is_configurable(cls, value: list[Category]) -> list[Category]:
        if Category.OTHER_HARMS in value:
            raise ValueError("other_harms can never be allowed")
        if len(set(value)) != len(value):
            raise ValueError("allowed categories are listed more than once")
        return ordered(value)

    @field_validator("created", "updated")
    @classmethod
    def _aware_utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    @model_validator(mode="after")
    def _kind_rules(self) -> SafetyConfig:
        if self.kind is ConfigKind.FREE_FORM and self.allowed:
            raise ValueError("allowed categories are only for categorical configs")
        return self

    @property
    def allowed_set(self) -> frozenset[Category]:
        return frozenset(self.allowed)

    def content_hash(self) -> str:
        """sha256 of what reaches the model and decides scoring: kind, text and allowed categories."""
        payload = json.dumps(
            {"kind": self.kind.value, "text": self.text, "allowed": [c.value for c in self.allowed]},
            sort_keys=True,
            ensure_ascii=False,
        )
        return hashlib.sha256(payload.encode()).hexdigest()

    def document_hash(self) -> str:
        """sha256 of everything a person reads in this version (title, notes, tags, author label, ...) as well as
        its content; only the version number, the lifecycle status and the timestamps are left out, because they
        change around a version without changing what was reviewed."""
        fields = self.model_dump(mode="json", exclude={"version", "status", "created", "updated"})
        payload = json.dumps(fields, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode()).hexdigest()


class Probe(_Strict):
    """One prompt to try under a config."""

    id: str | None = Field(default=None, pattern=ID_PATTERN, description="Optional stable id within the suite.")
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS, description="The user turn sent to the model.")
    expected: Expectation | None = Field(
        default=None,
        description="Ideal behaviour under the suite's config: allowed (answer), disallowed (decline) or "
        "partial (answer the allowed part, decline the rest). May be left out when categories are given; it is "
        "then derived from a categorical config by set logic.",
    )
    categories: list[Category] = Field(
        default_factory=list, description="Risk categories the prompt touches (empty: none)."
    )
    notes: str = Field(default="", max_length=MAX_TEXT_CHARS, description="Why the probe exists, what to look for.")

    @field_validator("text")
    @classmethod
    def _text_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("probe text is blank")
        return value

    @field_validator("categories")
    @classmethod
    def _categories_ordered(cls, value: list[Category]) -> list[Category]:
        if len(set(value)) != len(value):
            raise ValueError("categories are listed more than once")
        return ordered(value)

    @model_validator(mode="after")
    def _has_expectation_or_categories(self) -> Probe:
        if self.expected is None and not self.categories:
            raise ValueError("a probe needs an expected behaviour or its risk categories")
        return self

    def expectation_under(self, config: SafetyConfig | None) -> Expectation:
        """The expected behaviour of this probe under ``config``.

        A stated expectation wins; otherwise it follows from the probe's categories and the config's allowed set.
        """
        if self.expected is not None:
            return self.expected
        allowed = config.allowed_set if config is not None else frozenset()
        return expectation_for(frozenset(self.categories), allowed)


class ProbeSuite(_Strict):
    """A named list of probes, usually written against one scenario or one risk category."""

    format: Literal["cosa-studio/suite/v1"] = Field(
        default="cosa-studio/suite/v1", description="Format marker of this document; always cosa-studio/suite/v1."
    )
    id: str = Field(pattern=ID_PATTERN, description="Stable identifier of the suite.")
    title: str = Field(min_length=1, max_length=200, description="Human-readable name.")
    description: str = Field(default="", max_length=MAX_TEXT_CHARS, description="What the suite covers.")
    kind: ConfigKind = Field(
        default=ConfigKind.FREE_FORM,
        description="The kind of config the suite is written for.",
    )
    template: str | None = Field(
        default=None, description="Id of the scenario template the suite targets (free-form suites)."
    )
    version: int = Field(default=1, ge=1, description="Version of the suite; bump it when probes change.")
    tags: list[Tag] = Field(default_factory=list, description="Free labels.")
    probes: list[Probe] = Field(min_length=1, max_length=10_000, description="The probes, in order.")

    @model_validator(mode="after")
    def _unique_probe_ids(self) -> ProbeSuite:
        seen: set[str] = set()
        for index, probe in enumerate(self.probes):
            if probe.id is None:
                continue
            if probe.id in seen:
                raise ValueError(f"probe id {probe.id!r} is used twice (probe {index + 1})")
            seen.add(probe.id)
        return self

    def probe_ids(self) -> list[str]:
        """Stable ids for every probe: the given id, else ``p<n>`` by position."""
        return [p.id or f"p{n + 1}" for n, p in enumerate(self.probes)]

    def content_hash(self) -> str:
        payload = json.dumps([p.model_dump(mode="json") for p in self.probes], sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode()).hexdigest()


def json_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schemas of the user-authored documents, keyed by file name."""
    return {
        "safety-config.schema.json": SafetyConfig.model_json_schema(),
        "probe-suite.schema.json": ProbeSuite.model_json_schema(),
    }
