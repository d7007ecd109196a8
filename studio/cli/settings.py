"""``studio settings``: show every setting with its value and default, and change one by its key."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from studio.cli.parser import command_group
from studio.core.errors import ExitCode
from studio.core.settings import (
    StudioSettings,
    change_setting,
    identity_source,
    load_settings,
    setting_keys,
    setting_value,
    settings_path,
)

#: The setting whose shown value is the acting identity rather than the stored text.
IDENTITY_KEY = "identity"


def register(sub: Any) -> None:
    settings = command_group(sub, "settings", "show or change settings (identity, approval gate, inference)")
    show = settings.add_parser(
        "show",
        help="list every setting with its value and default",
        description="List every setting by its key, with its current value, its default and what it means.",
    )
    show.add_argument("--json", action="store_true", help="print a JSON array instead of a table")
    show.set_defaults(func=_settings_show)
    setp = settings.add_parser(
        "set",
        help="set one value, e.g. gate.min_valid_rate 0.5",
        description="Set one setting by its key; `none` clears an optional value. The keys are listed below "
        "(`studio settings show` prints their current values).",
        epilog=_settings_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    setp.add_argument("key", metavar="KEY", help="a key listed below, e.g. gate.min_valid_rate")
    setp.add_argument("value", metavar="VALUE", help="the new value (none clears an optional value)")
    setp.set_defaults(func=_settings_set)


def _settings_epilog() -> str:
    lines = []
    for key in setting_keys():
        lines.append(f"  {key.key}\n      {key.description} Takes {key.accepts}; default {_shown(key.default)}.")
    return "\n".join(lines) + "\n\nExample: studio settings set gate.min_valid_rate 0.5"


def _shown(value: Any) -> str:
    """A setting value as it is typed on the command line: plain text, none, true/false, numbers."""
    if value is None:
        return "none"
    return value if isinstance(value, str) else json.dumps(value)


def _shown_value(settings: StudioSettings, key: str, value: Any) -> str:
    """A value for the table; the identity is the one the studio acts as, with where it comes from, since an
    unset setting does not mean that nobody signs."""
    if key != IDENTITY_KEY:
        return _shown(value)
    name, source = identity_source(settings.identity)
    return f"{name} (from {source})"


def _settings_show(args: argparse.Namespace) -> int:
    settings = load_settings()
    rows = [(key, setting_value(settings, key.key)) for key in setting_keys()]
    if args.json:
        records: list[dict[str, Any]] = [
            {"key": k.key, "value": v, "default": k.default, "accepts": k.accepts, "description": k.description}
            for k, v in rows
        ]
        name, source = identity_source(settings.identity)
        for record in records:
            if record["key"] == IDENTITY_KEY:
                record.update(effective=name, source=source)
        print(json.dumps(records, indent=2))
        return int(ExitCode.OK)
    table = [["KEY", "VALUE", "DEFAULT", "MEANING"]]
    table += [[k.key, _shown_value(settings, k.key, v), _shown(k.default), k.description] for k, v in rows]
    widths = [max(len(row[i]) for row in table) for i in range(3)]
    for row in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[3])
    print(f"change one with: studio settings set KEY VALUE ({settings_path()})", file=sys.stderr)
    return int(ExitCode.OK)


def _settings_set(args: argparse.Namespace) -> int:
    # A bad new value is refused; a bad value already in the file is replaced (that is how the file is repaired).
    change = change_setting(args.key, args.value)
    print(f"{args.key} = {_shown(change.value)}")
    if change.still_bad is not None:
        print(f"studio: warning: {settings_path()} still has a bad setting: {change.still_bad}", file=sys.stderr)
    return int(ExitCode.OK)
