"""Recommended models in the model manager: verdicts for this machine, a GGUF download from the stand-in Hub, and a
conversion run by a stand-in trainer that speaks the JSON-lines protocol (the real trainer is tested in
tests/trainer/test_hubget.py)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtGui import QShowEvent
from pytestqt.qtbot import QtBot

from studio.core.inference import recommended
from studio.core.inference.recommended import Machine, Verdict, assess_all, load_recommended
from studio.ui.context import AppContext
from studio.ui.models_pane import ModelManagerPane
from studio.ui.recommended_panel import RecommendedPanel
from tests.core.hub_standin import HubStandin, point_library_at
from tests.core.test_gguf import STRING, UINT32, build_gguf

GB = 1_000_000_000
BIG = Machine(64 * GB, 60 * GB, 500 * GB)
SMALL = Machine(4 * GB, 3 * GB, 500 * GB)

FAKE_TRAINER = r"""
import json, os, sys, time
with open(os.environ["FAKE_ARGS"], "w") as handle:
    json.dump(sys.argv[1:], handle)
def emit(**event):
    print(json.dumps(event), flush=True)
emit(event="start", command="convert-hub")
for done in (0, 500, 1000):
    emit(event="progress", stage="download", done=done, total=1000, eta_s=None)
    time.sleep(float(os.environ.get("FAKE_DELAY", "0")))
for stage in ("convert", "quantize", "probe"):
    emit(event="progress", stage=stage, done=0, total=1, eta_s=None)
    emit(event="progress", stage=stage, done=1, total=1, eta_s=0.0)
emit(event="done", command="convert-hub", registered="llama3.1-8b-instruct-cosalign-q4_k_m", path="/m/x.gguf")
"""


@pytest.fixture
def machine(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Machine]]:
    current = [BIG]
    monkeypatch.setattr(recommended, "this_machine", lambda store=None: current[0])
    yield current


def _panel(qtbot: QtBot, ctx: AppContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RecommendedPanel:
    script = tmp_path / "fake_trainer.py"
    script.write_text(FAKE_TRAINER, encoding="utf-8")
    monkeypatch.setenv("FAKE_ARGS", str(tmp_path / "args.json"))
    panel = RecommendedPanel(ctx, trainer=(sys.executable, str(script)))
    qtbot.addWidget(panel)
    panel.showEvent(QShowEvent())  # the first show assesses the machine
    qtbot.waitUntil(lambda: panel.model.rowCount() > 0, timeout=10000)
    return panel


def test_rows_show_figures_and_this_machines_verdict(
    qtbot: QtBot, ctx: AppContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, machine: list[Machine]
) -> None:
    panel = _panel(qtbot, ctx, tmp_path, monkeypatch)
    expected = assess_all(load_recommended(), BIG)
    assert panel.model.rowCount() == len(expected)
    first = [panel.model.data(panel.model.index(0, c)) for c in range(panel.model.columnCount())]
    assert first[:4] == ["Llama3.1-8B-Instruct-CoSAlign", "Q4_K_M", "candidate", "converted here"]
    assert first[7] == "fits" and first[8] == expected[0].reason
    assert panel.machine_label.text().startswith("This machine: 64.0 GB RAM (60.0 GB available), 500.0 GB free")
    panel.select("llama3.1-8b-cosalign", "q4_k_m")
    assert panel.get_button.isEnabled()

    machine[0] = SMALL
    panel.refresh()
    qtbot.waitUntil(lambda: panel.model.row_at(0).verdict == Verdict.TOO_BIG, timeout=10000)
    panel.select("llama3.1-8b-cosalign", "q4_k_m")
    assert not panel.get_button.isEnabled()
    assert "only 4.0 GB RAM" in panel.get_button.toolTip()
    assert panel.get_selected() is False


def test_conversion_runs_the_trainer_and_follows_its_progress(
    qtbot: QtBot, ctx: AppContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, machine: list[Machine]
) -> None:
    panel = _panel(qtbot, ctx, tmp_path, monkeypatch)
    panel.select("llama3.1-8b-cosalign", "q4_k_m")
    panel.keep_f16.setChecked(True)
    seen: list[str] = []
    panel.progress_bar.valueChanged.connect(lambda _v: seen.append(panel.progress_bar.format()))
    with qtbot.waitSignal(panel.finished, timeout=20000) as finished:
        assert panel.get_selected()
        assert not panel.get_button.isEnabled() and panel.cancel_button.isEnabled()
    assert finished.args == ["llama3.1-8b-instruct-cosalign-q4_k_m"]
    args = (tmp_path / "args.json").read_text()
    assert args == '["convert-hub", "jackzhang/Llama3.1-8B-Instruct-CoSAlign", "--quant", "q4_k_m", "--keep-f16"]'
    assert any(text.startswith("Downloading: ") for text in seen)
    assert panel.status_label.text() == "Registered llama3.1-8b-instruct-cosalign-q4_k_m (/m/x.gguf)"
    assert panel.get_button.isEnabled() and not panel.cancel_button.isEnabled()


def test_cancel_stops_the_trainer(
    qtbot: QtBot, ctx: AppContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, machine: list[Machine]
) -> None:
    monkeypatch.setenv("FAKE_DELAY", "5")
    panel = _panel(qtbot, ctx, tmp_path, monkeypatch)
    panel.select("llama3.1-8b-cosalign", "q8_0")
    with qtbot.waitSignal(panel.finished, timeout=20000) as finished:
        panel.get_selected()
        qtbot.waitUntil(lambda: (tmp_path / "args.json").exists(), timeout=10000)
        panel.cancel()
    assert finished.args == [None]
    assert panel.status_label.text() == "Cancelled; get it again to resume"
    assert not panel.process.running


@pytest.mark.network_local
def test_a_gguf_model_is_downloaded_and_registered_in_the_manager(
    qtbot: QtBot, ctx: AppContext, monkeypatch: pytest.MonkeyPatch, machine: list[Machine]
) -> None:
    model = build_gguf([("general.architecture", STRING, "llama"), ("llama.context_length", UINT32, 256)])
    with HubStandin() as standin:
        standin.add_file("bartowski/Llama-3.2-3B-Instruct-GGUF", "Llama-3.2-3B-Instruct-Q4_K_M.gguf", model)
        point_library_at(monkeypatch, standin.endpoint)
        pane = ModelManagerPane(ctx)
        qtbot.addWidget(pane)
        panel = pane.recommended
        panel.showEvent(QShowEvent())
        qtbot.waitUntil(lambda: panel.model.rowCount() > 0, timeout=10000)
        panel.select("llama3.2-3b-instruct", "q4_k_m")
        with qtbot.waitSignal(panel.finished, timeout=20000) as finished:
            assert panel.get_selected()
        assert finished.args == ["Llama-3.2-3B-Instruct-Q4_K_M"]
        assert pane.selected() is not None and pane.selected().name == "Llama-3.2-3B-Instruct-Q4_K_M"  # type: ignore[union-attr]
        pane.shutdown()
