"""Shipped migrations are pinned: their names, their order and their code, so none is edited or reordered silently.

Users' databases record which migrations ran; a shipped migration that changed afterwards would leave old and new
databases with different schemas. To change the schema, add a new migration (its name joins ``ordered_migrations``
and these tests keep passing); then add it to ``SHIPPED`` below once it is released.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import textwrap

from studio.core.store.migrations import Migration, ordered_migrations

#: (name, fingerprint of its code and the module constants it reads), in the order they are applied.
SHIPPED: tuple[tuple[str, str], ...] = (
    ("0001_configs", "a8d5dd0b64c41383"),
    ("0002_suites", "3fc7e830a4d7b7b1"),
    ("0010_models", "e13b68ee41f250dd"),
    ("0011_endpoints", "f97307ca0a266dc8"),
    ("0020_exchanges", "ecf311c62ae07aaa"),
    ("0021_drafts", "ceab9fc664073844"),
    ("0022_exchange_config_text", "ecb3c2b3724aed42"),
    ("0030_check_runs", "9821c2b7e38e2f05"),
    ("0031_self_verdicts", "d428aae3675958f4"),
    ("0032_item_errors_and_run_warnings", "24ac6c7f26e85651"),
    ("0040_audit_log", "714068ea11d1f15e"),
    ("0041_approvals", "6b6b7061ea55ca47"),
    ("0042_signed_statements", "8472524178077b53"),
)


def fingerprint(func: Migration) -> str:
    """A hash of what the migration does: its syntax tree (not its formatting) and the constants it reads."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    constants = sorted(
        (name, repr(value))
        for name, value in func.__globals__.items()
        if name in names and isinstance(value, str | int | float | tuple | frozenset)
    )
    return hashlib.sha256((ast.dump(tree) + repr(constants)).encode()).hexdigest()[:16]


def test_shipped_migrations_keep_their_names_and_order() -> None:
    applied = [name for name, _ in ordered_migrations()]
    shipped = [name for name, _ in SHIPPED]
    missing = [name for name in shipped if name not in applied]
    assert not missing, f"shipped migrations were renamed or removed: {missing}"
    assert [name for name in applied if name in shipped] == shipped


def test_shipped_migrations_are_never_edited() -> None:
    found = dict(ordered_migrations())
    edited = [name for name, expected in SHIPPED if name in found and fingerprint(found[name]) != expected]
    assert not edited, f"shipped migrations were edited (add a new migration instead): {edited}"


def test_migration_names_are_numbered() -> None:
    for name, _ in ordered_migrations():
        assert name[:4].isdigit() and name[4] == "_", name
