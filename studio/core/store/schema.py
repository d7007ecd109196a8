"""Imports every module that registers migrations, so that :func:`ordered_migrations` sees them all."""

from studio.core.store import configs  # noqa: F401
from studio.core.store import suites  # noqa: F401
from studio.core.store import approvals, audit  # noqa: F401
from studio.core.store import exchanges, drafts  # noqa: F401
from studio.core.store import models  # noqa: F401
from studio.core.store import runs  # noqa: F401
