"""Imports every module that registers migrations, so that :func:`ordered_migrations` sees them all."""

from studio.core.store import configs  # noqa: F401
