"""The preferences dialog and the settings it writes."""

from __future__ import annotations

from pathlib import Path

from pytestqt.qtbot import QtBot

from studio.core.settings import StudioSettings, load_settings
from studio.ui.context import AppContext
from studio.ui.preferences import PreferencesDialog


def test_preferences_edit_a_copy_of_the_settings(qtbot: QtBot) -> None:
    original = StudioSettings()
    dialog = PreferencesDialog(original)
    qtbot.addWidget(dialog)
    dialog.identity_edit.setText("  rosa  ")
    dialog.gpu_combo.setCurrentIndex(dialog.gpu_combo.findData("layers"))
    dialog.gpu_layers_spin.setValue(20)
    dialog.context_spin.setValue(2048)
    updated = dialog.updated_settings()
    assert updated.identity == "rosa"
    assert updated.inference.gpu == 20 and updated.inference.max_context == 2048
    assert original.identity is None and original.inference.gpu == "auto"
    dialog.gpu_combo.setCurrentIndex(dialog.gpu_combo.findData("cpu"))
    dialog.identity_edit.clear()
    cpu_only = dialog.updated_settings()
    assert cpu_only.inference.gpu == "cpu" and cpu_only.identity is None


def test_settings_round_trip_through_the_home(ctx: AppContext, studio_home: Path) -> None:
    ctx.settings.inference.gpu = "cpu"
    ctx.settings.inference.max_context = 1024
    ctx.save_settings()
    again = load_settings(studio_home)
    assert again.inference.gpu == "cpu" and again.inference.max_context == 1024


def test_recent_files_are_capped_and_unique(ctx: AppContext, tmp_path: Path) -> None:
    for n in range(10):
        ctx.add_recent_file(tmp_path / f"c{n}.yaml")
    ctx.add_recent_file(tmp_path / "c3.yaml")
    recent = ctx.recent_files()
    assert recent[0] == str(tmp_path / "c3.yaml")
    assert len(recent) == 8 and len(set(recent)) == 8
