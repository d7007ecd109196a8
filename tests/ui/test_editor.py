"""The config editor: token count, lint hints, saving versions, autosave, crash recovery, find, highlighting."""

from __future__ import annotations

from pytestqt.qtbot import QtBot

from studio.core.inference.fake import FakeBackend
from studio.core.templates import new_config
from studio.ui.context import AppContext
from studio.ui.editor import ConfigEditor
from studio.ui.highlighter import heading_pattern
from tests.ui.conftest import make_config


def _editor(qtbot: QtBot, ctx: AppContext) -> ConfigEditor:
    editor = ConfigEditor(ctx)
    qtbot.addWidget(editor)
    return editor


def test_token_count_follows_the_text(qtbot: QtBot, ctx: AppContext, fake_backend: FakeBackend) -> None:
    editor = _editor(qtbot, ctx)
    editor.open_config(make_config(text="one two three"), stored=False)
    qtbot.waitUntil(lambda: editor.token_count == 3, timeout=3000)
    assert editor.token_label.text().startswith("3 / 2048 tokens")
    editor.text_edit.setPlainText("one two three four five")
    qtbot.waitUntil(lambda: editor.token_count == 5, timeout=3000)
    editor.shutdown()


def test_without_a_model_the_count_says_so(qtbot: QtBot, ctx: AppContext) -> None:
    editor = _editor(qtbot, ctx)
    editor.open_config(make_config(), stored=False)
    qtbot.waitUntil(lambda: "no model" in editor.token_label.text(), timeout=3000)
    assert editor.token_count is None
    editor.shutdown()


def test_lint_hint_click_jumps_to_its_line(qtbot: QtBot, ctx: AppContext, fake_backend: FakeBackend) -> None:
    skeleton = new_config("policy-skeleton", config_id="skel")
    editor = _editor(qtbot, ctx)
    editor.open_config(skeleton, stored=False)
    qtbot.waitUntil(lambda: editor.lint_list.count() > 0, timeout=3000)
    with_line = [
        editor.lint_list.item(i) for i in range(editor.lint_list.count()) if editor.lint_list.item(i).data(256)
    ]
    assert with_line, "the unfilled skeleton should produce hints tied to lines"
    item = with_line[-1]
    editor.lint_list.itemClicked.emit(item)
    assert editor.text_edit.textCursor().blockNumber() + 1 == item.data(256)
    editor.shutdown()


def test_save_creates_then_versions(qtbot: QtBot, ctx: AppContext) -> None:
    editor = _editor(qtbot, ctx)
    saved: list[object] = []
    editor.saved.connect(saved.append)
    editor.open_config(make_config(), stored=False)
    first = editor.save()
    assert first is not None and first.version == 1 and editor.is_stored and not editor.is_dirty
    editor.text_edit.appendPlainText("No real-world weapon instructions.")
    assert editor.is_dirty
    second = editor.save()
    assert second is not None and second.version == 2
    assert second.author == "tester"  # STUDIO_IDENTITY of the test session
    assert [c.version for c in ctx.store.configs.history("game-studio")] == [1, 2]
    assert len(saved) == 2
    editor.shutdown()


def test_invalid_title_reports_instead_of_raising(qtbot: QtBot, ctx: AppContext) -> None:
    editor = _editor(qtbot, ctx)
    editor.open_config(make_config(), stored=False)
    editor.title_edit.setText("")
    with qtbot.waitSignal(editor.error) as error:
        assert editor.save() is None
    assert error.args[0].startswith("game-studio: cannot save: title")
    assert not ctx.store.configs.exists("game-studio")
    editor.shutdown()


def test_autosave_and_recovery_after_a_crash(qtbot: QtBot, ctx: AppContext) -> None:
    stored = ctx.store.configs.create(make_config())
    editor = _editor(qtbot, ctx)
    editor.open_config(stored, stored=True)
    editor.text_edit.appendPlainText("Unsaved line about villains.")
    editor.autosave()
    draft = ctx.store.drafts.get("config:game-studio")
    assert draft is not None and draft.text.endswith("Unsaved line about villains.")
    assert draft.base_version == 1
    # A fresh editor (the next start) is offered the draft and restores it.
    editor.deleteLater()
    recovered = _editor(qtbot, ctx)
    recovered.offer_recovery(ctx.store.drafts.list())
    assert not recovered.recovery_bar.isHidden()
    assert "Game Studio" in recovered.recovery_label.text()
    recovered.restore_button.click()
    assert recovered.config is not None and recovered.config.id == "game-studio"
    assert recovered.text_edit.toPlainText() == draft.text
    assert recovered.is_dirty and recovered.recovery_bar.isHidden()
    assert recovered.save() is not None
    assert ctx.store.drafts.get("config:game-studio") is None
    recovered.shutdown()


def test_discarding_a_draft_removes_it(qtbot: QtBot, ctx: AppContext) -> None:
    config = new_config("categorical", config_id="cat", seed=4)
    ctx.store.drafts.put("new:cat", text="edited", title="Cat", config_id="cat", base_json=config.model_dump_json())
    editor = _editor(qtbot, ctx)
    editor.offer_recovery(ctx.store.drafts.list())
    editor.discard_button.click()
    assert ctx.store.drafts.list() == []
    assert editor.recovery_bar.isHidden()
    editor.shutdown()


def test_new_config_draft_restores_kind_and_categories(qtbot: QtBot, ctx: AppContext) -> None:
    from studio.core.taxonomy import Category

    config = new_config("categorical", config_id="cat", allowed=[Category.VIOLENCE], seed=4)
    ctx.store.drafts.put(
        "new:cat", text="edited text", title="Cat", config_id="cat", base_json=config.model_dump_json()
    )
    editor = _editor(qtbot, ctx)
    editor.offer_recovery(ctx.store.drafts.list())
    editor.restore_button.click()
    assert editor.config is not None and editor.config.allowed == [Category.VIOLENCE]
    assert not editor.is_stored
    saved = editor.save()
    assert saved is not None and saved.text == "edited text" and saved.phrasing_seed == 4
    editor.shutdown()


def test_find_wraps_around(qtbot: QtBot, ctx: AppContext) -> None:
    editor = _editor(qtbot, ctx)
    editor.open_config(make_config(text="alpha beta\nalpha gamma"), stored=False)
    editor.show_find()
    editor.find_edit.setText("alpha")
    assert editor.find_next()
    first = editor.text_edit.textCursor().blockNumber()
    assert editor.find_next()
    assert editor.text_edit.textCursor().blockNumber() == first + 1
    assert editor.find_next()
    assert editor.text_edit.textCursor().blockNumber() == first
    editor.find_edit.setText("missing")
    assert not editor.find_next()
    editor.shutdown()


def test_undo_redo_of_edits(qtbot: QtBot, ctx: AppContext) -> None:
    editor = _editor(qtbot, ctx)
    editor.open_config(make_config(text="base"), stored=False)
    editor.text_edit.moveCursor(editor.text_edit.textCursor().MoveOperation.End)
    qtbot.keyClicks(editor.text_edit, " more")
    assert editor.text_edit.toPlainText() == "base more"
    editor.text_edit.undo()
    assert editor.text_edit.toPlainText() == "base"
    editor.text_edit.redo()
    assert editor.text_edit.toPlainText() == "base more"
    editor.shutdown()


def test_heading_pattern_and_highlighting(qtbot: QtBot, ctx: AppContext) -> None:
    pattern = heading_pattern(["Scope", "Not allowed"])
    assert pattern.match("## Scope")
    assert pattern.match("Not allowed:")
    assert not pattern.match("Scope of the game is wide")
    editor = _editor(qtbot, ctx)
    editor.open_config(make_config(text="## Scope\nplain text"), stored=False)
    heading_block = editor.text_edit.document().findBlockByNumber(0)
    plain_block = editor.text_edit.document().findBlockByNumber(1)
    assert any(r.format.fontWeight() > 400 for r in heading_block.layout().formats())
    assert not any(r.format.fontWeight() > 400 for r in plain_block.layout().formats())
    editor.shutdown()


def test_undoing_every_edit_drops_the_draft(qtbot: QtBot, ctx: AppContext) -> None:
    stored = ctx.store.configs.create(make_config(text="base"))
    editor = _editor(qtbot, ctx)
    editor.open_config(stored, stored=True)
    editor.text_edit.moveCursor(editor.text_edit.textCursor().MoveOperation.End)
    qtbot.keyClicks(editor.text_edit, "!")
    editor.autosave()
    assert ctx.store.drafts.get("config:game-studio") is not None
    editor.text_edit.undo()
    assert not editor.is_dirty
    editor.autosave()
    assert ctx.store.drafts.get("config:game-studio") is None
    editor.shutdown()
