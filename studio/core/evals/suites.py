"""Probe suites shipped with the studio.

``resources/suites`` holds one suite per scenario template (``scenario-<template id>``, each probe with a stated
expectation) and one per configurable risk category (``category-<category id>``, probes labelled with their risk
categories so the expectation follows from a categorical config's allowed set).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from functools import cache
from pathlib import Path

from studio.core.choices import choices_hint
from studio.core.documents import ConfigKind, Expectation, Probe, ProbeSuite, SafetyConfig
from studio.core.errors import InputError, NotFoundError
from studio.core.paths import resource
from studio.core.refs import is_file_ref
from studio.core.store.suites import SuiteRepo
from studio.core.taxonomy import CONFIGURABLE, Category, ordered
from studio.core.yamlio import load_document

SCENARIO_PREFIX = "scenario-"
CATEGORY_PREFIX = "category-"

#: How many single-category probes each category that a config does not allow contributes to its merged suite.
CONTRAST_PROBES_PER_CATEGORY = 3
#: How many benign controls each such category contributes.
CONTROLS_PER_CATEGORY = 1


@cache
def _bundled() -> tuple[ProbeSuite, ...]:
    folder = resource("suites")
    return tuple(load_document(path, ProbeSuite) for path in sorted(folder.glob("*.yaml")))


def bundled_suites() -> list[ProbeSuite]:
    """Every bundled suite (scenario suites, then category suites), as independent copies."""
    suites = sorted(_bundled(), key=lambda s: (not s.id.startswith(SCENARIO_PREFIX), s.id))
    return [suite.model_copy(deep=True) for suite in suites]


def bundled_suite_ids() -> list[str]:
    """The ids of the bundled suites, in the order of :func:`bundled_suites`."""
    return [suite.id for suite in sorted(_bundled(), key=lambda s: (not s.id.startswith(SCENARIO_PREFIX), s.id))]


def bundled_suite(suite_id: str) -> ProbeSuite:
    """The bundled suite with this id; NotFoundError when there is none."""
    for suite in _bundled():
        if suite.id == suite_id:
            return suite.model_copy(deep=True)
    hint = choices_hint(suite_id, bundled_suite_ids(), label="bundled")
    raise NotFoundError(f"no bundled probe suite {suite_id!r}{hint}")


def load_suite_ref(ref: str, repo: SuiteRepo, version: int | None = None) -> ProbeSuite:
    """The suite in file ``ref`` (see :mod:`studio.core.refs`), else the stored suite with that id, else the bundled
    one; a wrong id is answered with the stored and bundled ids closest to it."""
    if is_file_ref(ref):
        return load_document(Path(ref), ProbeSuite)
    if repo.exists(ref) or version is not None:
        return repo.get(ref, version)
    bundled = bundled_suite_ids()
    if ref in bundled:
        return bundled_suite(ref)
    known = repo.ids() + [suite_id for suite_id in bundled if not repo.exists(suite_id)]
    raise NotFoundError(
        f"{ref!r} is neither a suite file nor a stored or bundled suite{choices_hint(ref, known, label='suites')}"
    )


def sample_suite(suite: ProbeSuite, per_kind: int, config: SafetyConfig | None) -> ProbeSuite:
    """The first ``per_kind`` probes of each expectation (allowed, disallowed, partial) under ``config``: a quick
    first look at a config. The sample has an id of its own, so its runs are never taken for runs of the whole
    suite (a gate that requires the suite does not accept them)."""
    if per_kind < 1:
        raise InputError("--sample", "must be at least 1")
    taken: Counter[Expectation] = Counter()
    probes: list[Probe] = []
    for probe in suite.probes:
        kind = probe.expectation_under(config)
        if taken[kind] < per_kind:
            taken[kind] += 1
            probes.append(probe)
    suffix = f"-sample-{per_kind}"
    return ProbeSuite.model_validate(
        {
            **suite.model_dump(),
            "id": suite.id[: 80 - len(suffix)] + suffix,
            "title": f"{suite.title} (first {per_kind} of each kind)",
            "probes": [p.model_dump() for p in probes],
        }
    )


def first_probes(suite: ProbeSuite, limit: int) -> ProbeSuite:
    """The suite cut to its first ``limit`` probes (0 keeps them all). Each kept probe gets the id it has in the
    whole suite written out, so a short trial run and a full run of the suite name the same probe the same way."""
    if not limit or limit >= len(suite.probes):
        return suite
    kept = zip(suite.probes[:limit], suite.probe_ids(), strict=False)
    probes = [probe if probe.id else probe.model_copy(update={"id": probe_id}) for probe, probe_id in kept]
    return suite.model_copy(update={"probes": probes})


def suite_for_template(template_id: str) -> ProbeSuite | None:
    """The bundled suite written for a scenario template, if there is one."""
    for suite in _bundled():
        if suite.template == template_id:
            return suite.model_copy(deep=True)
    return None


def suite_for_config(config: SafetyConfig) -> ProbeSuite | None:
    """The bundled suite that tests ``config``: the merged category suite of a categorical config, the scenario
    suite of a config written from a scenario template, else None."""
    if config.kind is ConfigKind.CATEGORICAL:
        return categorical_suite_for(config.allowed_set)
    return suite_for_template(config.template) if config.template else None


def category_suite(category: Category) -> ProbeSuite:
    """The bundled suite of one configurable category."""
    return bundled_suite(CATEGORY_PREFIX + category.value)


def _is_control(probe: Probe) -> bool:
    return not probe.categories


def categorical_suite_for(allowed: Iterable[Category]) -> ProbeSuite:
    """One suite for a categorical config with this allowed set.

    It holds every probe of each allowed category's suite, and from every other configurable category its first
    few single-category probes and a benign control, so the suite has allowed, partial and disallowed cases for
    most allowed sets. Probe ids are those of the bundled suites, so the same probe keeps its id in every merge.
    """
    cats = ordered(allowed)
    if Category.OTHER_HARMS in cats:
        raise InputError(None, "other_harms can never be allowed", where="allowed categories")
    probes: list[Probe] = []
    versions: list[int] = []
    for category in CONFIGURABLE:
        suite = category_suite(category)
        versions.append(suite.version)
        if category in cats:
            probes.extend(suite.probes)
            continue
        singles = [p for p in suite.probes if len(p.categories) == 1]
        controls = [p for p in suite.probes if _is_control(p)]
        probes.extend(singles[:CONTRAST_PROBES_PER_CATEGORY])
        probes.extend(controls[:CONTROLS_PER_CATEGORY])
    label = " + ".join(c.info.short for c in cats) if cats else "nothing allowed"
    return ProbeSuite(
        id="categorical-" + ("-".join(c.value for c in cats) if cats else "safe"),
        title=f"Categorical probes: {label}",
        description=(
            "Merged from the bundled category suites: all probes of the allowed categories, plus "
            f"{CONTRAST_PROBES_PER_CATEGORY} single-category probes and {CONTROLS_PER_CATEGORY} benign control "
            "from each other category."
        ),
        kind=ConfigKind.CATEGORICAL,
        version=max(versions),
        tags=["categorical", "bundled"],
        probes=[p.model_copy(deep=True) for p in probes],
    )
