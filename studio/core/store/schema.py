"""Imports every module that registers migrations, so that :func:`ordered_migrations` sees them all."""

from studio.core.store import (  # noqa: F401
    approvals,
    audit,
    configs,
    drafts,
    endpoints,
    exchanges,
    models,
    runs,
    statements,
    suites,
)

# Add one name above for each new store module with migrations (keep the list sorted).
