from __future__ import annotations

from pytestqt.qtbot import QtBot

from studio.core.evals.compare import compare_configs
from studio.core.evals.runner import CheckRunner, CheckSpec
from studio.core.evals.suites import bundled_suite
from studio.core.inference.base import GenerationParams
from studio.core.inference.fake import FakeBackend
from studio.ui.compare_pane import ComparePane, diff_html
from studio.ui.context import AppContext
from tests.ui.conftest import make_config

TEXT_A = "## Scope\nA game studio writing dark fiction. Violence in stories is fine.\n"
TEXT_B = "## Scope\nA game studio writing dark fiction. Violence in stories is not allowed. Drugs stay vague.\n"


def _run_two_configs(ctx: AppContext) -> str:
    first = ctx.store.configs.create(make_config("studio-a", TEXT_A))
    second = ctx.store.configs.create(make_config("studio-b", TEXT_B))
    suite = bundled_suite("scenario-game-studio")
    suite = suite.model_copy(update={"probes": suite.probes[:8]})
    runner = CheckRunner(ctx.store.runs, FakeBackend(name="fake-model"))
    spec = CheckSpec(suite=suite, configs=(first, second), params=GenerationParams(max_tokens=16))
    events = list(runner.check(spec))
    return events[-1].run_id


def test_compare_lists_flips_and_links_them_to_hunks(qtbot: QtBot, ctx: AppContext, qtmodeltester: object) -> None:
    run_id = _run_two_configs(ctx)
    pane = ComparePane(ctx)
    qtbot.addWidget(pane)
    pane.set_sides(run_id, "studio-a", run_id, "studio-b")
    rows = pane.compare()

    hunks, expected = compare_configs(ctx.store.runs, run_id, "studio-a", run_id, "studio-b")
    assert [r.key for r in rows] == [r.key for r in expected]
    flips = [r for r in expected if r.flipped]
    assert flips, "the fake judge gives these two configs different verdicts on some probes"
    assert [r.key for r in pane.shown_rows()] == [r.key for r in flips]
    assert f"<b>{len(flips)}</b> flipped" in pane.summary.text()
    assert len(hunks) == 1 and "not allowed" in pane.diff_view.toPlainText()
    qtmodeltester.check(pane.pair_model)  # type: ignore[attr-defined]

    pane.select_row(0)
    assert pane.highlighted_hunk == flips[0].hunk.index  # type: ignore[union-attr]
    assert "likely cause of the selected flip" in pane.diff_view.toPlainText()
    item_a = ctx.store.runs.item(run_id, "studio-a", flips[0].key)
    assert pane.reply_a.toPlainText() == item_a.response

    pane.only_flips.setChecked(False)
    assert len(pane.shown_rows()) == 8


def test_same_config_on_one_run_has_no_hunks_or_flips(qtbot: QtBot, ctx: AppContext) -> None:
    run_id = _run_two_configs(ctx)
    pane = ComparePane(ctx)
    qtbot.addWidget(pane)
    pane.set_sides(run_id, "studio-a", run_id, "studio-a")
    pane.compare()
    assert pane.flips() == []
    assert "identical" in pane.diff_view.toPlainText()


def test_diff_html_frames_only_the_highlighted_hunk() -> None:
    from studio.core.evals.compare import diff_hunks

    hunks = diff_hunks("One. Two. Three.", "One. Deux. Three. Four.")
    assert len(hunks) == 2
    page = diff_html(hunks, highlighted=1)
    assert page.count("likely cause") == 1
    assert page.index("likely cause") > page.index("Hunk 2") - 1
    assert "− Two." in page and "+ Deux." in page and "+ Four." in page
