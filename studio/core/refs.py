"""One way to name a config or a suite on the command line: a file, or an id.

Every command that takes a config (``check``, ``probe``, ``draft-probes``) or a suite (``check``, ``suite
export``) reads the reference the same way, so what works for one works for all: a path ending in .yaml, .yml or
.json (or any existing file) is read as a document; anything else is a stored id, and for suites then a bundled id.
"""

from __future__ import annotations

from pathlib import Path

import sqlite_utils

from studio.core.choices import choices_hint
from studio.core.documents import ProbeSuite, SafetyConfig
from studio.core.errors import NotFoundError
from studio.core.store.configs import ConfigRepo
from studio.core.store.suites import SuiteRepo
from studio.core.yamlio import load_document

DOCUMENT_SUFFIXES = (".yaml", ".yml", ".json")


def is_file_ref(ref: str) -> bool:
    """Whether ``ref`` names a document file rather than a stored id."""
    path = Path(ref)
    return path.suffix.casefold() in DOCUMENT_SUFFIXES or path.is_file()


def load_config_ref(ref: str, db: sqlite_utils.Database, version: int | None = None) -> SafetyConfig:
    """The config in file ``ref``, else the stored config with that id (latest version unless ``version``)."""
    if is_file_ref(ref):
        return load_document(Path(ref), SafetyConfig)
    return ConfigRepo(db).get(ref, version)


def load_suite_ref(ref: str, db: sqlite_utils.Database, version: int | None = None) -> ProbeSuite:
    """The suite in file ``ref``, else the stored suite with that id, else the bundled one."""
    from studio.core.evals import suites

    if is_file_ref(ref):
        return load_document(Path(ref), ProbeSuite)
    repo = SuiteRepo(db)
    if repo.exists(ref) or version is not None:
        return repo.get(ref, version)
    bundled = suites.bundled_suite_ids()
    if ref in bundled:
        return suites.bundled_suite(ref)
    known = repo.ids() + [suite_id for suite_id in bundled if not repo.exists(suite_id)]
    raise NotFoundError(
        f"{ref!r} is neither a suite file nor a stored or bundled suite{choices_hint(ref, known, label='suites')}"
    )
