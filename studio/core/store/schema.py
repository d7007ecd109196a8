"""Imports every module that registers migrations, so that :func:`ordered_migrations` sees them all."""

from studio.core.store import (  # noqa: F401  # noqa: F401
    approvals,
    audit,
    configs,
    drafts,
    exchanges,
    models,
    runs,
    suites,
)
