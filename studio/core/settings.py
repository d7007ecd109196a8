"""User settings kept in ``<home>/settings.yaml``: identity, the approval gate, inference defaults."""

from __future__ import annotations

import getpass
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

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
    if explicit:
        return explicit
    env = os.environ.get("STUDIO_IDENTITY")
    if env:
        return env
    if settings is not None and settings.identity:
        return settings.identity
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"
