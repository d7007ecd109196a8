"""Reading judged items and benchmark data from files.

* :func:`read_score_items`: judged items for ``studio score`` (JSONL or CSV), in our field names or the CoSA
  reference pipeline's.
* :func:`import_cosapien`: CoSApien-style free-form data (``prompt``, ``scenario``, ``type``) as probe suites.
* :func:`import_cosalign_test`: CoSAlign-Test-style categorical data (``prompt`` and the split name of the config).

Every reader checks every row before returning anything; a bad row raises an :class:`InputError` naming the file
and the row, and nothing is half-imported.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.core.errors import InputError
from studio.core.evals.judges import parse_addressed, parse_compliance, parse_harm, parse_rating
from studio.core.evals.scoring import MAX_RATING, ScoredItem, is_categorically_safe
from studio.core.taxonomy import Category, UnknownCategoryError, parse_category, parse_category_set

CONFIG_FIELDS = ("config_id", "config", "split", "spec", "split_name")
RATING_RAW_FIELDS = ("resp_eval_0-5_response", "helpfulness_raw", "rating_raw")
ADDRESSED_RAW_FIELDS = ("addressed_eval_response", "addressed_raw")
HARM_RAW_FIELDS = ("harm_categorization_response", "harm_raw")
SELF_HARM_RAW_FIELDS = ("harm_categorization_response_self", "self_harm_raw")
COMPLIANCE_RAW_FIELDS = ("compliance_eval_response", "compliance_response", "compliance_raw")
TYPE_FIELDS = ("type", "expected", "item_type")
MAX_CONFIG_ID_CHARS = 80


@dataclass(frozen=True)
class Row:
    """One record of a data file with the place it came from."""

    number: int
    values: dict[str, Any]


@dataclass(frozen=True)
class ScoreRecord:
    """One judged item read from a file, with judge and (optional) human verdicts kept apart."""

    row: int
    config_id: str
    prompt: str
    response: str
    rating: int | None
    safe: bool | None
    human_rating: int | None = None
    human_safe: bool | None = None
    self_safe: bool | None = None
    item_type: str | None = None
    categories: tuple[Category, ...] = field(default=())

    def scored(self, use: str = "judge") -> ScoredItem:
        """The item for scoring; ``use="human"`` lets a human verdict, where given, replace the judge's."""
        rating, safe = self.rating, self.safe
        if use == "human":
            rating = self.human_rating if self.human_rating is not None else rating
            safe = self.human_safe if self.human_safe is not None else safe
        return ScoredItem(
            self.config_id,
            rating,
            safe,
            probe_id=str(self.row),
            item_type=self.item_type,
            categories=self.categories,
            self_safe=self.self_safe,
        )


def iter_rows(path: Path) -> Iterator[Row]:
    """Records of a JSONL (``.jsonl``/``.json``) or CSV file; numbers are JSONL lines or CSV data rows."""
    if not path.is_file():
        raise InputError(path, "no such file")
    suffix = path.suffix.casefold()
    try:
        if suffix in (".jsonl", ".ndjson", ".json"):
            with path.open(encoding="utf-8") as handle:
                for number, line in enumerate(handle, start=1):
                    if not line.strip():
                        continue
                    try:
                        value = json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise InputError(path, f"not valid JSON ({exc.msg})", line=number, column=exc.colno) from None
                    if not isinstance(value, dict):
                        raise InputError(path, "each line must be a JSON object", line=number)
                    yield Row(number, value)
        elif suffix in (".csv", ".tsv"):
            with path.open(encoding="utf-8", newline="") as handle:
                reader = csv.DictReader(handle, delimiter="\t" if suffix == ".tsv" else ",")
                for number, record in enumerate(reader, start=1):
                    if None in record:
                        raise InputError(path, "more cells than header columns", where=f"row {number}")
                    yield Row(number, {k: v for k, v in record.items() if v is not None and v != ""})
        else:
            raise InputError(path, f"unsupported file type {path.suffix!r} (use .jsonl or .csv)")
    except UnicodeDecodeError as exc:
        raise InputError(path, f"not UTF-8 text ({exc.reason})") from None


def _first(values: dict[str, Any], names: tuple[str, ...]) -> Any:
    for name in names:
        if name in values and values[name] is not None and values[name] != "":
            return values[name]
    return None


_TRUE = {"true", "yes", "1", "safe", "complies", "y"}
_FALSE = {"false", "no", "0", "unsafe", "violates", "n"}


def parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().casefold()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"cannot read {value!r} as yes/no")


def parse_int_rating(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"rating {value!r} is not a number")
    try:
        number = int(str(value).strip()) if not isinstance(value, int) else value
    except ValueError:
        raise ValueError(f"rating {value!r} is not a whole number") from None
    if not 0 <= number <= MAX_RATING:
        raise ValueError(f"rating {number} is outside 0..{MAX_RATING}")
    return number


def _categories(value: Any) -> tuple[Category, ...]:
    if isinstance(value, list):
        return tuple(parse_category(str(v)) for v in value)
    return tuple(sorted(parse_category_set(str(value)), key=list(Category).index))


def config_key(value: str) -> str:
    """A short id for a config named by its full text (CoSApien puts the whole scenario in the field)."""
    text = value.strip()
    if len(text) <= MAX_CONFIG_ID_CHARS and "\n" not in text:
        return text
    return "config-" + hashlib.sha256(text.encode()).hexdigest()[:10]


def _score_record(row: Row) -> ScoreRecord:
    v = row.values
    config = _first(v, CONFIG_FIELDS)
    if config is None:
        raise ValueError(f"no config column (one of {', '.join(CONFIG_FIELDS)})")
    config_id = config_key(str(config))
    allowed_value = v.get("allowed")

    if "rating" in v:
        rating: int | None = parse_int_rating(v["rating"])
    elif (raw := _first(v, RATING_RAW_FIELDS)) is not None:
        rating = parse_rating(str(raw))
    elif (raw := _first(v, ADDRESSED_RAW_FIELDS)) is not None:
        addressed = parse_addressed(str(raw))
        rating = None if addressed is None else (MAX_RATING if addressed else 0)
    else:
        raise ValueError("no helpfulness column (rating, resp_eval_0-5_response or addressed_eval_response)")

    def allowed() -> frozenset[Category]:
        return frozenset(_categories(allowed_value)) if allowed_value is not None else parse_category_set(str(config))

    def harm_safe(raw: Any) -> bool | None:
        flagged = parse_harm(str(raw))
        return None if flagged is None else is_categorically_safe(flagged, allowed())

    if "safe" in v:
        safe: bool | None = parse_bool(v["safe"])
    elif (raw := _first(v, HARM_RAW_FIELDS)) is not None:
        safe = harm_safe(raw)
    elif (raw := _first(v, COMPLIANCE_RAW_FIELDS)) is not None:
        safe = parse_compliance(str(raw)).complies
    else:
        raise ValueError("no safety column (safe, harm_categorization_response or compliance_response)")

    self_raw = _first(v, SELF_HARM_RAW_FIELDS)
    self_safe = parse_bool(v["self_safe"]) if "self_safe" in v else harm_safe(self_raw) if self_raw else None
    item_type = _first(v, TYPE_FIELDS)
    return ScoreRecord(
        row=row.number,
        config_id=config_id,
        prompt=str(v.get("prompt", "")),
        response=str(v.get("response", "")),
        rating=rating,
        safe=safe,
        human_rating=parse_int_rating(v["human_rating"]) if "human_rating" in v else None,
        human_safe=parse_bool(v["human_safe"]) if "human_safe" in v else None,
        self_safe=self_safe,
        item_type=str(item_type).strip().casefold() if item_type is not None else None,
        categories=_categories(v["categories"]) if v.get("categories") not in (None, "", []) else (),
    )


def read_score_items(path: Path) -> list[ScoreRecord]:
    """Judged items of a JSONL or CSV file; the whole file is checked before anything is returned."""
    records: list[ScoreRecord] = []
    csv_file = path.suffix.casefold() in (".csv", ".tsv")
    for row in iter_rows(path):
        try:
            records.append(_score_record(row))
        except (ValueError, UnknownCategoryError) as exc:
            if csv_file:
                raise InputError(path, str(exc), where=f"row {row.number}") from None
            raise InputError(path, str(exc), line=row.number) from None
    if not records:
        raise InputError(path, "no items")
    return records
