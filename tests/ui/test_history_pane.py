from __future__ import annotations

from pytestqt.qtbot import QtBot

from studio.core.documents import SafetyConfig
from studio.core.evals.compare import config_history, diff_runs, regression_matrix
from studio.core.evals.runner import CheckRunner, CheckSpec
from studio.core.evals.suites import bundled_suite
from studio.core.inference.base import GenerationParams
from studio.core.inference.fake import FakeBackend
from studio.ui.context import AppContext
from studio.ui.history_pane import HistoryPane
from tests.ui.conftest import make_config


def _check(ctx: AppContext, config: SafetyConfig, model: str, seed: int = 0, probes: int = 5) -> str:
    """A check of ``config`` on a fake model; a different seed stands in for a model that answers differently."""
    suite = bundled_suite("scenario-game-studio")
    suite = suite.model_copy(update={"probes": suite.probes[:probes]})
    runner = CheckRunner(ctx.store.runs, FakeBackend(name=model))
    spec = CheckSpec(suite=suite, configs=(config,), params=GenerationParams(max_tokens=16), seed=seed)
    return list(runner.check(spec))[-1].run_id


def test_history_lists_runs_with_trend_and_diff(qtbot: QtBot, ctx: AppContext, qtmodeltester: object) -> None:
    config = ctx.store.configs.create(make_config("game-studio"))
    first = _check(ctx, config, "model-a")
    second = _check(ctx, config, "model-b", seed=1)
    pane = HistoryPane(ctx)
    qtbot.addWidget(pane)
    pane.select_config("game-studio")
    assert pane.signed_label.text().startswith("v1: stored by tester (")

    expected = config_history(ctx.store.runs, "game-studio")
    assert pane.history == expected
    assert {h.run_id for h in pane.history} == {first, second}
    assert pane.history_model.rowCount() == 2
    assert pane.trend.values() == [expected[1].score, expected[0].score]  # oldest first
    qtmodeltester.check(pane.history_model)  # type: ignore[attr-defined]

    older, newer = expected[1].run_id, expected[0].run_id
    assert pane.diff_a.currentData() == older and pane.diff_b.currentData() == newer
    rows = pane.diff_selected()
    assert rows == diff_runs(ctx.store.runs, older, newer)
    changed = [r for r in rows if r.flipped or (r.delta is not None and r.delta != 0)]
    assert changed, "different seeds give different verdicts"
    assert pane.diff_model.rowCount() == len(changed)
    pane.changes_only.setChecked(False)
    assert pane.diff_model.rowCount() == len(rows) == 5
    qtmodeltester.check(pane.diff_model)  # type: ignore[attr-defined]


def test_regression_matrix_highlights_drops(qtbot: QtBot, ctx: AppContext, qtmodeltester: object) -> None:
    configs = [
        ctx.store.configs.create(make_config("game-studio")),
        ctx.store.configs.create(make_config("kids-books", "## Scope\nA children's publisher; keep it gentle.\n")),
    ]
    for config in configs:
        _check(ctx, config, "model-a")
    for config in configs:
        _check(ctx, config, "model-b", seed=30)
    pane = HistoryPane(ctx)
    qtbot.addWidget(pane)
    assert pane.matrix_model.rowCount() == 0  # nothing approved yet
    assert "No approved config" in pane.matrix_summary.text()

    pane.approved_only.setChecked(False)
    pane.set_baseline("model-a")
    expected = regression_matrix(ctx.store.runs, ["game-studio", "kids-books"], ["model-a", "model-b"])
    assert pane.matrix == expected
    assert pane.matrix_model.models == ["model-a", "model-b"]
    assert pane.matrix_model.columnCount() == 3
    drops = [(row.config_id, "model-b") for row in expected if row.deltas[1] is not None and row.deltas[1] <= -0.05]
    assert drops == [("game-studio", "model-b")], "with seed 30 model-b drops on one config and gains on the other"
    assert pane.matrix_model.drops() == drops
    for row, matrix_row in enumerate(expected):
        background = pane.matrix_model.data(pane.matrix_model.index(row, 2), 8)  # BackgroundRole
        assert (background is not None) == ((matrix_row.config_id, "model-b") in drops)
    qtmodeltester.check(pane.matrix_model)  # type: ignore[attr-defined]
