"""The README's session, walked through the window: template → probe → check → review → submit → approval by a
second person → signed export that verifies. On the fake backend, so it runs in seconds."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from studio.core.approval.export import check_export
from studio.core.documents import ConfigStatus
from studio.core.inference.fake import FakeBackend
from studio.core.templates import new_config
from studio.ui.context import AppContext
from studio.ui.first_run import STEPS
from studio.ui.main_window import MainWindow

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")


def test_readme_session_through_the_window(
    qtbot: QtBot, ctx: AppContext, fake_backend: FakeBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The fake judge's verdicts are random, so its score may fall below the default gate; the gate itself is
    # covered by the approval tests. Everything else runs with the defaults.
    ctx.settings.gate.min_score = -1.0
    ctx.settings.gate.allow_test_models = True  # the runs here are made with the test model
    window = MainWindow(ctx)
    qtbot.addWidget(window)
    window.show()

    # 1. a config from a template
    window.open_new_config(new_config("game-studio", author="tester"))
    saved = window.save()
    assert saved is not None and saved.version == 1

    # 2. a probe streams under it
    window.probe.prompt_edit.setPlainText("Write a threat for the gang boss")
    with qtbot.waitSignal(window.probe.reply_finished, timeout=10000) as replied:
        assert window.send_action.isEnabled()
        window.send_action.trigger()
    assert replied.args[0].config_id == saved.id and replied.args[0].reply

    # 3. the matching check, one click away
    window.check.limit_spin.setValue(3)
    with qtbot.waitSignal(window.check.run_finished, timeout=30000) as checked:
        window.check_open_action.trigger()
    run_id = checked.args[0]
    assert window.check.runs.get_run(run_id).suite_id == "scenario-game-studio"

    # 4. review one verdict
    window.show_review()
    assert window.check.tabs.currentIndex() == 1
    window.check.item_table.selectRow(0)
    reviewed = window.check.review.accept_judge()
    assert reviewed is not None

    # 5. submit for review
    dialog = window.show_approval()
    assert dialog is not None and dialog.submit()
    assert ctx.store.configs.latest(saved.id).status is ConfigStatus.IN_REVIEW
    dialog.close()
    assert not window.start_here_dock.isVisible()  # every Start here step is done
    assert window.start_here.done_steps() == {step.key for step in STEPS}

    # 6. a second person approves
    monkeypatch.setenv("STUDIO_IDENTITY", "reviewer")
    dialog = window.show_approval()
    assert dialog is not None and dialog.identity.name == "reviewer"
    assert dialog.selected_run() == run_id
    assert dialog.approve(), dialog.feedback.text()
    assert ctx.store.configs.latest(saved.id).status is ConfigStatus.APPROVED
    assert "approved" in window.statusBar().currentMessage()

    # 7. a signed export that verifies
    target = tmp_path / "game-studio.approved.yaml"
    assert dialog.export_to(target), dialog.feedback.text()
    checked = check_export(target, ctx.settings)
    assert checked.exporter.valid and checked.document.approval.reviewer.startswith("reviewer")
    assert checked.chain.approval.signer is not None and checked.chain.approval.signer.name == "reviewer"
    assert checked.document.config.text == saved.text
    dialog.close()
    window.close()
