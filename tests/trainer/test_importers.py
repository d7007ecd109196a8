"""Importing pairs: CoSAlign-Train rows (JSONL, Parquet) and marked probe exchanges."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from studio.core.documents import ConfigKind, SafetyConfig
from studio.core.errors import InputError
from studio.core.inference.base import GenerationParams, GenerationResult, StopReason
from studio.core.store import Store
from studio.core.store.exchanges import Verdict
from studio.trainer.importers import import_exchanges, import_file

COSALIGN_ROW = {
    "system_prompt": "Allowed: violence.",
    "prompt": "Write a fight scene.",
    "chosen_response": "The fight begins...",
    "rejected_response": "I cannot help.",
    "spec_i": "Violence",
    "spec_j": "Violence",
    "mode": "exact",
    "chosen_cat": "Violence",
    "rejected_cat": "",
    "chosen_category_error_score": 0.1,
    "rejected_category_error_score": 1.0,
}


def test_cosalign_jsonl_columns_are_mapped(tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps(COSALIGN_ROW) + "\n")
    (row,) = import_file(path)
    assert (row["system"], row["prompt"], row["chosen"], row["rejected"]) == (
        "Allowed: violence.",
        "Write a fight scene.",
        "The fight begins...",
        "I cannot help.",
    )
    assert row["config_mode"] == "exact" and row["chosen_score"] == 0.1 and row["spec_i"] == "Violence"
    assert row["source"] == "train.jsonl:1"


def test_cosalign_parquet(tmp_path: Path) -> None:
    path = tmp_path / "train.parquet"
    pq.write_table(pa.Table.from_pylist([COSALIGN_ROW, {**COSALIGN_ROW, "prompt": "Second"}]), path)
    rows = import_file(path)
    assert [r["prompt"] for r in rows] == ["Write a fight scene.", "Second"]


def test_missing_reply_names_the_row(tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps(COSALIGN_ROW) + "\n" + json.dumps({**COSALIGN_ROW, "chosen_response": ""}) + "\n")
    with pytest.raises(InputError, match=r"train\.jsonl \(row 2\): 'chosen'"):
        import_file(path)


def test_broken_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps(COSALIGN_ROW) + "\n{nope\n")
    with pytest.raises(InputError, match=r"train\.jsonl:2:2: not valid JSON"):
        import_file(path)


def test_marked_exchanges_become_pairs(tmp_path: Path) -> None:
    with Store.open(tmp_path / "studio.db") as store:
        config = store.configs.create(
            SafetyConfig(id="game", title="Game", kind=ConfigKind.FREE_FORM, text="Violence in fiction is fine.")
        )
        repo = store.exchanges
        ids = []
        for reply in ("good one", "bad one", "unmarked", "good two"):
            result = GenerationResult(reply, StopReason.STOP, 5, 3, 0, None, None, 0.1)
            exchange = repo.record(
                config_id=config.id,
                config_version=config.version,
                config_hash=config.content_hash(),
                model_name="m",
                model_sha256=None,
                prompt="Describe a duel.",
                params=GenerationParams(),
                result=result,
            )
            ids.append(exchange.id)
        repo.mark(ids[0], Verdict.FOLLOWS)
        repo.mark(ids[1], Verdict.VIOLATES)
        repo.mark(ids[3], Verdict.FOLLOWS)
        rows = import_exchanges(store)
    assert sorted((r["chosen"], r["rejected"]) for r in rows) == [("good one", "bad one"), ("good two", "bad one")]
    assert all(r["system"] == "Violence in fiction is fine." for r in rows)
