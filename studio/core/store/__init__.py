"""SQLite storage through sqlite-utils. This package owns all SQL of the studio."""

from studio.core.store.store import Store

__all__ = ["Store"]
