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
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils
from pydantic import ValidationError

from studio.core.documents import ConfigKind, Expectation, Probe, ProbeSuite, SafetyConfig, slugify
from studio.core.errors import InputError, one_line
from studio.core.evals.judges import parse_addressed, parse_compliance, parse_harm, parse_rating
from studio.core.evals.scoring import MAX_RATING, ScoredItem, is_categorically_safe
from studio.core.records import iter_json_lines, iter_parquet_rows
from studio.core.taxonomy import (
    Category,
    UnknownCategoryError,
    ordered,
    parse_category,
    parse_category_set,
    split_set_name,
)

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
    if suffix in (".jsonl", ".ndjson", ".json"):
        for number, value in iter_json_lines(path):
            yield Row(number, value)
        return
    try:
        if suffix in (".csv", ".tsv"):
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


# -- benchmark data ----------------------------------------------------------------------------------------------


def read_table(path: Path) -> tuple[list[Row], str]:
    """Rows of a Parquet, CSV or JSONL file, and how to name a row in messages ("line" or "row")."""
    if path.suffix.casefold() != ".parquet":
        return list(iter_rows(path)), "row" if path.suffix.casefold() in (".csv", ".tsv") else "line"
    if not path.is_file():
        raise InputError(path, "no such file")
    return [Row(n, record) for n, record in iter_parquet_rows(path)], "row"


def _fail(path: Path, unit: str, number: int, message: str) -> InputError:
    if unit == "line":
        return InputError(path, message, line=number)
    return InputError(path, message, where=f"row {number}")


def _text_field(row: Row, name: str) -> str:
    value = row.values.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"column {name!r} is missing or empty")
    return value


@dataclass(frozen=True)
class ImportedBenchmark:
    """Configs and one probe suite per config, ready for the author to save."""

    pairs: tuple[tuple[SafetyConfig, ProbeSuite], ...]

    @property
    def probe_count(self) -> int:
        return sum(len(suite.probes) for _, suite in self.pairs)


def _title_of(text: str) -> str:
    first = re.split(r"(?<=[.!?])\s", text.strip(), maxsplit=1)[0]
    return first if len(first) <= 80 else first[:77].rstrip() + "..."


def import_cosapien(path: Path, prefix: str = "cosapien") -> ImportedBenchmark:
    """CoSApien-style data: string columns ``prompt``, ``scenario`` (the full config text) and ``type``
    (allowed, disallowed, partial or partially allowed, any case). One free-form config and suite per scenario."""
    rows, unit = read_table(path)
    scenarios: dict[str, list[Probe]] = {}
    for row in rows:
        try:
            prompt = _text_field(row, "prompt")
            scenario = _text_field(row, "scenario")
            expected = Expectation.parse(_text_field(row, "type"))
            scenarios.setdefault(scenario, []).append(Probe(text=prompt, expected=expected))
        except (ValueError, ValidationError) as exc:
            raise _fail(path, unit, row.number, one_line(exc)) from None
    if not scenarios:
        raise InputError(path, "no rows")
    pairs = []
    for index, (scenario, probes) in enumerate(scenarios.items(), start=1):
        config_id = f"{prefix}-{index}"
        config = SafetyConfig(
            id=config_id, title=_title_of(scenario), kind=ConfigKind.FREE_FORM, text=scenario, tags=["cosapien"]
        )
        suite = ProbeSuite(
            id=f"{config_id}-probes",
            title=f"CoSApien probes: {config.title}",
            kind=ConfigKind.FREE_FORM,
            tags=["cosapien"],
            probes=probes,
        )
        pairs.append((config, suite))
    return ImportedBenchmark(tuple(pairs))


COSALIGN_CONFIG_FIELDS = ("split", "config", "category", "categories", "spec", "split_name")
SITUATION_FIELDS = ("situation", "type", "expected")


def _split_from_path(path: Path) -> str | None:
    """The split name a Hugging Face download puts in the folder or file name (``<split>/0000.parquet``)."""
    for candidate in (path.stem, path.parent.name):
        try:
            parse_category_set(candidate)
        except UnknownCategoryError:
            continue
        return candidate
    return None


def import_cosalign_test(
    path: Path, split: str | None = None, seed: int = 0, prefix: str = "cosalign"
) -> ImportedBenchmark:
    """CoSAlign-Test-style data: ``prompt``, the prompt's ``situation`` under the config (allowed, partial,
    disallowed) or its ``prompt_categories``, and the config's allowed categories as a split name in any of the
    three spellings (``safe`` = nothing allowed). The split name comes from ``split``, else a split/config
    column, else the file or folder name. One categorical config (text rendered with a seeded phrasing, recorded
    on the config) and one suite per distinct allowed set."""
    from studio.core.templates import CATEGORICAL_TEMPLATE_ID, render_categorical

    rows, unit = read_table(path)
    fallback_split = split or _split_from_path(path)
    groups: dict[frozenset[Category], list[Probe]] = {}
    for row in rows:
        try:
            prompt = _text_field(row, "prompt")
            name = split or _first(row.values, COSALIGN_CONFIG_FIELDS) or fallback_split
            if name is None:
                raise ValueError(
                    f"no split name: give one, or a column named one of {', '.join(COSALIGN_CONFIG_FIELDS)}"
                )
            allowed = parse_category_set(str(name))
            if Category.OTHER_HARMS in allowed:
                raise ValueError("other_harms can never be allowed")
            situation = _first(row.values, SITUATION_FIELDS)
            categories = row.values.get("prompt_categories")
            if situation is None and not categories:
                raise ValueError("needs a situation (allowed, partial, disallowed) or prompt_categories")
            mode = row.values.get("mode")
            groups.setdefault(allowed, []).append(
                Probe(
                    text=prompt,
                    expected=Expectation.parse(str(situation)) if situation is not None else None,
                    categories=list(_categories(categories)) if categories else [],
                    notes=f"mode: {mode}" if isinstance(mode, str) and mode else "",
                )
            )
        except (ValueError, ValidationError) as exc:
            raise _fail(path, unit, row.number, one_line(exc)) from None
    if not groups:
        raise InputError(path, "no rows")
    pairs = []
    for allowed, probes in groups.items():
        name = split_set_name(allowed)
        config_id = slugify(f"{prefix}-" + ("-".join(c.value for c in ordered(allowed)) or "safe"))
        rendered = render_categorical(allowed, seed=seed)
        config = SafetyConfig(
            id=config_id,
            title="CoSAlign-Test: " + (" + ".join(c.info.short for c in ordered(allowed)) or "nothing allowed"),
            kind=ConfigKind.CATEGORICAL,
            text=rendered.text,
            allowed=list(allowed),
            template=CATEGORICAL_TEMPLATE_ID,
            phrasing=rendered.phrasing,
            phrasing_seed=rendered.seed,
            tags=["cosalign-test"],
        )
        suite = ProbeSuite(
            id=f"{config_id}-probes",
            title=f"CoSAlign-Test probes: {name}",
            kind=ConfigKind.CATEGORICAL,
            tags=["cosalign-test"],
            probes=probes,
        )
        pairs.append((config, suite))
    return ImportedBenchmark(tuple(pairs))


def save_benchmark(db: sqlite_utils.Database, imported: ImportedBenchmark) -> None:
    """Store every imported config and suite in one transaction: all of them or, on any conflict, none."""
    from studio.core.store.configs import ConfigRepo
    from studio.core.store.suites import SuiteRepo

    configs, suites = ConfigRepo(db), SuiteRepo(db)
    with db.atomic():
        for config, suite in imported.pairs:
            configs.create(config)
            suites.save(suite)
