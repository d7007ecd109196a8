"""Named, ordered schema migrations. A shipped migration is never edited: add a new one instead.

Migrations are registered with :func:`migration` and applied in name order; names start with a four-digit number.
Number ranges per area keep them ordered: 0001-0009 configs and suites, 0010-0019 models and inference,
0020-0029 probe exchanges and drafts, 0030-0039 check runs, 0040-0049 approval and audit, 0050-0059 training.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlite_utils

Migration = Callable[[sqlite_utils.Database], None]

MIGRATIONS: dict[str, Migration] = {}


def migration(name: str) -> Callable[[Migration], Migration]:
    def register(func: Migration) -> Migration:
        if name in MIGRATIONS:
            raise RuntimeError(f"migration {name} registered twice")
        MIGRATIONS[name] = func
        return func

    return register


def ordered_migrations() -> list[tuple[str, Migration]]:
    # Importing the schema modules registers their migrations.
    from studio.core.store import schema  # noqa: F401

    return sorted(MIGRATIONS.items())
