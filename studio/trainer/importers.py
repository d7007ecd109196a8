"""``studio-train import``: pairs from CoSAlign-Train-style files and from people's marks on probe exchanges.

CoSAlign-Train rows (JSONL or Parquet) have the columns ``system_prompt``, ``prompt``, ``chosen_response``,
``rejected_response`` and optionally ``mode``, ``spec_i``, ``spec_j``, ``chosen_cat``, ``rejected_cat``,
``chosen_category_error_score``, ``rejected_category_error_score``. Rows already in the studio's own pair format
(``system``, ``prompt``, ``chosen``, ``rejected``) are accepted too.

From exchanges: replies to the same prompt under the same config version, one marked *follows* and one marked
*violates*, make a pair (the follows reply is chosen).
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import product
from pathlib import Path
from typing import Any

from studio.core.errors import InputError
from studio.core.records import iter_json_lines, iter_parquet_rows
from studio.core.store.exchanges import Verdict
from studio.core.store.store import Store

_COSALIGN_COLUMNS = {
    "system_prompt": "system",
    "chosen_response": "chosen",
    "rejected_response": "rejected",
    "mode": "config_mode",
    "chosen_category_error_score": "chosen_score",
    "rejected_category_error_score": "rejected_score",
}
_KEPT = ("spec_i", "spec_j", "chosen_cat", "rejected_cat", "prompt_id", "allowed", "id")


def _read_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    if not path.is_file():
        raise InputError(path, "file not found")
    if path.suffix.lower() == ".parquet":
        yield from iter_parquet_rows(path)
    else:
        yield from iter_json_lines(path)


def normalise_row(row: dict[str, Any], path: Path, number: int) -> dict[str, Any]:
    """One imported row in the studio's pair format; an unusable row is an InputError naming its row number."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        target = _COSALIGN_COLUMNS.get(key, key)
        if target in ("system", "prompt", "chosen", "rejected", "config_mode", "chosen_score", "rejected_score"):
            out[target] = value
        elif key in _KEPT:
            out[key] = value
    where = f"row {number}"
    for name in ("prompt", "chosen", "rejected"):
        if not isinstance(out.get(name), str) or not out[name].strip():
            raise InputError(path, f"{name!r} (or its CoSAlign-Train column) must be a non-empty string", where=where)
    system = out.get("system")
    if system is not None and not isinstance(system, str):
        raise InputError(path, "'system' / 'system_prompt' must be a string", where=where)
    out["system"] = system or None
    out["source"] = f"{path.name}:{number}"
    return out


def import_file(path: Path) -> list[dict[str, Any]]:
    return [normalise_row(row, path, number) for number, row in _read_rows(path)]


def import_exchanges(store: Store, config_id: str | None = None, limit: int = 100_000) -> list[dict[str, Any]]:
    """Pairs from marked exchanges (follows = chosen, violates = rejected), per prompt and config version."""
    groups: dict[tuple[str | None, int | None, str], dict[Verdict, list[Any]]] = {}
    for exchange in store.exchanges.list(config_id, limit=limit):
        if exchange.verdict not in (Verdict.FOLLOWS, Verdict.VIOLATES):
            continue
        key = (exchange.config_id, exchange.config_version, exchange.prompt)
        groups.setdefault(key, {Verdict.FOLLOWS: [], Verdict.VIOLATES: []})[exchange.verdict].append(exchange)
    rows: list[dict[str, Any]] = []
    for (cfg_id, version, prompt), marked in sorted(
        groups.items(), key=lambda kv: (str(kv[0][0]), kv[0][1] or 0, kv[0][2])
    ):
        if not marked[Verdict.FOLLOWS] or not marked[Verdict.VIOLATES]:
            continue
        system = store.configs.get(cfg_id, version).text if cfg_id is not None else None
        for good, bad in product(marked[Verdict.FOLLOWS], marked[Verdict.VIOLATES]):
            rows.append(
                {
                    "system": system,
                    "prompt": prompt,
                    "chosen": good.reply,
                    "rejected": bad.reply,
                    "config_id": cfg_id,
                    "config_version": version,
                    "source": f"exchanges:{good.id}>{bad.id}",
                }
            )
    return rows
