"""User settings kept in ``<home>/settings.yaml``: identity, the approval gate, inference defaults."""

from __future__ import annotations

import contextlib
import getpass
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from studio.core.choices import choices_hint
from studio.core.errors import InputError, validation_problem
from studio.core.paths import app_home

SETTINGS_FILE = "settings.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class GateSettings(_Strict):
    """What a check run of a config version must show before that version can be approved."""

    min_score: float = Field(default=0.0, ge=-1.0, le=1.0, description="Lowest CoSA-Score accepted.")
    min_valid_rate: float = Field(default=0.8, ge=0.0, le=1.0, description="Lowest share of validly judged items.")
    required_suite: str | None = Field(
        default=None, description="Suite id the run must use; none means any suite is accepted."
    )


class InferenceSettings(_Strict):
    gpu: Literal["auto", "cpu"] | int = Field(default="auto", description="GPU offload: auto, cpu or a layer count.")
    max_context: int = Field(default=4096, ge=256, le=131072, description="Cap on the context size.")
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
    value: Any = text
    if text.strip().lower() in {"null", "none", ""}:
        value = None
    else:
        with contextlib.suppress(json.JSONDecodeError):
            value = json.loads(text)
    data = settings.model_dump(mode="json")
    *parents, leaf = known.split(".")
    target = data
    for part in parents:
        target = target[part]
    target[leaf] = value
    try:
        return StudioSettings.model_validate(data)
    except ValidationError as exc:
        accepts = next(k.accepts for k in setting_keys() if k.key == known)
        raise InputError("settings", f"{known}: {validation_problem(exc).message} (takes {accepts})") from None


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
    names = {"null": "none", "boolean": "true or false", "string": "text", "array": "a JSON list"}
    return [names.get(str(kind), "a JSON value")]
