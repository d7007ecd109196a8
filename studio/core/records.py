"""Reading tabular records from JSON-lines and Parquet files, with errors that name the file and the line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from studio.core.errors import InputError


def iter_json_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for each non-blank line; InputError for invalid JSON, a non-object or non-UTF-8."""
    try:
        with path.open(encoding="utf-8-sig") as handle:  # a leading byte-order mark (Windows editors) is skipped
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    value = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InputError(path, f"not valid JSON ({exc.msg})", line=number, column=exc.colno) from None
                if not isinstance(value, dict):
                    raise InputError(path, "each line must be a JSON object", line=number)
                yield number, value
    except UnicodeDecodeError as exc:
        raise InputError(path, f"not UTF-8 text ({exc.reason})") from None


def iter_parquet_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(row number, record)`` of a Parquet file (needs pyarrow); InputError for an unreadable file."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError(path, "reading Parquet needs pyarrow (pip install pyarrow)") from None
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several unrelated types for unreadable files
        raise InputError(path, f"not a readable Parquet file ({exc})") from None
    yield from enumerate(table.to_pylist(), start=1)
