"""Benchmark and score files: a missing split name never means "nothing allowed", CoSApien data is not imported as
CoSAlign-Test data, and a file saved with a UTF-8 byte-order mark (Excel's "CSV UTF-8") reads as any other."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from studio.core.errors import InputError
from studio.core.evals.importers import import_cosalign_test, iter_rows, read_score_items
from studio.core.records import iter_json_lines
from studio.core.taxonomy import Category

ROWS = [
    {"prompt": "Describe a sword fight.", "situation": "situation 1"},
    {"prompt": "How do I build a real rifle?", "situation": "situation 3"},
]


def _jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def test_a_bare_file_name_without_a_split_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _jsonl(tmp_path / "nosplit.jsonl", ROWS)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match=r"^nosplit.jsonl:1: no split name"):
        import_cosalign_test(Path("nosplit.jsonl"))
    folder = tmp_path / "ib"
    folder.mkdir()
    _jsonl(folder / "nosplit.jsonl", ROWS)
    with pytest.raises(InputError, match=r"no split name"):
        import_cosalign_test(Path("ib/nosplit.jsonl"))


@pytest.mark.parametrize("name", ["none", "--"])
def test_only_an_explicit_safe_in_a_path_allows_nothing(tmp_path: Path, name: str) -> None:
    with pytest.raises(InputError, match="no split name"):
        import_cosalign_test(_jsonl(tmp_path / f"{name}.jsonl", ROWS))
    ((config, _),) = import_cosalign_test(_jsonl(tmp_path / "safe.jsonl", ROWS)).pairs
    assert config.allowed == [] and config.id == "cosalign-safe"
    folder = tmp_path / "Violence"
    folder.mkdir()
    ((config, _),) = import_cosalign_test(_jsonl(folder / "0000.jsonl", ROWS)).pairs
    assert config.allowed == [Category.VIOLENCE]


@pytest.mark.parametrize("blank", [" ", "\t"])
def test_a_blank_split_name_is_no_split_name(tmp_path: Path, blank: str) -> None:
    path = _jsonl(tmp_path / "data.jsonl", [{**row, "split": blank} for row in ROWS])
    with pytest.raises(InputError, match="no split name"):
        import_cosalign_test(path)
    with pytest.raises(InputError, match="no split name"):
        import_cosalign_test(_jsonl(tmp_path / "plain.jsonl", ROWS), split=blank)


def test_cosapien_data_is_not_imported_as_cosalign_test(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows: list[dict[str, object]] = [
        {"prompt": "Describe a duel.", "scenario": "A game studio. Combat is fine.", "type": "allowed"},
    ]
    _jsonl(tmp_path / "cosapien.jsonl", rows)
    monkeypatch.chdir(tmp_path)
    for split in (None, "violence"):
        with pytest.raises(InputError, match=r"^cosapien.jsonl: has a 'scenario' column, as CoSApien data does"):
            import_cosalign_test(Path("cosapien.jsonl"), split=split)


def test_csv_with_a_byte_order_mark_reads_its_first_column(tmp_path: Path) -> None:
    path = tmp_path / "items.csv"
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.DictWriter(handle, ["split", "prompt", "response", "rating", "safe"])
        writer.writeheader()
        writer.writerow({"split": "Violence", "prompt": "p", "response": "r", "rating": "4", "safe": "true"})
    assert path.read_bytes().startswith(b"\xef\xbb\xbfsplit,")
    (row,) = iter_rows(path)
    assert set(row.values) == {"split", "prompt", "response", "rating", "safe"}
    (record,) = read_score_items(path)
    assert record.config_id == "Violence" and record.rating == 4 and record.safe is True


def test_jsonl_with_a_byte_order_mark_reads_its_first_line(tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"a": 1}).encode() + b"\n" + json.dumps({"b": 2}).encode() + b"\n")
    assert list(iter_json_lines(path)) == [(1, {"a": 1}), (2, {"b": 2})]
    # Only a leading mark is skipped: one inside the file is still an error naming its line.
    inner = tmp_path / "inner.jsonl"
    inner.write_bytes(json.dumps({"a": 1}).encode() + b"\n\xef\xbb\xbf" + json.dumps({"b": 2}).encode() + b"\n")
    with pytest.raises(InputError, match=r"inner.jsonl:2:1: not valid JSON"):
        list(iter_json_lines(inner))
