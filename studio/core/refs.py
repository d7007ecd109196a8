"""One way to name a config or a suite on the command line: a file, or an id.

Every command that takes a config (``check``, ``probe``, ``draft-probes``) or a suite (``check``, ``suite
export``) reads the reference the same way, so what works for one works for all: a path ending in .yaml, .yml or
.json (or any existing file) is read as a document; anything else is a stored id, and for suites then a bundled id
(:func:`studio.core.evals.suites.load_suite_ref`, beside the bundled suites).
"""

from __future__ import annotations

from pathlib import Path

from studio.core.documents import SafetyConfig
from studio.core.store.configs import ConfigRepo
from studio.core.yamlio import load_document

DOCUMENT_SUFFIXES = (".yaml", ".yml", ".json")


def is_file_ref(ref: str) -> bool:
    """Whether ``ref`` names a document file rather than a stored id."""
    path = Path(ref)
    return path.suffix.casefold() in DOCUMENT_SUFFIXES or path.is_file()


def load_config_ref(ref: str, configs: ConfigRepo, version: int | None = None) -> SafetyConfig:
    """The config in file ``ref``, else the stored config with that id (latest version unless ``version``)."""
    if is_file_ref(ref):
        return load_document(Path(ref), SafetyConfig)
    return configs.get(ref, version)
