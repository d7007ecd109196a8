from __future__ import annotations

from pytestqt.qtbot import QtBot

from studio.core.evals.review import run_agreement
from studio.core.evals.runner import CheckRunner, CheckSpec
from studio.core.evals.suites import bundled_suite
from studio.core.inference.base import GenerationParams
from studio.core.inference.fake import FakeBackend
from studio.ui.context import AppContext
from studio.ui.review import ReviewPanel
from tests.ui.conftest import make_config


def _run(ctx: AppContext, probes: int = 3) -> str:
    config = ctx.store.configs.create(make_config("game-studio"))
    suite = bundled_suite("scenario-game-studio")
    suite = suite.model_copy(update={"probes": suite.probes[:probes]})
    runner = CheckRunner(ctx.store.runs, FakeBackend(name="fake-model"))
    spec = CheckSpec(suite=suite, configs=(config,), params=GenerationParams(max_tokens=16))
    return list(runner.check(spec))[-1].run_id


def test_override_is_stored_beside_the_judge_and_can_be_cleared(
    qtbot: QtBot, ctx: AppContext, qtmodeltester: object
) -> None:
    run_id = _run(ctx)
    panel = ReviewPanel(ctx.store)
    qtbot.addWidget(panel)
    panel.set_run(run_id)
    assert not panel.override_button.isEnabled()  # nothing selected
    item = ctx.store.runs.items(run_id)[0]
    panel.set_item(item)
    assert panel.override_button.isEnabled()
    assert panel.rating_spin.value() == item.rating

    with qtbot.waitSignal(panel.item_changed) as changed:
        panel.rating_spin.setValue(5)
        panel.safe_combo.setCurrentIndex(1)
        panel.note_edit.setText("answers in full but breaks the config")
        panel.override_button.click()
    stored = changed.args[0]
    assert (stored.human_rating, stored.human_safe) == (5, False)
    assert (stored.rating, stored.safe) == (item.rating, item.safe)  # the judge's verdict is kept
    assert stored.human_note == "answers in full but breaks the config"
    assert panel.agreements() == run_agreement(ctx.store.runs, run_id)
    assert panel.agreements()[-1].reviewed == 1
    qtmodeltester.check(panel.agreement_model)  # type: ignore[attr-defined]
    qtmodeltester.check(panel.confusion_model)  # type: ignore[attr-defined]
    judge_label = "safe" if item.safe else "unsafe"
    row = next(r for r in panel.confusion_model.rows() if r[0] == judge_label)
    assert row[2] == 1  # the reviewer said unsafe

    cleared = panel.clear_review()
    assert cleared is not None and not cleared.reviewed
    assert panel.agreements()[-1].reviewed == 0


def test_accepting_an_unjudged_item_is_refused_with_a_message(qtbot: QtBot, ctx: AppContext) -> None:
    config = ctx.store.configs.create(make_config("game-studio"))
    suite = bundled_suite("scenario-game-studio")
    suite = suite.model_copy(update={"probes": suite.probes[:1]})
    run_id = CheckRunner(ctx.store.runs, FakeBackend()).create(CheckSpec(suite=suite, configs=(config,)))
    panel = ReviewPanel(ctx.store)
    qtbot.addWidget(panel)
    panel.set_run(run_id)
    item = ctx.store.runs.items(run_id)[0]
    panel.set_item(item)
    assert not panel.accept_button.isEnabled()
    with qtbot.waitSignal(panel.message) as message:
        assert panel.accept_judge() is None
    assert "no readable judge verdict" in message.args[0]
