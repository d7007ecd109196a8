from __future__ import annotations

from pathlib import Path

from pytestqt.qtbot import QtBot

from studio.core.approval.export import check_export
from studio.core.approval.lifecycle import Lifecycle
from studio.core.documents import ConfigStatus, SafetyConfig
from studio.core.evals.runner import CheckRunner, CheckSpec
from studio.core.evals.suites import bundled_suite
from studio.core.identity import acting_as, create_identity
from studio.core.inference.base import GenerationParams
from studio.core.inference.fake import FakeBackend
from studio.ui.approval_dialog import ApprovalDialog
from studio.ui.context import AppContext
from tests.ui.conftest import make_config


def _check(ctx: AppContext, config: SafetyConfig) -> str:
    suite = bundled_suite("scenario-game-studio")
    suite = suite.model_copy(update={"probes": suite.probes[:4]})
    runner = CheckRunner(ctx.store.runs, FakeBackend(name="fake-model"))
    spec = CheckSpec(suite=suite, configs=(config,), params=GenerationParams(max_tokens=16))
    return list(runner.check(spec))[-1].run_id


def _dialog(qtbot: QtBot, ctx: AppContext, config_id: str) -> ApprovalDialog:
    dialog = ApprovalDialog(ctx, config_id)
    qtbot.addWidget(dialog)
    return dialog


def test_submit_approve_and_export_signed_yaml(
    qtbot: QtBot, ctx: AppContext, tmp_path: Path, qtmodeltester: object
) -> None:
    ctx.settings.gate.min_score = -1.0
    ctx.settings.gate.allow_test_models = True  # the runs here are made with the test model
    alice = create_identity("alice")
    with acting_as(alice):  # another person writes and submits; the dialog's identity reviews
        config = ctx.store.configs.create(make_config("game-studio"))
        Lifecycle(ctx.store, ctx.settings).submit(config.id, alice)
    dialog = _dialog(qtbot, ctx, config.id)
    assert not dialog.submit_button.isEnabled()
    assert ctx.store.configs.latest(config.id).status is ConfigStatus.IN_REVIEW
    assert "submitted by alice" in dialog.signed_label.text()
    assert not dialog.approve_button.isEnabled()  # no check run yet
    assert "No finished check run" in dialog.gate_hint.text()

    run_id = _check(ctx, ctx.store.configs.latest(config.id))
    dialog.reload()
    expected = Lifecycle(ctx.store, ctx.settings).candidate_runs(ctx.store.configs.latest(config.id))
    assert [g.run_id for g in dialog.gate_results] == [g.run_id for g in expected] == [run_id]
    assert dialog.gate_model.data(dialog.gate_model.index(0, 1)) == "passes"
    qtmodeltester.check(dialog.gate_model)  # type: ignore[attr-defined]
    assert dialog.selected_run() == run_id

    dialog.comment_edit.setPlainText("Checked the refusals by hand.")
    with qtbot.waitSignal(dialog.changed):
        assert dialog.approve()
    approval = Lifecycle(ctx.store, ctx.settings).approval(config.id, 1)
    assert approval.reviewer.startswith("tester (") and approval.run_id == run_id
    assert approval.author.startswith("alice (")
    signed = dialog.signed_label.text()
    assert "stored by alice" in signed and "approved by tester" in signed and "approval chain holds" in signed
    assert approval.comment == "Checked the refusals by hand."
    assert dialog.export_button.isEnabled()

    target = tmp_path / "out" / "game-studio.approved.yaml"
    assert dialog.export_to(target), dialog.feedback.text()
    checked = check_export(target, ctx.settings)
    assert checked.document.config.id == config.id and checked.document.approval.reviewer.startswith("tester")


def test_gate_failure_and_rejection_are_reported_in_one_line(qtbot: QtBot, ctx: AppContext) -> None:
    ctx.settings.gate.min_score = 1.0
    config = ctx.store.configs.create(make_config("game-studio"))
    _check(ctx, config)
    dialog = _dialog(qtbot, ctx, config.id)
    assert dialog.submit()
    assert dialog.gate_model.data(dialog.gate_model.index(0, 1)) == "fails"
    assert "below the gate" in dialog.gate_model.data(dialog.gate_model.index(0, 5))
    assert not dialog.approve()
    assert "does not meet the gate" in dialog.feedback.text()
    assert ctx.store.configs.latest(config.id).status is ConfigStatus.IN_REVIEW

    assert not dialog.reject_config()  # a rejection needs a comment
    assert "needs a comment" in dialog.feedback.text()
    dialog.comment_edit.setPlainText("Tighten the violence clause.")
    assert dialog.reject_config()
    assert ctx.store.configs.latest(config.id).status is ConfigStatus.DRAFT
    assert dialog.submit_button.isEnabled()
