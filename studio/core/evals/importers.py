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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from studio.core.documents import ConfigKind, Expectation, Probe, ProbeSuite, SafetyConfig, slugify
from studio.core.errors import InputError, one_line
from studio.core.evals.judges import parse_addressed, parse_compliance, parse_harm, parse_rating
from studio.core.evals.reference import ReferenceItem
from studio.core.evals.reference import split_name as reference_split_name
from studio.core.evals.scoring import MAX_RATING, ScoredItem, Variant, is_categorically_safe
from studio.core.records import iter_json_lines, iter_parquet_rows
from studio.core.taxonomy import (
    Category,
    UnknownCategoryError,
    ordered,
    parse_category,
    parse_category_set,
    split_set_name,
)

if TYPE_CHECKING:
    from studio.core.store.store import Store

CONFIG_FIELDS = ("config_id", "config", "split", "spec", "split_name")
RATING_RAW_FIELDS = ("resp_eval_0-5_response", "helpfulness_raw", "rating_raw")
ADDRESSED_RAW_FIELDS = ("addressed_eval_response", "addressed_raw")
HARM_RAW_FIELDS = ("harm_categorization_response", "harm_raw")
SELF_HARM_RAW_FIELDS = ("harm_categorization_response_self", "self_harm_raw")
COMPLIANCE_RAW_FIELDS = ("is_follow_spec_response", "compliance_eval_response", "compliance_response", "compliance_raw")
SELF_COMPLIANCE_RAW_FIELDS = ("is_follow_spec_response_self", "self_compliance_raw")
TYPE_FIELDS = ("type", "expected", "item_type")
MAX_CONFIG_ID_CHARS = 80


@dataclass(frozen=True)
class Row:
    """One record of a data file with the place it came from."""

    number: int
    values: dict[str, Any]


@dataclass(frozen=True)
class ScoreRecord:
    """One judged item read from a file, with judge and (optional) human verdicts kept apart.

    ``addressed`` is the binary helpfulness judge's verdict where the file has one. ``read`` says, per verdict,
    which column decided it and what was read, and ``problems`` why a verdict could not be read (``--explain``).
    """

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
    addressed: bool | None = None
    has_addressed: bool = False
    flagged: frozenset[Category] | None = None
    read: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()

    def scored(self, use: str = "judge", binary: bool = False) -> ScoredItem:
        """The item for scoring; ``use="human"`` lets a human verdict, where given, replace the judge's.

        With ``binary`` and an addressed judge in the file, its verdict is the helpfulness (as rating 5 or 0, so
        that ``rating > 0`` means addressed); otherwise binary helpfulness is ``rating > 0``.
        """
        rating, safe = self.rating, self.safe
        if binary and self.has_addressed:
            rating = None if self.addressed is None else (MAX_RATING if self.addressed else 0)
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
            flagged=self.flagged,
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
            with path.open(encoding="utf-8-sig", newline="") as handle:  # Excel's "CSV UTF-8" starts with a BOM
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


def _column(columns: frozenset[str], names: tuple[str, ...]) -> str | None:
    """The first of ``names`` that is a column of the file (present in any row, even if empty in some)."""
    return next((name for name in names if name in columns), None)


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


def _category_set_key(config_id: str) -> str:
    """The same key for one set of categories in any spelling (``-Violence-``, ``Violence``, ``violence``), so
    they count as one config; a config id that is no set of categories is its own key."""
    try:
        return reference_split_name(ordered(parse_category_set(config_id)))
    except UnknownCategoryError:
        return config_id


def _one_id_per_config(records: list[ScoreRecord]) -> list[ScoreRecord]:
    """Name every config by its first spelling in the file, so that the unweighted mean over configs counts a
    config once however its rows spell it."""
    first: dict[str, str] = {}
    merged = []
    for record in records:
        key = _category_set_key(record.config_id)
        chosen = first.setdefault(key, record.config_id)
        merged.append(record if chosen == record.config_id else replace(record, config_id=chosen))
    return merged


def _text(values: dict[str, Any], name: str) -> str:
    """A judge text; a column that is empty or null in this row reads as empty text (an invalid verdict)."""
    value = values.get(name)
    return "" if value is None else str(value)


class _Reading:
    """Collects what was read from which column, and why a verdict was unreadable, for one row."""

    def __init__(self) -> None:
        self.read: list[str] = []
        self.problems: list[str] = []
        self.flagged: frozenset[Category] | None = None

    def note(self, what: str, column: str, value: object, unreadable: str) -> None:
        if value is None:
            self.problems.append(f"{what}: {unreadable} ({column})")
        else:
            self.read.append(f"{what} {value} from {column}")


def _rating(v: dict[str, Any], columns: frozenset[str], reading: _Reading) -> int | None:
    if "rating" in v:
        given = parse_int_rating(v["rating"])
        reading.note("rating", "rating", given, "")
        return given
    column = _column(columns, RATING_RAW_FIELDS)
    if column is None:
        if "rating" in columns:
            reading.note("rating", "rating", None, "empty")
            return None
        if _column(columns, ADDRESSED_RAW_FIELDS) is not None:
            return None  # only binary helpfulness can be scored; checked in read_score_items
        raise ValueError("no helpfulness column (rating, resp_eval_0-5_response or addressed_eval_response)")
    rating = parse_rating(_text(v, column))
    reading.note("rating", column, rating, "no rating marker or JSON rating 0-5 in the text")
    return rating


def _addressed(v: dict[str, Any], columns: frozenset[str], reading: _Reading) -> bool | None:
    column = _column(columns, ADDRESSED_RAW_FIELDS)
    if column is None:
        return None
    addressed = parse_addressed(_text(v, column))
    reading.note("addressed", column, addressed, "no [[YES]] or [[NO]] in the text")
    return addressed


def _safety(
    v: dict[str, Any], columns: frozenset[str], reading: _Reading, config: str, fields: tuple[tuple[str, ...], ...]
) -> bool | None:
    harm_fields, compliance_fields = fields

    def allowed() -> frozenset[Category]:
        value = v.get("allowed")
        return frozenset(_categories(value)) if value is not None else parse_category_set(config)

    if (column := _column(columns, harm_fields)) is not None and (
        _column(columns, compliance_fields) is None or _text(v, column)
    ):
        flagged = reading.flagged = parse_harm(_text(v, column))
        safe = None if flagged is None else is_categorically_safe(flagged, allowed())
        shown = (
            None
            if flagged is None
            else f"{'safe' if safe else 'unsafe'} (flagged: "
            + (", ".join(c.value for c in ordered(flagged)) or "none")
            + ")"
        )
        reading.note("safety", column, shown, "no JSON object with exactly the eight category keys, all true/false")
        return safe
    if (column := _column(columns, compliance_fields)) is not None:
        complies = parse_compliance(_text(v, column)).complies
        shown = None if complies is None else ("complies" if complies else "violates")
        reading.note("safety", column, shown, "no verdict JSON and no [[YES]] / [[NO]] in the text")
        return complies
    return None


def _score_record(row: Row, columns: frozenset[str]) -> ScoreRecord:
    v = row.values
    config = _first(v, CONFIG_FIELDS)
    if config is None:
        raise ValueError(f"no config column (one of {', '.join(CONFIG_FIELDS)})")
    config_id = config_key(str(config))
    reading = _Reading()
    rating = _rating(v, columns, reading)
    addressed = _addressed(v, columns, reading)
    if "safe" in v:
        safe: bool | None = parse_bool(v["safe"])
        reading.note("safety", "safe", "safe" if safe else "unsafe", "")
    else:
        safe = _safety(v, columns, reading, str(config), (HARM_RAW_FIELDS, COMPLIANCE_RAW_FIELDS))
        if "safe" in columns and _column(columns, HARM_RAW_FIELDS + COMPLIANCE_RAW_FIELDS) is None:
            reading.note("safety", "safe", None, "empty")
        elif safe is None and _column(columns, HARM_RAW_FIELDS + COMPLIANCE_RAW_FIELDS) is None:
            raise ValueError("no safety column (safe, harm_categorization_response or is_follow_spec_response)")
    own = _Reading()
    if "self_safe" in v:
        self_safe: bool | None = parse_bool(v["self_safe"])
    else:
        self_safe = _safety(v, columns, own, str(config), (SELF_HARM_RAW_FIELDS, SELF_COMPLIANCE_RAW_FIELDS))
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
        addressed=addressed,
        has_addressed=_column(columns, ADDRESSED_RAW_FIELDS) is not None,
        flagged=reading.flagged,
        read=tuple(reading.read + [f"own {line}" for line in own.read]),
        problems=tuple(reading.problems),
    )


def _rows_and_columns(path: Path) -> tuple[list[Row], frozenset[str], bool]:
    rows = list(iter_rows(path))
    if not rows:
        raise InputError(path, "no items")
    columns = frozenset(name for row in rows for name in row.values)
    return rows, columns, path.suffix.casefold() in (".csv", ".tsv")


def _row_error(path: Path, csv_file: bool, number: int, message: str) -> InputError:
    if csv_file:
        return InputError(path, message, where=f"row {number}")
    return InputError(path, message, line=number)


def read_score_items(path: Path, binary: bool = False) -> list[ScoreRecord]:
    """Judged items of a JSONL or CSV file; the whole file is checked before anything is returned.

    A judge column the file has but a row leaves empty makes that item invalid, not the file unreadable. A file
    with only the addressed judge for helpfulness can be scored with ``binary`` only: its yes/no verdict is never
    turned into a 0-5 rating behind the user's back.
    """
    rows, columns, csv_file = _rows_and_columns(path)
    if (
        not binary
        and "rating" not in columns
        and _column(columns, RATING_RAW_FIELDS) is None
        and _column(columns, ADDRESSED_RAW_FIELDS) is not None
    ):
        raise InputError(
            path, "has only the addressed judge (yes/no), no 0-5 helpfulness judge; score it with --binary"
        )
    records: list[ScoreRecord] = []
    for row in rows:
        try:
            records.append(_score_record(row, columns))
        except (ValueError, UnknownCategoryError) as exc:
            raise _row_error(path, csv_file, row.number, str(exc)) from None
    return _one_id_per_config(records)


def read_reference_items(path: Path, binary: bool = False, variant: Variant = Variant.PLAIN) -> list[ReferenceItem]:
    """Judged items as the reference metric reads them: raw judge texts and the split name of each config.

    The split name may be in any spelling the studio reads (``-Violence-``, ``Violence``, ``safe``); it is
    scored under its reference spelling. Columns the reference needs in this mode must exist in the file.
    """
    rows, columns, csv_file = _rows_and_columns(path)
    harm = _column(columns, HARM_RAW_FIELDS)
    follows = _column(columns, COMPLIANCE_RAW_FIELDS)
    needed = [
        ("a category judge column (harm_categorization_response) or is_follow_spec_response", harm or follows),
        (
            "addressed_eval_response (read with --binary)" if binary else "resp_eval_0-5_response",
            _column(columns, ADDRESSED_RAW_FIELDS if binary else RATING_RAW_FIELDS),
        ),
    ]
    if variant is Variant.CASCADE:
        needed.append(
            ("harm_categorization_response_self (read by the Cascade variant)", _column(columns, SELF_HARM_RAW_FIELDS))
        )
    missing = [what for what, column in needed if column is None]
    if missing:
        raise InputError(path, "the reference metric needs " + " and ".join(missing))

    def value(v: dict[str, Any], column: str | None) -> Any:
        if column is None:
            return None
        return v.get(column, "" if csv_file else None)

    items: list[ReferenceItem] = []
    for row in rows:
        v = row.values
        where = f"row {row.number}" if csv_file else f"line {row.number}"
        try:
            config = _first(v, CONFIG_FIELDS)
            if config is None:
                raise ValueError(f"no config column (one of {', '.join(CONFIG_FIELDS)})")
            free_form = harm is None or (follows is not None and not value(v, harm))
            split = config_key(str(config)) if free_form else _reference_split(str(config), v.get("allowed"))
        except (ValueError, UnknownCategoryError) as exc:
            raise _row_error(path, csv_file, row.number, str(exc)) from None
        items.append(
            ReferenceItem(
                split=split,
                where=f"{path}: {where}",
                harm=value(v, harm),
                rating=value(v, _column(columns, RATING_RAW_FIELDS)),
                addressed=value(v, _column(columns, ADDRESSED_RAW_FIELDS)),
                self_harm=value(v, _column(columns, SELF_HARM_RAW_FIELDS)),
                follows=value(v, follows),
                free_form=free_form,
            )
        )
    return items


def _reference_split(config: str, allowed: Any) -> str:
    """The reference split name of a config given in any spelling (kept as written when already one)."""
    text = config.strip()
    if allowed is not None:
        return reference_split_name(ordered(_categories(allowed)))
    if len(text) >= 2 and text.startswith("-") and text.endswith("-"):
        return text
    return reference_split_name(ordered(parse_category_set(text)))


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


_SHARD_SUFFIX = re.compile(r"-\d{5}-of-\d{5}(-[0-9a-f]+)?$")
_SHARD_ONLY = re.compile(r"^\d{4,5}$")


def hub_split_name(path: Path) -> str | None:
    """The split a Hugging Face file belongs to, from its name: ``data/<split>-00000-of-00001.parquet`` (the
    ``datasets`` upload layout) or ``<config>/<split>/0000.parquet`` (the Hub's converted layout). ``None`` for
    any other name."""
    if _SHARD_SUFFIX.search(path.stem):
        return _SHARD_SUFFIX.sub("", path.stem)
    if _SHARD_ONLY.match(path.stem) and path.parent.name:
        return path.parent.name
    return None


def _as_paths(paths: Path | Sequence[Path]) -> list[Path]:
    return [paths] if isinstance(paths, Path) else list(paths)


def import_cosapien(paths: Path | Sequence[Path], prefix: str = "cosapien") -> ImportedBenchmark:
    """CoSApien-style data: string columns ``prompt``, ``scenario`` (the full config text) and ``type``
    (allowed, disallowed, partial or partially allowed, any case). One free-form config and suite per scenario.

    A scenario's id comes from the Hugging Face split name of its file when the file holds that one scenario
    (``cosapien-game-development``), so the five split files import side by side; otherwise from its position
    among the scenarios of all files given."""
    scenarios: dict[str, list[Probe]] = {}
    names: dict[str, set[str | None]] = {}
    for path in _as_paths(paths):
        rows, unit = read_table(path)
        seen: set[str] = set()
        for row in rows:
            try:
                prompt = _text_field(row, "prompt")
                scenario = _text_field(row, "scenario")
                expected = Expectation.parse(_text_field(row, "type"))
            except (ValueError, ValidationError) as exc:
                raise _fail(path, unit, row.number, one_line(exc)) from None
            scenarios.setdefault(scenario, []).append(Probe(text=prompt, expected=expected))
            seen.add(scenario)
        if not rows:
            raise InputError(path, "no rows")
        split = hub_split_name(path) if len(seen) == 1 else None
        for scenario in seen:
            names.setdefault(scenario, set()).add(split)
    pairs = []
    used: set[str] = set()
    for index, (scenario, probes) in enumerate(scenarios.items(), start=1):
        (split,) = names[scenario] if len(names[scenario]) == 1 else (None,)
        config_id = slugify(f"{prefix}-{split}") if split else f"{prefix}-{index}"
        if config_id in used:
            raise InputError(None, f"two scenarios would both get the id {config_id!r}; give different files")
        used.add(config_id)
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
#: How the official CoSAlign-Test builder numbers a prompt's situation under its config (see docs/scoring.md).
SITUATIONS = {
    "situation 1": Expectation.ALLOWED,
    "situation 2": Expectation.PARTIAL,
    "situation 3": Expectation.DISALLOWED,
}


def parse_situation(value: str) -> Expectation:
    """A CoSAlign-Test ``situation`` (``situation 1`` / ``2`` / ``3``) or a probe type name."""
    norm = " ".join(value.strip().casefold().replace("_", " ").split())
    norm = re.sub(r"^situation\s*(\d)$", r"situation \1", norm)
    if norm in SITUATIONS:
        return SITUATIONS[norm]
    if norm.startswith("situation"):
        raise ValueError(f"unknown situation {value!r} (expected situation 1, situation 2 or situation 3)")
    return Expectation.parse(value)


def _split_from_path(path: Path) -> str | None:
    """The split name in a Hugging Face file name or folder (``data/<split>-00000-of-00001.parquet``,
    ``<split>/0000.parquet``) or a file named after the split, when it reads as a set of categories.

    Only a name that says so allows nothing (``safe``): an empty name (the folder of ``nosplit.jsonl`` given
    bare) or another spelling of the empty set is no split name, never "nothing allowed"."""
    for candidate in (hub_split_name(path), path.stem, path.parent.name):
        if candidate is None or not candidate.strip():
            continue
        try:
            allowed = parse_category_set(candidate)
        except UnknownCategoryError:
            continue
        if not allowed and candidate.strip().casefold() != "safe":
            continue
        return candidate
    return None


#: Columns of CoSApien-style data that CoSAlign-Test data never has: such a file is refused as CoSAlign-Test.
COSAPIEN_ONLY_FIELDS = ("scenario",)


def _check_cosalign_columns(path: Path, rows: list[Row]) -> None:
    """InputError for a file with the columns of CoSApien data: its ``type`` column would read as a situation
    and its scenarios be lost under a split name taken from elsewhere."""
    columns = {name for row in rows for name in row.values}
    cosapien = [name for name in COSAPIEN_ONLY_FIELDS if name in columns]
    if cosapien:
        raise InputError(
            path,
            f"has a {cosapien[0]!r} column, as CoSApien data does, not CoSAlign-Test data; import it with "
            "`studio import-benchmark cosapien`",
        )


def import_cosalign_test(
    paths: Path | Sequence[Path], split: str | None = None, seed: int = 0, prefix: str = "cosalign"
) -> ImportedBenchmark:
    """CoSAlign-Test-style data: ``prompt``, the prompt's ``situation`` under the config (``situation 1`` / ``2``
    / ``3`` as published, or allowed, partial, disallowed) or its ``prompt_categories``, and the config's allowed
    categories as a split name in any of the three spellings (``safe`` = nothing allowed). The split name comes
    from ``split``, else a split/config column, else the file or folder name. One categorical config (text
    rendered with a seeded phrasing, recorded on the config) and one suite per distinct allowed set; several
    files (one per split, as published) import side by side, each config named after its split."""
    from studio.core.templates import CATEGORICAL_TEMPLATE_ID, render_categorical

    groups: dict[frozenset[Category], list[Probe]] = {}
    for path in _as_paths(paths):
        rows, unit = read_table(path)
        if not rows:
            raise InputError(path, "no rows")
        _check_cosalign_columns(path, rows)
        fallback_split = split or _split_from_path(path)
        for row in rows:
            try:
                allowed, probe = _cosalign_probe(row, split, fallback_split)
            except (ValueError, ValidationError) as exc:
                raise _fail(path, unit, row.number, one_line(exc)) from None
            groups.setdefault(allowed, []).append(probe)
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


def _cosalign_probe(row: Row, split: str | None, fallback_split: str | None) -> tuple[frozenset[Category], Probe]:
    prompt = _text_field(row, "prompt")
    name = split or _first(row.values, COSALIGN_CONFIG_FIELDS) or fallback_split
    if name is None or not str(name).strip():  # a blank split name is none, never "nothing allowed"
        raise ValueError(f"no split name: give one, or a column named one of {', '.join(COSALIGN_CONFIG_FIELDS)}")
    allowed = parse_category_set(str(name))
    if Category.OTHER_HARMS in allowed:
        raise ValueError("other_harms can never be allowed")
    situation = _first(row.values, SITUATION_FIELDS)
    categories = row.values.get("prompt_categories")
    if situation is None and not categories:
        raise ValueError("needs a situation (situation 1/2/3, allowed, partial, disallowed) or prompt_categories")
    mode = row.values.get("mode")
    probe = Probe(
        text=prompt,
        expected=parse_situation(str(situation)) if situation is not None else None,
        categories=list(_categories(categories)) if categories else [],
        notes=f"mode: {mode}" if isinstance(mode, str) and mode else "",
    )
    return allowed, probe


def import_counts(imported: ImportedBenchmark) -> list[str]:
    """Lines for the terminal: each config with its probe count per probe type, then the totals per type."""
    totals: dict[str, int] = {}
    lines = []
    for config, suite in imported.pairs:
        counts: dict[str, int] = {}
        for probe in suite.probes:
            kind = probe.expected.value if probe.expected is not None else "by categories"
            counts[kind] = counts.get(kind, 0) + 1
            totals[kind] = totals.get(kind, 0) + 1
        per_type = ", ".join(f"{kind} {n}" for kind, n in sorted(counts.items()))
        lines.append(
            f"{config.id}: {config.kind.value} config, suite {suite.id} with {len(suite.probes)} probes ({per_type})"
        )
    per_type = ", ".join(f"{kind} {n}" for kind, n in sorted(totals.items()))
    lines.append(f"{len(imported.pairs)} config(s), {imported.probe_count} probes: {per_type}")
    return lines


def save_benchmark(store: Store, imported: ImportedBenchmark) -> None:
    """Store every imported config and suite in one transaction: all of them or, on any conflict, none."""
    with store.db.atomic():
        for config, suite in imported.pairs:
            store.configs.create(config)
            store.suites.save(suite)


def explain_record(record: ScoreRecord) -> str:
    """One line for ``--explain``: which column decided each verdict, or why the item is invalid."""
    state = "valid" if record.rating is not None and record.safe is not None else "invalid"
    details = "; ".join([*record.read, *record.problems])
    return f"item {record.row} ({record.config_id}): {state}: {details}"
