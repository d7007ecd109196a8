"""The config library, the template dialog and the history dialog."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush
from pytestqt.qtbot import QtBot

from studio.core.documents import ConfigKind, ConfigStatus
from studio.core.taxonomy import CONFIGURABLE, Category
from studio.core.templates import PHRASINGS, render_categorical
from studio.ui.context import AppContext
from studio.ui.history import HistoryDialog, diff_lines
from studio.ui.library import STATUS_COLOURS, STATUS_COLUMN, LibraryPane
from studio.ui.template_dialog import TemplateDialog
from tests.ui.conftest import make_config


def _fill(ctx: AppContext) -> None:
    ctx.store.configs.create(make_config("game-studio", "Dark fiction with heists."))
    ctx.store.configs.create(make_config("prosecutor", "Case files about fraud."))
    ctx.store.configs.set_status("prosecutor", 1, ConfigStatus.IN_REVIEW)


def test_library_lists_searches_and_filters(qtbot: QtBot, ctx: AppContext, qtmodeltester: object) -> None:
    _fill(ctx)
    pane = LibraryPane(ctx)
    qtbot.addWidget(pane)
    qtmodeltester.check(pane.model)  # type: ignore[attr-defined]
    assert [c.id for c in pane.model.rows()] == ["game-studio", "prosecutor"]
    badge = pane.model.data(pane.model.index(1, STATUS_COLUMN))
    assert badge == "in review"
    background = pane.model.data(pane.model.index(1, STATUS_COLUMN), Qt.ItemDataRole.BackgroundRole)
    assert isinstance(background, QBrush)
    assert background.color().name() == STATUS_COLOURS[ConfigStatus.IN_REVIEW]
    pane.search_edit.setText("heist")
    qtbot.waitUntil(lambda: pane.model.rowCount() == 1, timeout=2000)
    assert pane.model.row_at(0).id == "game-studio"
    pane.search_edit.clear()
    pane.status_combo.setCurrentIndex(pane.status_combo.findData(ConfigStatus.IN_REVIEW.value))
    assert [c.id for c in pane.model.rows()] == ["prosecutor"]


def test_tag_filter_lists_every_tag(qtbot: QtBot, ctx: AppContext) -> None:
    ctx.store.configs.create(make_config("game-studio").model_copy(update={"tags": ["fiction", "adult"]}))
    ctx.store.configs.create(make_config("prosecutor").model_copy(update={"tags": ["legal"]}))
    pane = LibraryPane(ctx)
    qtbot.addWidget(pane)
    tags = [pane.tag_combo.itemData(i) for i in range(pane.tag_combo.count())]
    assert tags == [None, "adult", "fiction", "legal"]
    pane.tag_combo.setCurrentIndex(pane.tag_combo.findData("legal"))
    assert [c.id for c in pane.model.rows()] == ["prosecutor"]
    assert pane.tag_combo.currentData() == "legal"
    pane.tag_combo.setCurrentIndex(0)
    assert pane.model.rowCount() == 2


def test_activating_a_row_requests_it(qtbot: QtBot, ctx: AppContext) -> None:
    _fill(ctx)
    pane = LibraryPane(ctx)
    qtbot.addWidget(pane)
    with qtbot.waitSignal(pane.open_requested) as opened:
        pane.table.activated.emit(pane.model.index(1, 0))
    assert opened.args == ["prosecutor"]


def test_categorical_builder(qtbot: QtBot) -> None:
    dialog = TemplateDialog(author="tester")
    qtbot.addWidget(dialog)
    dialog.select_template("categorical")
    assert not dialog.categorical_box.isHidden()
    assert set(dialog.category_boxes) == set(CONFIGURABLE) and Category.OTHER_HARMS not in dialog.category_boxes
    for category, box in dialog.category_boxes.items():
        assert box.toolTip() == category.info.definition
    dialog.category_boxes[Category.VIOLENCE].setChecked(True)
    dialog.category_boxes[Category.WEAPONS].setChecked(True)
    dialog.seed_spin.setValue(1234)
    expected = render_categorical([Category.VIOLENCE, Category.WEAPONS], seed=1234)
    assert dialog.preview.toPlainText() == expected.text
    assert dialog.phrasing_label.text() == f"phrasing {expected.phrasing} of {len(PHRASINGS)}, seed 1234"
    dialog.phrasing_combo.setCurrentIndex(dialog.phrasing_combo.findData(2))
    assert "phrasing 2 of" in dialog.phrasing_label.text()
    dialog.title_edit.setText("Violence and weapons")
    dialog.accept()
    config = dialog.result_config
    assert config is not None
    assert config.kind is ConfigKind.CATEGORICAL and config.id == "violence-and-weapons"
    assert config.allowed == [Category.VIOLENCE, Category.WEAPONS]
    assert (config.phrasing, config.phrasing_seed, config.author) == (2, 1234, "tester")


def test_free_form_template_and_bad_id(qtbot: QtBot) -> None:
    dialog = TemplateDialog()
    qtbot.addWidget(dialog)
    dialog.select_template("policy-skeleton")
    assert dialog.categorical_box.isHidden()
    assert "## Scope" in dialog.preview.toPlainText()
    dialog.id_edit.setText("Not A Valid Id!")
    dialog.accept()
    assert dialog.result_config is None
    assert dialog.error_label.text()
    dialog.id_edit.setText("my-policy")
    dialog.accept()
    assert dialog.result_config is not None and dialog.result_config.template == "policy-skeleton"


def test_history_diff_between_any_two_versions(qtbot: QtBot, ctx: AppContext) -> None:
    first = ctx.store.configs.create(make_config(text="line one\nline two"))
    second = ctx.store.configs.save(first.model_copy(update={"text": "line one\nline 2"}))
    ctx.store.configs.save(second.model_copy(update={"text": "line one\nline 2\nline three"}))
    versions = ctx.store.configs.history("game-studio")
    dialog = HistoryDialog(versions)
    qtbot.addWidget(dialog)
    assert dialog.current_diff() == diff_lines(versions[1], versions[2])
    assert "+line three" in dialog.current_diff()
    dialog.old_combo.setCurrentIndex(0)
    lines = dialog.current_diff()
    assert "-line two" in lines and "+line 2" in lines and "+line three" in lines
    assert "line three" in dialog.diff_view.toPlainText()
    dialog.new_combo.setCurrentIndex(0)
    assert dialog.current_diff() == []
    assert "same text" in dialog.diff_view.toPlainText()
