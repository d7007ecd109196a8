"""Who opens the studio database: only the command-line entry points and the app context. Everything else is
handed the store (or the repository it needs), so tests can give it a database in a temporary home and nothing
writes to the user's database behind its caller's back."""

from __future__ import annotations

import re
from pathlib import Path

STUDIO = Path(__file__).resolve().parents[2] / "studio"
OPENS = re.compile(r"\b(?:Store\.open|open_database)\(")


def _may_open(relative: str) -> bool:
    return relative.startswith(("cli/", "core/store/")) or relative in {"trainer/cli.py", "ui/context.py"}


def test_only_entry_points_and_the_app_context_open_the_database() -> None:
    openers = sorted(
        path.relative_to(STUDIO).as_posix()
        for path in STUDIO.rglob("*.py")
        if OPENS.search(path.read_text(encoding="utf-8"))
    )
    assert openers, "the pattern no longer finds any opener"
    assert [name for name in openers if not _may_open(name)] == []
    assert "ui/context.py" in openers and "trainer/cli.py" in openers
