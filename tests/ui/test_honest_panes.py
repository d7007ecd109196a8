"""Every control honest, pane by pane: a control that cannot act is disabled and its tooltip says why; once it can
act it is enabled and its tooltip says what it does."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from studio.core.approval.lifecycle import Lifecycle
from studio.core.documents import ConfigStatus, SafetyConfig
from studio.core.evals.runner import CheckRunner, CheckSpec
from studio.core.evals.suites import bundled_suite
from studio.core.identity import acting_as, create_identity
from studio.core.inference.base import GenerationParams
from studio.core.inference.fake import FakeBackend
from studio.ui.approval_dialog import ApprovalDialog
from studio.ui.context import AppContext
from studio.ui.glossary import COLUMN_TERMS, ENTRIES, tip
from studio.ui.main_window import MainWindow
from studio.ui.review import NO_ITEM
from tests.ui.conftest import make_config

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")


def _window(qtbot: QtBot, ctx: AppContext) -> MainWindow:
    window = MainWindow(ctx)
    qtbot.addWidget(window)
    window.show()
    return window


def _check(ctx: AppContext, config: SafetyConfig) -> str:
    suite = bundled_suite("scenario-game-studio")
    suite = suite.model_copy(update={"probes": suite.probes[:3]})
    runner = CheckRunner(ctx.store.runs, FakeBackend(name="fake-model"))
    spec = CheckSpec(suite=suite, configs=(config,), params=GenerationParams(max_tokens=8))
    return list(runner.check(spec))[-1].run_id


def disabled_because(control: QWidget | QAction, words: str) -> bool:
    return not control.isEnabled() and words in control.toolTip()


def enabled_saying(control: QWidget | QAction, words: str) -> bool:
    return control.isEnabled() and words in control.toolTip()


def test_config_actions_need_an_open_and_a_stored_config(qtbot: QtBot, ctx: AppContext) -> None:
    window = _window(qtbot, ctx)
    config_actions = (
        window.save_action,
        window.export_action,
        window.history_action,
        window.check_open_action,
        window.approval_action,
        window.draft_probes_action,
    )
    for action in config_actions:
        assert disabled_because(action, "Open a config from the library"), action.text()
    assert disabled_because(window.editor.title_edit, "Open a config from the library")
    window.open_new_config(make_config())
    assert enabled_saying(window.editor.title_edit, "title")
    assert enabled_saying(window.save_action, "Save a new version")
    assert enabled_saying(window.check_open_action, "own suite")
    assert disabled_because(window.history_action, "Save the config first")
    assert disabled_because(window.approval_action, "Save the config first")
    window.save()
    assert enabled_saying(window.history_action, "stored version")
    assert enabled_saying(window.approval_action, "approve")


def test_probe_actions_follow_the_probe_pane(qtbot: QtBot, ctx: AppContext, fake_backend: FakeBackend) -> None:
    window = _window(qtbot, ctx)
    probe = window.probe
    for control in (probe.regenerate_button, window.regenerate_action):
        assert disabled_because(control, "Nothing to regenerate yet")
    for control in (probe.stop_button, window.stop_action):
        assert disabled_because(control, "Nothing is streaming")
    window.open_new_config(make_config())
    probe.prompt_edit.setPlainText("hello")
    with qtbot.waitSignal(probe.reply_finished, timeout=5000):
        probe.send()
    for control in (probe.regenerate_button, window.regenerate_action):
        assert enabled_saying(control, "Send the last prompt again")


def test_approval_buttons_say_what_stands_in_the_way(qtbot: QtBot, ctx: AppContext) -> None:
    ctx.settings.gate.min_score = -1.0
    ctx.settings.gate.allow_test_models = True  # the runs here are made with the test model
    config = ctx.store.configs.create(make_config("game-studio"))
    dialog = ApprovalDialog(ctx, config.id)
    qtbot.addWidget(dialog)
    assert enabled_saying(dialog.submit_button, "second person")
    assert disabled_because(dialog.approve_button, "submit it for review before approving")
    assert disabled_because(dialog.reject_button, "only a version in review")
    assert disabled_because(dialog.retire_button, "only an approved version")
    assert disabled_because(dialog.export_button, "nothing approved to export")
    assert dialog.submit()
    assert disabled_because(dialog.submit_button, "v1 is in review")
    assert disabled_because(dialog.approve_button, "no finished check run")
    _check(ctx, ctx.store.configs.latest(config.id))
    dialog.reload()
    # the dialog's identity wrote and submitted this version: four-eyes wants someone else
    assert disabled_because(dialog.approve_button, "another identity must review")
    assert enabled_saying(dialog.reject_button, "back to its author")


def _submitted_by_alice_and_checked(qtbot: QtBot, ctx: AppContext) -> ApprovalDialog:
    """The dialog's identity is asked to approve alice's config, checked with the test model, at a gate any score
    meets."""
    ctx.settings.gate.min_score = -1.0
    alice = create_identity("alice")
    with acting_as(alice):
        config = ctx.store.configs.create(make_config("game-studio"))
        Lifecycle(ctx.store, ctx.settings).submit(config.id, alice)
    _check(ctx, ctx.store.configs.latest(config.id))
    dialog = ApprovalDialog(ctx, config.id)
    qtbot.addWidget(dialog)
    return dialog


def test_approve_is_offered_to_a_second_person_with_a_passing_run(qtbot: QtBot, ctx: AppContext) -> None:
    ctx.settings.gate.allow_test_models = True  # the runs here are made with the test model
    dialog = _submitted_by_alice_and_checked(qtbot, ctx)
    assert enabled_saying(dialog.approve_button, "Approve this version")
    assert dialog.approve()
    assert enabled_saying(dialog.export_button, "signed YAML")
    assert enabled_saying(dialog.retire_button, "Withdraw")
    ctx.settings.gate.min_score = 1.0  # a gate no run meets
    dialog.lifecycle = Lifecycle(ctx.store, ctx.settings)
    dialog.reload()
    assert disabled_because(dialog.approve_button, "is approved")


def test_approve_says_a_run_made_with_the_test_model_is_no_evidence(qtbot: QtBot, ctx: AppContext) -> None:
    dialog = _submitted_by_alice_and_checked(qtbot, ctx)  # the score passes; only the model stands in the way
    assert disabled_because(dialog.approve_button, "deterministic test model")
    assert not dialog.approve()
    assert ctx.store.configs.latest(dialog.config_id).status is ConfigStatus.IN_REVIEW


def test_evaluation_panes_disable_what_cannot_act(qtbot: QtBot, ctx: AppContext) -> None:
    window = _window(qtbot, ctx)
    window.show_compare()
    assert disabled_because(window.compare.compare_button, "No finished check run yet")
    config = ctx.store.configs.create(make_config("game-studio"))
    _check(ctx, config)
    window.show_compare()
    assert enabled_saying(window.compare.compare_button, "probe by probe")
    window.open_config_id(config.id)
    window.show_run_history()
    assert disabled_because(window.run_history.diff_button, "two check runs")
    _check(ctx, config)
    window.run_history.reload()
    window.run_history.select_config(config.id)
    assert enabled_saying(window.run_history.diff_button, "verdicts changed")
    assert disabled_because(window.train.cancel_button, "Nothing is training")
    assert enabled_saying(window.train.start_button, "Start the trainer")
    assert disabled_because(window.side_by_side.stop_button, "Nothing is streaming")
    review = window.check.review
    for button in (review.accept_button, review.override_button, review.clear_button):
        assert disabled_because(button, NO_ITEM)


def test_model_buttons_need_a_selection(qtbot: QtBot, ctx: AppContext) -> None:
    window = _window(qtbot, ctx)
    window.show_models()
    models = window.models
    models.table.clearSelection()
    for button in (models.load_button, models.remove_button, models.default_button):
        assert disabled_because(button, "Select a model"), button.text()
    assert disabled_because(models.download_button, "List a repo's files first")
    assert disabled_because(models.cancel_button, "Nothing is downloading")


def test_engineers_columns_explain_themselves_in_every_table(qtbot: QtBot, ctx: AppContext) -> None:
    """κ, agreement, valid rate, CoSA-Score and the like carry the glossary's words on their column headers."""
    window = _window(qtbot, ctx)
    config = ctx.store.configs.create(make_config("game-studio"))
    run_id = _check(ctx, config)
    window.show_review()
    window.check.show_run(run_id)
    window.open_config_id(config.id)
    window.show_run_history()
    dialog = ApprovalDialog(ctx, config.id)
    qtbot.addWidget(dialog)
    models = {
        "items": window.check.item_table.model(),
        "agreement": window.check.review.agreement_model,
        "history": window.run_history.history_model,
        "compare": window.compare.pair_model,
        "gate": dialog.gate_model,
    }
    expected = {
        "items": {"Rating": "Rating", "Score": "CoSA-Score"},
        "agreement": {"Safety κ": "Kappa (κ)", "Helpful κ": "Kappa (κ)", "Safety agreement": "Agreement"},
        "history": {"CoSA-Score": "CoSA-Score", "Valid": "Valid rate", "Judge": "Judge"},
        "compare": {"Flipped": "Flip", "Δ score": "CoSA-Score"},
        "gate": {"Gate": "Gate", "CoSA-Score": "CoSA-Score", "Valid": "Valid rate"},
    }
    for name, model in models.items():
        headers = {
            model.headerData(c, Qt.Orientation.Horizontal): model.headerData(
                c, Qt.Orientation.Horizontal, Qt.ItemDataRole.ToolTipRole
            )
            for c in range(model.columnCount())
        }
        for title, term in expected[name].items():
            assert headers[title] == tip(term), (name, title)
            assert "Help ▸ Glossary" in headers[title]
        assert headers.get("Probe") is None  # plain words get no tooltip
    glossary_terms = {entry.term for entry in ENTRIES}
    assert set(COLUMN_TERMS.values()) <= glossary_terms
