"""User settings kept in ``<home>/settings.yaml``: identity, the approval gate, inference defaults."""

from __future__ import annotations

import contextlib
import copy
import getpass
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from studio.core.choices import choices_hint
from studio.core.documents import ID_PATTERN
from studio.core.errors import InputError, validation_problem
from studio.core.paths import app_home

SETTINGS_FILE = "settings.yaml"

#: The most GPU layers a setting may name, as in the preferences dialog: more than any model has (llama.cpp
#: offloads the layers there are, and 999 is its usual "every layer"), far below the C ``int`` the count is passed
#: as. ``-1`` also means every layer.
MAX_GPU_LAYERS = 999
#: The range of the context-size cap (``inference.max_context``, ``--n-ctx``).
MIN_MAX_CONTEXT = 256
MAX_MAX_CONTEXT = 131072

GpuLayers = Annotated[int, Field(ge=-1, le=MAX_GPU_LAYERS)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class GateSettings(_Strict):
    """What a check run of a config version must show before that version can be approved."""

    min_score: float = Field(default=0.0, ge=-1.0, le=1.0, description="Lowest CoSA-Score accepted.")
    min_valid_rate: float = Field(default=0.8, ge=0.0, le=1.0, description="Lowest share of validly judged items.")
    required_suite: Annotated[str, Field(pattern=ID_PATTERN)] | None = Field(
        default=None, description="Suite id the run must use; none means any suite is accepted."
    )
    allow_test_models: bool = Field(
        default=False,
        description="Accept runs answered or judged by the deterministic test model (for tests and demos only).",
    )


class InferenceSettings(_Strict):
    gpu: Literal["auto", "cpu"] | GpuLayers = Field(
        default="auto", description="GPU offload: auto, cpu or a layer count (-1: every layer)."
    )
    max_context: int = Field(
        default=4096, ge=MIN_MAX_CONTEXT, le=MAX_MAX_CONTEXT, description="Cap on the context size."
    )
    cache_budget_mb: int = Field(default=512, ge=0, description="Memory budget of the config-prefix KV cache.")


class StudioSettings(_Strict):
    identity: str | None = Field(default=None, description="Who you are when you author, review or approve.")
    single_person_approval: bool = Field(
        default=False,
        description="Allow approving your own config (recorded on every approval made this way).",
    )
    gate: GateSettings = Field(default_factory=GateSettings)
    inference: InferenceSettings = Field(default_factory=InferenceSettings)


def settings_path(home: Path | None = None) -> Path:
    return (home or app_home()) / SETTINGS_FILE


def load_settings(home: Path | None = None) -> StudioSettings:
    from studio.core.yamlio import load_document

    path = settings_path(home)
    if not path.is_file():
        return StudioSettings()
    return load_document(path, StudioSettings)


def save_settings(settings: StudioSettings, home: Path | None = None) -> None:
    from studio.core.fileio import atomic_write_text
    from studio.core.yamlio import dump_document

    atomic_write_text(settings_path(home), dump_document(settings))


def current_identity(explicit: str | None = None, settings: StudioSettings | None = None) -> str:
    """The acting identity: an explicit name, else $STUDIO_IDENTITY, else the settings, else the OS user."""
    return explicit or identity_source(settings.identity if settings is not None else None)[0]


def identity_source(configured: str | None = None) -> tuple[str, str]:
    """The default identity and where it comes from, in words (``$STUDIO_IDENTITY``, ``the identity setting``,
    ``the OS user``), so that a person can see why the studio acts as someone and how to change it."""
    env = os.environ.get("STUDIO_IDENTITY")
    if env:
        return env, "$STUDIO_IDENTITY"
    if configured:
        return configured, "the identity setting"
    try:
        return getpass.getuser(), "the OS user"
    except (OSError, KeyError):
        return "unknown", "no OS user name found"


# -- every setting by its dotted key, for `studio settings show/set` and their help -----------------------------


@dataclass(frozen=True)
class SettingKey:
    """One leaf setting: its dotted key (``gate.min_valid_rate``), what it means, its default and what it takes."""

    key: str
    description: str
    default: Any
    accepts: str


def setting_keys() -> list[SettingKey]:
    """Every leaf setting, in the order of the settings file, read from the settings model itself so that a new
    field is listed (and settable) without further code."""
    schema = StudioSettings.model_json_schema()
    defaults = StudioSettings().model_dump(mode="json")
    keys: list[SettingKey] = []

    def walk(node: dict[str, Any], prefix: str) -> None:
        for name, prop in node.get("properties", {}).items():
            resolved = _resolve(prop, schema)
            if "properties" in resolved:
                walk(resolved, f"{prefix}{name}.")
                continue
            key = prefix + name
            keys.append(SettingKey(key, prop.get("description", ""), _lookup(defaults, key), _accepts(prop, schema)))

    walk(schema, "")
    return keys


def setting_value(settings: StudioSettings, key: str) -> Any:
    """The JSON-ready value of one dotted key."""
    return _lookup(settings.model_dump(mode="json"), _known_key(key))


def with_setting(settings: StudioSettings, key: str, text: str) -> StudioSettings:
    """A copy of ``settings`` with one dotted key set from command-line text.

    The text is read as JSON where it parses (numbers, true/false, lists), as a plain string otherwise; ``none``,
    ``null`` or an empty string clear an optional value. The result is validated as a whole.
    """
    known = _known_key(key)
    data = _with_value(settings.model_dump(mode="json"), known, checked_setting(known, text))
    try:
        return StudioSettings.model_validate(data)
    except ValidationError as exc:
        where, message, _ = _setting_problem(exc)
        raise InputError("settings", f"{where}: {message}{_takes(where)}") from None


def checked_setting(key: str, text: str) -> Any:
    """The JSON value of command-line ``text`` (read as in :func:`with_setting`) for one key, checked on its own:
    an InputError naming the key and what it takes, whatever the other settings hold."""
    known = _known_key(key)
    value: Any = text
    if text.strip().lower() in {"null", "none", ""}:
        value = None
    else:
        with contextlib.suppress(json.JSONDecodeError, RecursionError):
            value = json.loads(text)
    try:
        alone = StudioSettings.model_validate(_with_value(StudioSettings().model_dump(mode="json"), known, value))
    except ValidationError as exc:
        _, message, _ = _setting_problem(exc)
        raise InputError("settings", f"{known}: {message}{_takes(known)}") from None
    return setting_value(alone, known)


@dataclass(frozen=True)
class SettingChange:
    """What :func:`change_setting` stored: the key's new value, and a bad value left elsewhere in the file."""

    value: Any
    still_bad: str | None = None


def change_setting(key: str, text: str, home: Path | None = None) -> SettingChange:
    """Set one key of the settings file from command-line text (read as in :func:`with_setting`).

    The new value is checked on its own, so a bad one is refused and nothing is written. The file is read without
    validating it: a file holding a value out of range cannot be loaded, and this is how such a value is replaced.
    Any other bad value is written back as it was and named in :attr:`SettingChange.still_bad`, so that a file
    with several can be repaired one key at a time.
    """
    known = _known_key(key)
    value = checked_setting(known, text)
    data = _with_value(saved_settings_data(home), known, value)
    try:
        settings = StudioSettings.model_validate(data)
    except ValidationError as exc:
        where, message, more = _setting_problem(exc)
        others = f" (and {more} more bad setting{'s' if more > 1 else ''})" if more else ""
        known_keys = {k.key for k in setting_keys()}
        fix = f"set it with `studio settings set {where} VALUE`" if where in known_keys else "remove it from the file"
        _save_data(data, home)
        return SettingChange(value, f"{where}: {message}{_takes(where)}{others}; {fix}")
    save_settings(settings, home)
    return SettingChange(value)


def saved_settings_data(home: Path | None = None) -> dict[str, Any]:
    """The saved settings as plain data, read but not validated (the defaults where there is no file); a file
    that cannot be read or is not a YAML mapping is an InputError naming it."""
    from studio.core.yamlio import parse_yaml_node, read_text

    path = settings_path(home)
    if not path.exists() and not path.is_symlink():
        return StudioSettings().model_dump(mode="json")
    text = read_text(path)  # InputError for a folder, a special or unreadable file, or one that is not UTF-8
    if not text.strip():
        return {}
    data, _ = parse_yaml_node(text, str(path))
    if not isinstance(data, dict):
        raise InputError(path, "expected a mapping of settings at the top level")
    return data


def _save_data(data: dict[str, Any], home: Path | None) -> None:
    """Write settings data that does not validate as it is (see :func:`change_setting`)."""
    import yaml

    from studio.core.fileio import atomic_write_text

    atomic_write_text(settings_path(home), yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def _with_value(data: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``data`` with the dotted ``key`` set (a missing or non-mapping parent becomes a mapping)."""
    data = copy.deepcopy(data)
    *parents, leaf = key.split(".")
    target = data
    for part in parents:
        child = target.get(part)
        if not isinstance(child, dict):
            child = target[part] = {}
        target = child
    target[leaf] = value
    return data


def _takes(key: str) -> str:
    return next((f" (takes {k.accepts})" for k in setting_keys() if k.key == key), "")


def _setting_problem(exc: ValidationError) -> tuple[str, str, int]:
    """The dotted key of the first bad setting, what is wrong with it, and how many other keys are bad. A value
    that no choice of a key accepts (``inference.gpu``: neither auto/cpu nor a layer count) is one problem."""
    keys = [k.key for k in setting_keys()]

    def key_of(loc: tuple[int | str, ...]) -> str:
        dotted = ".".join(str(part) for part in loc)
        return next((k for k in keys if dotted == k or dotted.startswith(k + ".")), dotted)

    errors = exc.errors(include_url=False)
    first = key_of(tuple(errors[0]["loc"]))
    problem = validation_problem(exc)
    same_key = sum(1 for error in errors if key_of(tuple(error["loc"])) == first)
    message = problem.message if same_key == 1 else "not an accepted value"
    given = errors[0].get("input")
    if errors[0]["type"] == "string_pattern_mismatch":
        message = f"{given!r} is not an id"
    elif errors[0]["type"] in {"greater_than_equal", "less_than_equal"} and not _finite(given):
        message = f"{given} is not a finite number"
    if first not in keys and problem.where == first:
        message = problem.message  # an unknown field in the file: its own message names it
    more = len({key_of(tuple(error["loc"])) for error in errors}) - 1
    return first, message, more


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError, OverflowError):
        return True  # not a number at all: the validation message says so


def _known_key(key: str) -> str:
    keys = [k.key for k in setting_keys()]
    if key not in keys:
        raise InputError("settings", f"unknown setting {key!r}{choices_hint(key, keys, label='settings')}")
    return key


def _lookup(data: dict[str, Any], key: str) -> Any:
    value: Any = data
    for part in key.split("."):
        value = value[part]
    return value


def _resolve(prop: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = prop.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        resolved: dict[str, Any] = schema["$defs"][ref.removeprefix("#/$defs/")]
        return resolved
    return prop


def _accepts(prop: dict[str, Any], schema: dict[str, Any]) -> str:
    """What a JSON Schema property takes, in words: ``a number from 0.0 to 1.0``, ``auto, cpu or a whole number``."""
    words = _accepted_words(prop, schema)
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _accepted_words(prop: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    prop = _resolve(prop, schema)
    if "anyOf" in prop:
        return [word for option in prop["anyOf"] for word in _accepted_words(option, schema)]
    if "enum" in prop:
        return [str(value) for value in prop["enum"]]
    if "const" in prop:
        return [str(prop["const"])]
    kind = prop.get("type")
    if kind in {"number", "integer"}:
        noun = "a number" if kind == "number" else "a whole number"
        low, high = prop.get("minimum"), prop.get("maximum")
        if low is not None and high is not None:
            return [f"{noun} from {low} to {high}"]
        return [f"{noun} of at least {low}" if low is not None else noun]
    if kind == "string" and prop.get("pattern") == ID_PATTERN:
        return ["an id (lower-case letters, digits, '.', '_' or '-')"]
    names = {"null": "none", "boolean": "true or false", "string": "text", "array": "a JSON list"}
    return [names.get(str(kind), "a JSON value")]
