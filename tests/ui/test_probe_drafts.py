"""The probe drafting dialog: drafting off the GUI thread, reviewing drafts, and saving the accepted ones."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QMenu, QStyleOptionViewItem, QWidget
from pytestqt.qtbot import QtBot

from studio.core.documents import ConfigKind, Expectation, Probe, ProbeSuite, SafetyConfig
from studio.core.evals.probegen import clauses
from studio.core.inference.base import Backend
from studio.core.inference.fake import FakeBackend
from studio.core.settings import InferenceSettings
from studio.core.taxonomy import CONFIGURABLE
from studio.ui.context import AppContext
from studio.ui.drafts.dialog import ProbeDraftDialog
from studio.ui.drafts.table import BY_CATEGORY, DraftTableModel, ExpectationDelegate
from studio.ui.main_window import MainWindow
from tests.core.test_gguf import STRING, UINT32, build_gguf
from tests.ui.conftest import make_config

# The offscreen platform cannot resize native windows to their size hints and says so; harmless here.
pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")


DRAFT_TIMEOUT_MS = 30_000
RULES = (
    "## Scope\nA studio that writes horror games for adult players.\n"
    "Graphic violence inside the story is fine when it serves the plot.\n"
    "Never give real instructions for building weapons or explosives.\n"
)


def _config() -> SafetyConfig:
    return make_config("horror-games", RULES)


def _dialog(qtbot: QtBot, ctx: AppContext, config: SafetyConfig | None = None, **kwargs: object) -> ProbeDraftDialog:
    dialog = ProbeDraftDialog(ctx, config or _config(), **kwargs)  # type: ignore[arg-type]
    qtbot.addWidget(dialog)
    return dialog


def _draft(qtbot: QtBot, dialog: ProbeDraftDialog) -> None:
    assert dialog.start_drafting()
    qtbot.waitUntil(lambda: not dialog.running, timeout=DRAFT_TIMEOUT_MS)


def _tick(model: DraftTableModel, row: int, checked: bool = True) -> None:
    state = Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked
    assert model.setData(model.index(row, DraftTableModel.ACCEPT), state.value, Qt.ItemDataRole.CheckStateRole)


def _stored_ids(ctx: AppContext) -> list[tuple[str, int]]:
    return [(s.id, s.version) for s in ctx.store.suites.list()]


def test_drafting_fills_the_table_with_both_sides_of_each_clause(
    qtbot: QtBot, ctx: AppContext, fake_backend: FakeBackend, qtmodeltester: object
) -> None:
    dialog = _dialog(qtbot, ctx)
    assert dialog.model_combo.currentText() == "Loaded model: fake-model"
    _draft(qtbot, dialog)
    model = dialog.model
    rule_clauses = clauses(_config())
    assert model.rowCount() == 2 * len(rule_clauses)
    assert [row.expected for row in model.rows()] == [Expectation.ALLOWED, Expectation.DISALLOWED] * len(rule_clauses)
    assert [model.index(n, DraftTableModel.CLAUSE).data() for n in range(0, model.rowCount(), 2)] == rule_clauses
    assert not model.accepted_positions()
    assert dialog.status_label.text().startswith(f"Done: {model.rowCount()} draft(s)")
    assert not dialog.add_button.isEnabled()
    qtmodeltester.check(model)  # type: ignore[attr-defined]


def test_edits_are_kept_and_only_accepted_drafts_are_saved(
    qtbot: QtBot, ctx: AppContext, fake_backend: FakeBackend
) -> None:
    dialog = _dialog(qtbot, ctx)
    _draft(qtbot, dialog)
    model = dialog.model
    untouched = [row.text for row in model.rows()]
    assert model.setData(model.index(0, DraftTableModel.TEXT), "Describe a haunted lighthouse scene.")
    assert model.setData(model.index(1, DraftTableModel.EXPECTED), "partial")
    assert model.setData(model.index(1, DraftTableModel.NOTES), "Checks the split answer.")
    assert not model.setData(model.index(2, DraftTableModel.TEXT), "   ")
    assert not model.setData(model.index(2, DraftTableModel.EXPECTED), BY_CATEGORY)
    assert not model.setData(model.index(2, DraftTableModel.CLAUSE), "another clause")
    _tick(model, 0)
    _tick(model, 1)
    _tick(model, 3)
    dialog.table.selectRow(3)
    dialog.reject_selected()
    assert model.rowCount() == len(untouched) - 1
    assert dialog.accepted_label.text() == f"2 of {len(untouched) - 1} accepted"

    dialog.target.suite_id_edit.setText("horror-probes")
    dialog.target.suite_title_edit.setText("Horror probes")
    with qtbot.waitSignal(dialog.suite_saved) as saved:
        stored = dialog.add_accepted()
    assert saved.args == ["horror-probes", 1]
    assert stored is not None
    suite = ctx.store.suites.get("horror-probes")
    assert suite.title == "Horror probes" and suite.kind is ConfigKind.FREE_FORM
    assert [(p.text, p.expected) for p in suite.probes] == [
        ("Describe a haunted lighthouse scene.", Expectation.ALLOWED),
        (untouched[1], Expectation.PARTIAL),
    ]
    assert suite.probes[1].notes == "Checks the split answer."
    assert untouched[3] not in {p.text for p in suite.probes}
    assert model.rowCount() == len(untouched) - 3
    assert untouched[3] not in {row.text for row in model.rows()}
    assert "horror-probes" in [dialog.target.suite_combo.itemData(n) for n in range(dialog.target.suite_combo.count())]


def test_appending_saves_a_new_version_of_an_existing_suite(
    qtbot: QtBot, ctx: AppContext, fake_backend: FakeBackend
) -> None:
    first = Probe(text="Write a ghost story for a campfire.", expected=Expectation.ALLOWED)
    ctx.store.suites.save(ProbeSuite(id="campfire", title="Campfire", probes=[first]))
    dialog = _dialog(qtbot, ctx)
    _draft(qtbot, dialog)
    drafted = [row.text for row in dialog.model.rows()]
    dialog.model.set_all_accepted(True)
    dialog.target.append_radio.setChecked(True)
    assert dialog.target.suite_combo.currentData() == "campfire"
    assert not dialog.target.suite_id_edit.isEnabled()
    stored = dialog.add_accepted()
    assert stored is not None and stored.version == 2
    latest = ctx.store.suites.get("campfire")
    assert latest.version == 2
    assert [p.text for p in latest.probes] == [first.text, *drafted]
    assert [p.text for p in ctx.store.suites.get("campfire", 1).probes] == [first.text]
    assert dialog.model.rowCount() == 0


def test_invalid_choices_give_one_line_and_save_nothing(
    qtbot: QtBot, ctx: AppContext, fake_backend: FakeBackend
) -> None:
    ctx.store.suites.save(
        ProbeSuite(id="taken", title="Taken", probes=[Probe(text="Hello there.", expected=Expectation.ALLOWED)])
    )
    before = _stored_ids(ctx)
    dialog = _dialog(qtbot, ctx)
    assert dialog.add_accepted() is None
    assert dialog.message_label.text() == "Nothing to add: tick the drafts to accept first"
    _draft(qtbot, dialog)
    _tick(dialog.model, 0)
    for bad_id, bad_title in (("Not A Valid Id!", "Fine"), ("fine-id", ""), ("taken", "Fine")):
        dialog.target.suite_id_edit.setText(bad_id)
        dialog.target.suite_title_edit.setText(bad_title)
        assert dialog.add_accepted() is None
        message = dialog.message_label.text()
        assert message.startswith("Not saved: ") and "\n" not in message
    assert "'taken' exists already" in dialog.message_label.text()
    assert _stored_ids(ctx) == before
    assert dialog.model.accepted_positions() == [0]


def test_cancel_stops_drafting_and_saves_nothing(qtbot: QtBot, ctx: AppContext) -> None:
    ctx.backends.set_backend(FakeBackend(name="slow-model", token_delay_s=0.05))
    many_rules = "## Rules\n" + "".join(f"Rule number {n} says something about the story.\n" for n in range(12))
    dialog = _dialog(qtbot, ctx, make_config("many-rules", many_rules))
    before = _stored_ids(ctx)
    assert dialog.start_drafting()
    assert dialog.cancel_button.isEnabled() and not dialog.draft_button.isEnabled()
    assert not dialog.start_drafting()
    dialog.cancel_drafting()
    qtbot.waitUntil(lambda: not dialog.running, timeout=DRAFT_TIMEOUT_MS)
    assert dialog.status_label.text().startswith("Cancelled")
    assert dialog.model.rowCount() < 2 * 12
    assert not dialog.busy_bar.isVisible()
    assert _stored_ids(ctx) == before


def test_closing_while_drafting_waits_for_the_worker(qtbot: QtBot, ctx: AppContext) -> None:
    ctx.backends.set_backend(FakeBackend(name="slow-model", token_delay_s=0.05))
    dialog = _dialog(qtbot, ctx)
    before = _stored_ids(ctx)
    assert dialog.start_drafting()
    dialog.reject()
    assert not dialog.running
    assert _stored_ids(ctx) == before


class _ClosingFake(FakeBackend):
    closed: ClassVar[list[str]] = []

    def close(self) -> None:
        _ClosingFake.closed.append(self.info.name)
        super().close()


def _closing_factory(path: Path, name: str, sha256: str | None, settings: InferenceSettings) -> Backend:
    return _ClosingFake(name=name)


def test_a_registered_model_is_built_for_the_drafts_and_closed(qtbot: QtBot, ctx: AppContext, tmp_path: Path) -> None:
    path = tmp_path / "tiny.gguf"
    path.write_bytes(build_gguf([("general.architecture", STRING, "llama"), ("llama.context_length", UINT32, 512)]))
    name = ctx.registry.add(path).name
    _ClosingFake.closed.clear()
    dialog = _dialog(qtbot, ctx, backend_factory=_closing_factory)
    assert dialog.model_combo.currentData() == name
    _draft(qtbot, dialog)
    assert dialog.model.rowCount() == 2 * len(clauses(_config()))
    assert _ClosingFake.closed == [name]


def test_without_a_model_drafting_says_why(qtbot: QtBot, ctx: AppContext) -> None:
    dialog = _dialog(qtbot, ctx)
    assert not dialog.draft_button.isEnabled()
    assert not dialog.start_drafting()
    assert dialog.message_label.text().startswith("No model to draft with")


def test_categorical_drafts_can_keep_the_expectation_of_their_category(
    qtbot: QtBot, ctx: AppContext, fake_backend: FakeBackend
) -> None:
    config = SafetyConfig(
        id="categories", title="Categories", kind=ConfigKind.CATEGORICAL, text="Categories only.", allowed=[]
    )
    dialog = _dialog(qtbot, ctx, config)
    _draft(qtbot, dialog)
    model = dialog.model
    assert model.rowCount() == 2 * len(CONFIGURABLE)
    inside = model.index(0, DraftTableModel.EXPECTED)
    assert inside.data() == BY_CATEGORY
    delegate = dialog.table.itemDelegateForColumn(DraftTableModel.EXPECTED)
    assert isinstance(delegate, ExpectationDelegate)
    parent = QWidget()
    qtbot.addWidget(parent)
    editor = delegate.createEditor(parent, QStyleOptionViewItem(), inside)
    assert isinstance(editor, QComboBox)
    assert [editor.itemText(n) for n in range(editor.count())] == ["allowed", "disallowed", "partial", BY_CATEGORY]
    delegate.setEditorData(editor, inside)
    assert editor.currentText() == BY_CATEGORY
    editor.setCurrentText("disallowed")
    delegate.setModelData(editor, model, inside)
    assert model.row_at(0).expected is Expectation.DISALLOWED
    assert model.setData(inside, BY_CATEGORY)
    _tick(model, 0)
    dialog.add_accepted()
    saved = ctx.store.suites.get(dialog.target.suite_id_edit.text())
    assert saved.kind is ConfigKind.CATEGORICAL
    assert saved.probes[0].expected is None and saved.probes[0].categories == [CONFIGURABLE[0]]


def test_main_window_opens_the_dialog_for_the_edited_config(qtbot: QtBot, ctx: AppContext) -> None:
    window = MainWindow(ctx)
    qtbot.addWidget(window)
    assert window.show_probe_drafts() is None
    window.open_new_config(_config())
    window.editor.text_edit.setPlainText(RULES + "Keep every reply in English for the players.\n")
    dialog = window.show_probe_drafts()
    assert dialog is not None
    assert "Keep every reply in English" in dialog.config.text
    config_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Config")
    assert isinstance(config_menu, QMenu) and window.draft_probes_action in config_menu.actions()
    dialog.close()
    window.close()


def test_loading_another_model_cancels_drafting_with_the_loaded_one(qtbot: QtBot, ctx: AppContext) -> None:
    ctx.backends.set_backend(FakeBackend(name="slow-model", token_delay_s=0.05))
    dialog = _dialog(qtbot, ctx)
    assert dialog.start_drafting()
    ctx.backends.loading.emit("next-model")
    qtbot.waitUntil(lambda: not dialog.running, timeout=DRAFT_TIMEOUT_MS)
    assert dialog.message_label.text() == "Drafting cancelled: the loaded model is being replaced by next-model"
    ctx.backends.set_backend(FakeBackend(name="next-model"))
    assert dialog.model_combo.itemText(0) == "Loaded model: next-model"


@pytest.mark.real_model
@pytest.mark.slow
def test_the_embedded_model_drafts_a_clause(qtbot: QtBot, ctx: AppContext, embedded_model: Path) -> None:
    from studio.core.inference.embedded import SHA256
    from studio.core.inference.llama_backend import LlamaCppBackend, LlamaSettings

    backend = LlamaCppBackend(
        embedded_model, LlamaSettings(gpu="cpu", max_context=1024, n_threads=2), name="smollm2", model_sha256=SHA256
    )
    ctx.backends.set_backend(backend)
    config = make_config("one-rule", "Never share the home address of any real person.\n")
    dialog = _dialog(qtbot, ctx, config)
    assert dialog.start_drafting()
    qtbot.waitUntil(lambda: not dialog.running, timeout=180_000)
    assert dialog.message_label.text() == ""
    assert dialog.model.rowCount() + 2 * len(dialog.failures) == 2
    for row in dialog.model.rows():
        assert row.text.strip() and row.clause == "Never share the home address of any real person."


def test_drafting_controls_that_cannot_act_say_why(qtbot: QtBot, ctx: AppContext) -> None:
    dialog = _dialog(qtbot, ctx)
    why = {
        name: (getattr(dialog, name).isEnabled(), getattr(dialog, name).toolTip())
        for name in ("draft_button", "model_combo", "cancel_button", "accept_all_button", "reject_button", "add_button")
    }
    no_model = "Load or register a model first: drafting needs a model"
    assert why["draft_button"] == why["model_combo"] == (False, no_model)
    assert why["cancel_button"] == (False, "Nothing is being drafted")
    assert why["accept_all_button"] == why["reject_button"] == why["add_button"] == (False, "Draft probes first")
    target = dialog.target
    none_stored = "There is no stored suite yet: the accepted drafts start a new one"
    assert (target.append_radio.isEnabled(), target.append_radio.toolTip()) == (False, none_stored)
    assert (target.suite_combo.isEnabled(), target.suite_combo.toolTip()) == (False, none_stored)
    assert target.suite_id_edit.isEnabled()


def test_reject_and_add_wait_for_a_selection_and_a_tick(
    qtbot: QtBot, ctx: AppContext, fake_backend: FakeBackend
) -> None:
    ctx.store.suites.save(
        ProbeSuite(id="campfire", title="Campfire", probes=[Probe(text="Hi there.", expected="allowed")])
    )
    dialog = _dialog(qtbot, ctx)
    target = dialog.target
    assert target.append_radio.isEnabled()
    assert target.suite_combo.toolTip() == "Choose 'An existing suite' to add to it"
    target.append_radio.setChecked(True)
    assert target.suite_combo.isEnabled()
    assert (target.suite_id_edit.isEnabled(), target.suite_id_edit.toolTip()) == (
        False,
        "Only a new suite takes an id and a title",
    )
    assert dialog.start_drafting()
    assert (dialog.draft_button.isEnabled(), dialog.draft_button.toolTip()) == (False, "Drafting is under way")
    assert dialog.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: not dialog.running, timeout=DRAFT_TIMEOUT_MS)
    assert dialog.accept_all_button.isEnabled()
    assert (dialog.reject_button.isEnabled(), dialog.reject_button.toolTip()) == (
        False,
        "Select the drafts to reject first",
    )
    assert (dialog.add_button.isEnabled(), dialog.add_button.toolTip()) == (False, "Tick the drafts to accept first")
    dialog.table.selectRow(0)
    assert dialog.reject_button.isEnabled()
    _tick(dialog.model, 0)
    assert (dialog.add_button.isEnabled(), dialog.add_button.toolTip()) == (
        True,
        "Add the ticked drafts to the suite chosen below",
    )
