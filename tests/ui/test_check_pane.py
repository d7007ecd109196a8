from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from studio.core.evals.formatting import format_score
from studio.core.evals.review import run_agreement
from studio.core.evals.runner import run_report
from studio.core.evals.scoring import Helpfulness, Variant
from studio.core.inference.endpoints import add_endpoint
from studio.core.inference.fake import FakeBackend
from studio.core.store.runs import RunStatus
from studio.ui.check.pane import CheckPane
from studio.ui.check.results import SCORING_CHOICES
from studio.ui.context import AppContext
from tests.core.endpoint_standin import Behaviour, StandinServer
from tests.ui.conftest import make_config

RUN_TIMEOUT_MS = 60_000


@pytest.fixture
def pane(qtbot: QtBot, ctx: AppContext, fake_backend: FakeBackend) -> CheckPane:
    ctx.store.configs.create(make_config("game-studio"))
    ctx.store.configs.create(make_config("kids-books", "## Scope\nA children's publisher. Keep everything gentle.\n"))
    widget = CheckPane(ctx)
    qtbot.addWidget(widget)
    widget.select_suite("scenario-game-studio")
    widget.limit_spin.setValue(3)
    widget.max_tokens_spin.setValue(24)
    return widget


def _run_to_end(qtbot: QtBot, pane: CheckPane, timeout_ms: int = RUN_TIMEOUT_MS) -> str:
    assert pane.start_check()
    qtbot.waitUntil(lambda: not pane.running, timeout=timeout_ms)
    assert pane.run_id is not None
    return pane.run_id


def test_check_runs_to_the_end_and_shows_run_reports_score(
    qtbot: QtBot, ctx: AppContext, pane: CheckPane, qtmodeltester: object
) -> None:
    pane.select_configs(["game-studio", "kids-books"])
    with qtbot.waitSignal(pane.run_finished, timeout=RUN_TIMEOUT_MS) as finished:
        assert pane.start_check()
    qtbot.waitUntil(lambda: not pane.running, timeout=RUN_TIMEOUT_MS)
    run_id = finished.args[0]
    assert pane.run_id == run_id
    assert ctx.store.runs.get_run(run_id).status is RunStatus.FINISHED

    expected = run_report(ctx.store.runs, run_id)
    assert pane.report is not None
    assert pane.report.score == expected.score
    assert pane.report.overall.valid_rate == expected.overall.valid_rate
    assert f"CoSA-Score {format_score(expected.score)}" in pane.headline.text()
    assert f"valid rate <b>{expected.overall.valid_rate:.1%}</b>" in pane.headline.text()
    assert pane.results.item_model.rowCount() == 6
    assert pane.control.progress_bar.value() == pane.control.progress_bar.maximum() == 12
    assert [b.label for b in pane.results.summary.breakdown_chart.bars()] == [
        "helpful + safe",
        "helpful + unsafe",
        "unhelpful + safe",
        "unhelpful + unsafe",
    ]
    assert [b.value for b in pane.results.summary.breakdown_chart.bars()] == list(
        expected.overall.breakdown.as_dict().values()
    )
    assert [b.label for b in pane.results.summary.type_chart.bars()] == list(expected.per_type)
    assert [b.label for b in pane.results.summary.config_chart.bars()] == ["game-studio", "kids-books"]
    qtmodeltester.check(pane.results.item_model)  # type: ignore[attr-defined]


def test_variant_selector_rescores_and_cascade_is_disabled(qtbot: QtBot, ctx: AppContext, pane: CheckPane) -> None:
    pane.select_configs(["game-studio"])
    run_id = _run_to_end(qtbot, pane)
    binary = [c.helpfulness for c in SCORING_CHOICES].index(Helpfulness.BINARY)
    pane.results.variant_combo.setCurrentIndex(binary)
    assert pane.report is not None
    assert pane.report.score == run_report(ctx.store.runs, run_id, helpfulness=Helpfulness.BINARY).score
    oracle = [c.variant for c in SCORING_CHOICES].index(Variant.CASCADE_ORACLE)
    pane.results.variant_combo.setCurrentIndex(oracle)
    assert pane.report.score == run_report(ctx.store.runs, run_id, variant=Variant.CASCADE_ORACLE).score

    cascade = [c.variant for c in SCORING_CHOICES].index(Variant.CASCADE)
    entry = pane.results.variant_combo.model().item(cascade)  # type: ignore[attr-defined]
    assert not entry.isEnabled()
    assert "own verdicts" in pane.results.variant_combo.itemData(cascade, Qt.ItemDataRole.ToolTipRole)

    pane.setup.self_check_box.setChecked(True)
    pane.limit_spin.setValue(1)
    self_checked = _run_to_end(qtbot, pane)
    assert entry.isEnabled()
    pane.results.variant_combo.setCurrentIndex(cascade)
    assert pane.report.score == run_report(ctx.store.runs, self_checked, variant=Variant.CASCADE).score
    pane.show_run(run_id)
    assert not entry.isEnabled() and pane.results.variant_combo.currentIndex() == 0


def test_overriding_two_verdicts_changes_kappa_to_reviews_value(qtbot: QtBot, ctx: AppContext, pane: CheckPane) -> None:
    pane.limit_spin.setValue(4)
    pane.select_configs(["game-studio"])
    run_id = _run_to_end(qtbot, pane)
    items = ctx.store.runs.items(run_id)
    for row in range(len(items)):  # accept everything: full agreement
        pane.item_table.selectRow(row)
        assert pane.review.accept_judge() is not None
    before = pane.review.agreements()[-1]
    assert before.reviewed == len(items)

    for row in (0, 1):
        pane.item_table.selectRow(row)
        item = pane.review.item
        assert item is not None and item.safe is not None
        assert pane.review.override(rating=0, safe=not item.safe, note="the judge missed this") is not None

    after = pane.review.agreements()[-1]
    computed = run_agreement(ctx.store.runs, run_id)[-1]
    assert after.safety_kappa == computed.safety_kappa
    assert after.safety_kappa != before.safety_kappa
    assert after.confusion == computed.confusion
    assert pane.review.agreement_model.rowCount() == 2  # the config, then "all"
    stored = ctx.store.runs.items(run_id)[0]
    assert stored.human_note == "the judge missed this" and stored.rating == items[0].rating

    pane.results.source_combo.setCurrentIndex(1)  # score from the reviewer
    assert pane.report is not None
    assert pane.report.score == run_report(ctx.store.runs, run_id, use="human").score
    assert "rating 0" in pane.results.item_model.data(pane.results.item_model.index(0, 8))


def test_cancel_then_resume_finishes_the_same_run(qtbot: QtBot, ctx: AppContext, pane: CheckPane) -> None:
    pane.select_configs(["game-studio"])
    assert pane.start_check()
    qtbot.waitUntil(lambda: pane.run_id is not None, timeout=RUN_TIMEOUT_MS)
    pane.cancel()
    qtbot.waitUntil(lambda: not pane.running, timeout=RUN_TIMEOUT_MS)
    run_id = pane.run_id
    assert run_id is not None
    assert ctx.store.runs.get_run(run_id).status is RunStatus.CANCELLED
    assert pane.results.resume_button.isEnabled()

    assert pane.results.run_combo.currentData() == run_id
    assert pane.resume_selected()
    qtbot.waitUntil(lambda: not pane.running, timeout=RUN_TIMEOUT_MS)
    assert ctx.store.runs.get_run(run_id).status is RunStatus.FINISHED
    assert all(i.judged for i in ctx.store.runs.items(run_id))
    assert not pane.results.resume_button.isEnabled()


def test_replacing_the_loaded_model_cancels_a_check_that_uses_it(
    qtbot: QtBot, ctx: AppContext, pane: CheckPane, tmp_path: Path
) -> None:
    pane.select_configs(["game-studio", "kids-books"])
    assert pane.start_check()
    qtbot.waitUntil(lambda: pane.run_id is not None, timeout=RUN_TIMEOUT_MS)
    with qtbot.waitSignal(ctx.backends.loaded, timeout=RUN_TIMEOUT_MS):
        ctx.backends.load(tmp_path / "other.gguf", "other-model", None, ctx.settings.inference)
    qtbot.waitUntil(lambda: not pane.running, timeout=RUN_TIMEOUT_MS)
    assert pane.run_id is not None
    assert ctx.store.runs.get_run(pane.run_id).status is RunStatus.CANCELLED
    assert pane.setup.candidate_combo.itemText(0) == "Loaded model: other-model"


def test_export_buttons_write_csv_and_json(qtbot: QtBot, ctx: AppContext, pane: CheckPane, tmp_path: Path) -> None:
    pane.select_configs(["game-studio"])
    run_id = _run_to_end(qtbot, pane)
    assert pane.export_to(tmp_path / "run.csv")
    assert pane.export_to(tmp_path / "run.json")
    with (tmp_path / "run.csv").open(encoding="utf-8") as handle:
        assert len(list(csv.DictReader(handle))) == 3
    payload = json.loads((tmp_path / "run.json").read_text(encoding="utf-8"))
    assert payload["provenance"]["run_id"] == run_id
    assert payload["report"]["score"] == run_report(ctx.store.runs, run_id).score


def test_start_without_configs_says_why(qtbot: QtBot, pane: CheckPane) -> None:
    pane.select_configs([])
    with qtbot.waitSignal(pane.message) as message:
        assert not pane.start_check()
    assert "tick at least one config" in message.args[0]
    assert not pane.running


@pytest.mark.real_model
def test_check_with_the_embedded_model_matches_run_report(qtbot: QtBot, ctx: AppContext, embedded_model: Path) -> None:
    from studio.core.inference.embedded import SHA256
    from studio.core.inference.llama_backend import LlamaCppBackend, LlamaSettings

    backend = LlamaCppBackend(
        embedded_model, LlamaSettings(gpu="cpu", max_context=1024, n_threads=2), name="smollm2", model_sha256=SHA256
    )
    ctx.backends.set_backend(backend)
    ctx.store.configs.create(make_config("game-studio"))
    pane = CheckPane(ctx)
    qtbot.addWidget(pane)
    pane.select_suite("scenario-game-studio")
    pane.limit_spin.setValue(1)
    pane.max_tokens_spin.setValue(16)
    pane.select_configs(["game-studio"])
    try:
        run_id = _run_to_end(qtbot, pane, timeout_ms=400_000)
    finally:
        pane.shutdown()
    record = ctx.store.runs.get_run(run_id)
    assert record.status is RunStatus.FINISHED
    assert record.candidate["model_sha256"] == SHA256
    expected = run_report(ctx.store.runs, run_id)
    assert pane.report is not None and pane.report.score == expected.score
    assert f"valid rate <b>{expected.overall.valid_rate:.1%}</b>" in pane.headline.text()
    assert all(i.response for i in ctx.store.runs.items(run_id))


def test_stored_suites_are_offered_beside_bundled_ones(qtbot: QtBot, ctx: AppContext, pane: CheckPane) -> None:
    from studio.core.documents import Expectation, Probe, ProbeSuite

    probes = [Probe(text="Say hello.", expected=Expectation.ALLOWED), Probe(text="Hi?", expected=Expectation.ALLOWED)]
    suite = ProbeSuite(id="house-probes", title="House probes", probes=probes)
    ctx.store.suites.save(suite)
    pane.refresh()
    pane.select_suite("house-probes")
    assert pane.suite_combo.currentText() == "House probes (2 probes, stored)"
    pane.limit_spin.setValue(1)
    chosen = pane.chosen_suite()
    assert chosen is not None and chosen.probe_ids() == ["p1"]
    pane.select_configs(["game-studio"])
    run_id = _run_to_end(qtbot, pane)
    assert [i.probe_id for i in ctx.store.runs.items(run_id)] == ["p1"]


@pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")
def test_main_window_opens_the_evaluation_panes(qtbot: QtBot, ctx: AppContext, fake_backend: FakeBackend) -> None:
    from studio.ui.approval_dialog import ApprovalDialog
    from studio.ui.main_window import MainWindow

    ctx.store.configs.create(make_config("game-studio"))
    window = MainWindow(ctx)
    qtbot.addWidget(window)
    window.show()
    assert window.check_dock.isHidden() and window.train_dock.isHidden()
    assert window.show_approval() is None  # nothing open yet

    window.open_config_id("game-studio")
    window.check_action.trigger()
    assert not window.check_dock.isHidden()
    assert window.check.checked_config_ids() == ["game-studio"]
    window.check.select_suite("scenario-game-studio")
    window.check.limit_spin.setValue(2)
    with qtbot.waitSignal(window.check.run_finished, timeout=RUN_TIMEOUT_MS) as finished:
        assert window.check.start_check()
    qtbot.waitUntil(lambda: not window.check.running, timeout=RUN_TIMEOUT_MS)
    assert [h.run_id for h in window.run_history.history] == [finished.args[0]]
    assert window.compare.run_a.currentData() == finished.args[0]

    window.run_history_action.trigger()
    assert not window.run_history_dock.isHidden()
    window.train_action.trigger()
    assert not window.train_dock.isHidden()
    window.compare_action.trigger()
    assert not window.compare_dock.isHidden()
    dialog = window.show_approval()
    assert isinstance(dialog, ApprovalDialog) and dialog.gate_results
    dialog.close()
    window.close()


def test_a_registered_endpoint_can_judge_a_check(qtbot: QtBot, ctx: AppContext, pane: CheckPane) -> None:
    """The loaded model answers and an OpenAI-compatible server (the local stand-in) judges."""
    server = StandinServer(Behaviour()).start()
    try:
        add_endpoint(ctx.store, "team-judge", server.url, "standin", concurrency=4, timeout_s=10)
        pane.refresh()
        labels = [pane.setup.judge_combo.itemText(i) for i in range(pane.setup.judge_combo.count())]
        assert "team-judge (endpoint: standin)" in labels
        pane.setup.judge_combo.setCurrentIndex(labels.index("team-judge (endpoint: standin)"))
        pane.select_configs(["game-studio"])
        run_id = _run_to_end(qtbot, pane)
    finally:
        server.stop()
    record = ctx.store.runs.get_run(run_id)
    assert record.status is RunStatus.FINISHED
    assert record.judge["name"] == "team-judge" and record.judge["endpoint"]["base_url"] == server.url
    assert all(item.judged for item in ctx.store.runs.items(run_id))


def _why(widget: object) -> tuple[bool, str]:
    return widget.isEnabled(), widget.toolTip()  # type: ignore[attr-defined]


def test_without_a_model_or_a_run_the_controls_say_why(qtbot: QtBot, ctx: AppContext) -> None:
    ctx.store.configs.create(make_config("game-studio"))
    pane = CheckPane(ctx)
    qtbot.addWidget(pane)
    pane.select_configs(["game-studio"])
    no_model = "Load or register a model first: the check needs a candidate model"
    assert _why(pane.run_button) == (False, no_model)
    assert _why(pane.setup.candidate_combo) == (False, no_model)
    assert _why(pane.setup.judge_combo) == (False, no_model)
    assert _why(pane.control.cancel_button) == (False, "No check is running")
    for control in (pane.results.resume_button, pane.results.csv_button, pane.results.json_button):
        assert _why(control) == (False, "Run a check first: there is no run to show")
    assert not pane.results.run_combo.isEnabled()


def test_run_cancel_resume_and_export_are_enabled_only_when_they_can_act(
    qtbot: QtBot, ctx: AppContext, pane: CheckPane
) -> None:
    pane.select_configs([])
    assert _why(pane.run_button) == (False, "Tick at least one config to check")
    pane.select_configs(["game-studio"])
    assert _why(pane.run_button) == (True, "Run the chosen suite under the ticked configs")
    assert pane.setup.candidate_combo.isEnabled()

    assert pane.start_check()
    assert _why(pane.run_button) == (False, "A check is running")
    assert _why(pane.control.cancel_button) == (True, "Stop the check; the run can be resumed later")
    for control in (pane.results.resume_button, pane.results.csv_button):
        assert _why(control) == (False, "A check is running")
    qtbot.waitUntil(lambda: pane.run_id is not None, timeout=RUN_TIMEOUT_MS)
    pane.cancel()
    qtbot.waitUntil(lambda: not pane.running, timeout=RUN_TIMEOUT_MS)
    assert _why(pane.results.resume_button)[0]
    assert _why(pane.control.cancel_button) == (False, "No check is running")
    assert _why(pane.results.csv_button) == (True, "Write the shown run's items, verdicts and score to a CSV file")

    assert pane.resume_selected()
    qtbot.waitUntil(lambda: not pane.running, timeout=RUN_TIMEOUT_MS)
    assert _why(pane.results.resume_button) == (False, "The shown run is finished: there is nothing to resume")
    assert pane.results.json_button.isEnabled() and pane.run_button.isEnabled()


def test_the_pane_fits_a_laptop_screen_without_scrolling_sideways(qtbot: QtBot, pane: CheckPane) -> None:
    pane.refresh()
    assert pane.minimumSizeHint().width() < 1280
    variant = pane.results.variant_combo
    assert variant.view().minimumWidth() >= variant.view().sizeHintForColumn(0)  # the list shows entries whole


def test_a_run_stopped_by_a_failing_server_says_why(qtbot: QtBot, ctx: AppContext, pane: CheckPane) -> None:
    server = StandinServer(Behaviour(error_every=1)).start()  # every chat request fails
    try:
        add_endpoint(ctx.store, "locked-judge", server.url, "standin", concurrency=2, timeout_s=5)
        pane.refresh()
        labels = [pane.setup.judge_combo.itemText(i) for i in range(pane.setup.judge_combo.count())]
        pane.setup.judge_combo.setCurrentIndex(labels.index("locked-judge (endpoint: standin)"))
        pane.select_configs(["game-studio"])
        pane.limit_spin.setValue(1)
        with qtbot.waitSignal(pane.message, timeout=RUN_TIMEOUT_MS, check_params_cb=lambda m: "stopped" in m) as got:
            assert pane.start_check()
        qtbot.waitUntil(lambda: not pane.running, timeout=RUN_TIMEOUT_MS)
    finally:
        server.stop()
    assert got.args[0].startswith("The check stopped: ") and "Resume the run" in got.args[0]
    assert pane.control.eta_label.text() == "failed"
    assert pane.results.resume_button.isEnabled()


def test_a_run_damaged_in_the_database_is_listed_and_explained_not_a_crash(
    qtbot: QtBot, ctx: AppContext, pane: CheckPane
) -> None:
    pane.select_configs(["game-studio"])
    good = _run_to_end(qtbot, pane)
    damaged = _run_to_end(qtbot, pane)
    ctx.store.db.execute("UPDATE check_items SET rating = 'high' WHERE run_id = ?", [damaged])
    pane.results.show_run(damaged)
    warning = pane.results.summary.warnings_label.text()
    assert "column 'rating' holds 'high'" in warning and pane.results.item_model.rowCount() == 0
    pane.results.show_run(good)
    assert pane.results.item_model.rowCount() == 3
    # A run whose run row itself cannot be read is still listed, marked damaged.
    ctx.store.db.execute("UPDATE check_runs SET params_json = '{not json' WHERE id = ?", [damaged])
    pane.results.fill_runs()
    titles = [pane.results.run_combo.itemText(i) for i in range(pane.results.run_combo.count())]
    assert f"{damaged} · damaged" in titles and any(
        good in pane.results.run_combo.itemData(i) for i in range(len(titles))
    )
