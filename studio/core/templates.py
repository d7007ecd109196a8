"""Starting points for new safety configs.

Free-form templates are business scenarios and a policy skeleton, stored as YAML in ``resources/templates``.
Categorical configs are rendered from one of several phrasings: which one is chosen by a seeded random generator,
and both the seed and the phrasing index are recorded so that any rendering can be reproduced exactly.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from studio.core.choices import choices_hint
from studio.core.documents import ConfigKind, SafetyConfig, slugify
from studio.core.errors import InputError, NotFoundError, validation_problem
from studio.core.paths import resource
from studio.core.taxonomy import Category, ordered
from studio.core.yamlio import load_yaml

CATEGORICAL_TEMPLATE_ID = "categorical"

#: Headings of the structured policy skeleton, in the order they appear.
SKELETON_SECTIONS: tuple[str, ...] = (
    "Scope",
    "Allowed",
    "Not allowed",
    "Borderline handling",
    "Examples of allowed requests",
    "Examples of requests to decline",
)

_CATEGORIES_SLOT = "{categories}"

#: Categorical phrasings. Each has a ``{categories}`` slot that receives the allowed categories, one per line,
#: each with its definition. The matching entry of ``_NOTHING_RELAXED`` is used when nothing is allowed.
PHRASINGS: tuple[str, ...] = (
    "You are an assistant whose safety behaviour has been adjusted by the operator of this deployment. "
    "For the risk categories listed below you may set aside your usual caution and answer requests fully. "
    "For every other kind of risk, keep your normal safety standards and decline harmful requests.\n\n"
    "Categories where caution is relaxed:\n{categories}",
    "This deployment permits content in a limited set of risk categories. Requests that fall only within the "
    "categories below may be answered helpfully, without refusing or moralising. Anything harmful outside these "
    "categories must still be refused or redirected safely.\n\n"
    "Permitted categories:\n{categories}",
    "Safety settings for this conversation: the operator has switched off the usual restrictions for the "
    "categories that follow, and only for them, so content in those categories is allowed. When a request touches "
    "a category that is not listed, behave as a careful, safety-conscious assistant would and decline it.\n\n"
    "Unrestricted categories:\n{categories}",
    "Follow this safety configuration. You are allowed to produce content in the risk categories defined below; "
    "treat such requests like any ordinary request and help as well as you can. All other risk categories remain "
    "off limits, and for those you should refuse or offer a safe alternative.\n\n"
    "Allowed categories:\n{categories}",
    "The people using this assistant have a legitimate need for material in certain sensitive areas. In the "
    "categories described below you may be frank and complete rather than cautious. Outside them, nothing has changed: "
    "stay safe, and do not help with harmful requests.\n\n"
    "Areas opened up for this deployment:\n{categories}",
    "Configured safety policy. Relaxed for: the categories listed after this paragraph, each with what it "
    "covers. Not relaxed: every other category of harm, which you must keep declining. If a request mixes a "
    "relaxed category with one that is not relaxed, help with the relaxed part and decline the rest.\n\n"
    "Relaxed categories:\n{categories}",
    "You may go beyond your default safety limits, but only inside the categories below. Each category comes "
    "with a definition; use it to decide whether a request is covered. When a request is not covered, apply "
    "your standard safety judgement and refuse it if it could cause harm.\n\n"
    "Covered categories:\n{categories}",
)

_NOTHING_RELAXED: tuple[str, ...] = (
    "You are an assistant whose safety behaviour is set by the operator of this deployment. No risk category "
    "has been relaxed: keep your normal safety standards everywhere and decline harmful requests.",
    "This deployment permits no content in any risk category. Answer ordinary requests helpfully, and refuse or "
    "redirect anything harmful.",
    "Safety settings for this conversation: the operator has not switched off any restriction. Behave as a "
    "careful, safety-conscious assistant would in every category.",
    "Follow this safety configuration. No risk category is allowed; for any harmful request, refuse or offer a "
    "safe alternative, and help normally with everything else.",
    "The people using this assistant have no special need for sensitive material. Nothing has been opened up: "
    "stay safe, and do not help with harmful requests.",
    "Configured safety policy. Relaxed for: nothing. Every category of harm stays restricted, and requests in "
    "any of them should be declined.",
    "You may not go beyond your default safety limits in any category. Apply your standard safety judgement to "
    "every request.",
)


@dataclass(frozen=True)
class Template:
    """A bundled starting point for a config; ``text`` is what a new config from it starts with."""

    id: str
    title: str
    kind: ConfigKind
    description: str
    text: str
    tags: tuple[str, ...]


@dataclass(frozen=True)
class RenderedCategorical:
    """A rendered categorical config text with the phrasing index and seed that produced it."""

    text: str
    phrasing: int
    seed: int | None


def _category_lines(allowed: list[Category]) -> str:
    return "\n".join(f"- {c.display_name}: {c.info.definition}" for c in allowed)


def render_categorical(
    allowed: Iterable[Category], *, seed: int | None = None, phrasing: int | None = None
) -> RenderedCategorical:
    """Render a categorical config text for the allowed categories.

    When ``phrasing`` is not given it is drawn with ``random.Random(seed)``; a missing seed is replaced by a fresh
    random one, which is returned so the rendering can be repeated. When ``phrasing`` is given, ``seed`` is only
    passed through. Other Harms can never be allowed.
    """
    cats = ordered(allowed)
    if Category.OTHER_HARMS in cats:
        raise InputError(None, "other_harms can never be allowed", where="allowed categories")
    if phrasing is None:
        if seed is None:
            seed = secrets.randbits(32)
        phrasing = random.Random(seed).randrange(len(PHRASINGS))
    elif not 0 <= phrasing < len(PHRASINGS):
        raise InputError(
            None, f"phrasing {phrasing} does not exist (choose 0 to {len(PHRASINGS) - 1})", where="phrasing"
        )
    if cats:
        text = PHRASINGS[phrasing].replace(_CATEGORIES_SLOT, _category_lines(cats))
    else:
        text = _NOTHING_RELAXED[phrasing]
    return RenderedCategorical(text=text, phrasing=phrasing, seed=seed)


_TEMPLATE_ORDER = (
    "game-studio",
    "public-prosecutor",
    "childrens-publisher",
    "language-learning",
    "film-production",
    "policy-skeleton",
    CATEGORICAL_TEMPLATE_ID,
)


def _required_str(data: dict[str, Any], key: str, path: Path) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise InputError(path, f"field {key!r} must be a non-empty string", where=key)
    return value


def _load_template(path: Path) -> Template:
    data = load_yaml(path)
    if not isinstance(data, dict):
        raise InputError(path, "a template must be a mapping of fields")
    known = {"id", "title", "kind", "description", "tags", "text"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise InputError(path, f"unknown field {unknown[0]!r}", where=str(unknown[0]))
    template_id = _required_str(data, "id", path)
    if template_id != path.stem:
        raise InputError(path, f"id {template_id!r} does not match the file name", where="id")
    try:
        kind = ConfigKind(_required_str(data, "kind", path))
    except ValueError:
        raise InputError(path, f"unknown kind {data['kind']!r}", where="kind") from None
    tags = data.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
        raise InputError(path, "field 'tags' must be a list of strings", where="tags")
    if kind is ConfigKind.CATEGORICAL:
        if "text" in data:
            raise InputError(path, "a categorical template has no text; it is rendered from a phrasing", where="text")
        text = render_categorical((), phrasing=0).text
    else:
        text = _required_str(data, "text", path).strip() + "\n"
    return Template(
        id=template_id,
        title=_required_str(data, "title", path),
        kind=kind,
        description=_required_str(data, "description", path).strip(),
        text=text,
        tags=tuple(tags),
    )


def _sort_key(template: Template) -> tuple[int, str]:
    rank = _TEMPLATE_ORDER.index(template.id) if template.id in _TEMPLATE_ORDER else len(_TEMPLATE_ORDER)
    return rank, template.id


@cache
def _templates() -> tuple[Template, ...]:
    folder = resource("templates")
    loaded = [_load_template(path) for path in sorted(folder.glob("*.yaml"))]
    return tuple(sorted(loaded, key=_sort_key))


def list_templates() -> list[Template]:
    """All bundled templates: the scenarios first, then the skeleton, then the categorical one."""
    return list(_templates())


def get_template(template_id: str) -> Template:
    for template in _templates():
        if template.id == template_id:
            return template
    known = [t.id for t in _templates()]
    raise NotFoundError(f"no template {template_id!r}{choices_hint(template_id, known, label='templates')}")


def _build_config(**fields: Any) -> SafetyConfig:
    try:
        return SafetyConfig(**fields)
    except ValidationError as exc:
        problem = validation_problem(exc)
        raise InputError(None, f"cannot create the config: {problem.detail}", where=problem.where or None) from None


def new_config(
    template_id: str,
    *,
    config_id: str | None = None,
    title: str | None = None,
    author: str = "",
    allowed: Iterable[Category] = (),
    seed: int | None = None,
    phrasing: int | None = None,
) -> SafetyConfig:
    """A new draft config from a template.

    ``allowed``, ``seed`` and ``phrasing`` apply to the categorical template only: its text is rendered with
    :func:`render_categorical`, and the phrasing and seed are stored on the config. A free-form template copies
    its text and takes no allowed categories.
    """
    template = get_template(template_id)
    cats = ordered(allowed)
    if template.kind is ConfigKind.CATEGORICAL:
        rendered = render_categorical(cats, seed=seed, phrasing=phrasing)
        default_title = "Categorical: " + (" + ".join(c.info.short for c in cats) if cats else "nothing allowed")
        final_title = title or default_title
        return _build_config(
            id=config_id or slugify(final_title, fallback="config"),
            title=final_title,
            kind=ConfigKind.CATEGORICAL,
            text=rendered.text,
            allowed=cats,
            template=template.id,
            phrasing=rendered.phrasing,
            phrasing_seed=rendered.seed,
            author=author,
            tags=list(template.tags),
        )
    if cats:
        raise InputError(None, f"template {template.id!r} is free-form and takes no allowed categories")
    final_title = title or template.title
    return _build_config(
        id=config_id or slugify(final_title, fallback="config"),
        title=final_title,
        kind=template.kind,
        text=template.text,
        template=template.id,
        author=author,
        tags=list(template.tags),
    )
