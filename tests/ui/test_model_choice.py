"""One list of model choices for every pane: the loaded model, registered files and registered endpoints."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QComboBox
from pytestqt.qtbot import QtBot

from studio.core.errors import NotFoundError
from studio.core.inference.base import Backend
from studio.core.inference.endpoints import add_endpoint
from studio.core.inference.fake import FakeBackend
from studio.core.inference.openai_backend import OpenAIBackend
from studio.ui.context import AppContext
from studio.ui.drafts.dialog import ProbeDraftDialog
from studio.ui.model_choice import LOADED_MODEL, Opener, add_model_choices, choice_for_name, model_opener, opened
from studio.ui.side_by_side import SideBySidePane
from tests.core.endpoint_standin import Behaviour, StandinServer
from tests.ui.conftest import fake_factory, make_config


def _items(combo: QComboBox) -> list[tuple[str, object]]:
    return [(combo.itemText(i), combo.itemData(i)) for i in range(combo.count())]


def test_loaded_model_then_endpoints_and_each_opens(qtbot: QtBot, ctx: AppContext, fake_backend: FakeBackend) -> None:
    server = StandinServer(Behaviour()).start()
    try:
        _choices_open(qtbot, ctx, fake_backend, server.url)
    finally:
        server.stop()


def _choices_open(qtbot: QtBot, ctx: AppContext, fake_backend: FakeBackend, url: str) -> None:
    add_endpoint(ctx.store, "team-judge", url, "judge-8b", concurrency=2, timeout_s=5)
    combo = QComboBox()
    qtbot.addWidget(combo)
    add_model_choices(combo, ctx)
    assert _items(combo) == [
        ("Loaded model: fake-model", LOADED_MODEL),
        ("team-judge (endpoint: judge-8b)", "team-judge"),
    ]
    assert model_opener(ctx, LOADED_MODEL, fake_factory)() == (fake_backend, False)
    backend, owned = model_opener(ctx, "team-judge", fake_factory)()
    try:
        assert isinstance(backend, OpenAIBackend) and owned
    finally:
        backend.close()
    with pytest.raises(NotFoundError):
        model_opener(ctx, "no-such-model", fake_factory)


def test_without_a_loaded_model_only_side_by_side_offers_it(qtbot: QtBot, ctx: AppContext) -> None:
    plain, offered = QComboBox(), QComboBox()
    qtbot.addWidget(plain)
    qtbot.addWidget(offered)
    add_model_choices(plain, ctx)
    add_model_choices(offered, ctx, offer_unloaded=True)
    assert _items(plain) == []
    assert _items(offered) == [("The loaded model", LOADED_MODEL)]
    with pytest.raises(RuntimeError, match="no model is loaded"):
        model_opener(ctx, LOADED_MODEL, fake_factory)


def test_drafting_and_side_by_side_list_endpoints(qtbot: QtBot, ctx: AppContext, fake_backend: FakeBackend) -> None:
    add_endpoint(ctx.store, "team-judge", "http://127.0.0.1:9/v1", "judge-8b", concurrency=2, timeout_s=5)
    dialog = ProbeDraftDialog(ctx, make_config())
    qtbot.addWidget(dialog)
    assert "team-judge (endpoint: judge-8b)" in [text for text, _ in _items(dialog.model_combo)]
    pane = SideBySidePane(ctx, lambda: None)
    qtbot.addWidget(pane)
    assert "team-judge (endpoint: judge-8b)" in [text for text, _ in _items(pane.sides[0].model_combo)]


class _Closing(FakeBackend):
    def __init__(self, name: str, closed: list[str]) -> None:
        super().__init__(name=name)
        self._closed = closed

    def close(self) -> None:
        self._closed.append(self.info.name)


def test_opened_closes_what_it_opened_and_never_the_loaded_model() -> None:
    closed: list[str] = []
    loaded = _Closing("loaded", closed)

    def opener(backend: Backend, owned: bool) -> Opener:
        return lambda: (backend, owned)

    with opened(opener(_Closing("a", closed), True), opener(loaded, False), opener(_Closing("b", closed), True)) as got:
        assert [b.info.name for b in got] == ["a", "loaded", "b"]
    assert closed == ["b", "a"]

    closed.clear()

    def broken() -> tuple[Backend, bool]:
        raise RuntimeError("the judge file is gone")

    with pytest.raises(RuntimeError, match="judge file"), opened(opener(_Closing("a", closed), True), broken):
        pass
    assert closed == ["a"]


def test_a_stored_run_finds_its_models_by_name(qtbot: QtBot, ctx: AppContext, fake_backend: FakeBackend) -> None:
    add_endpoint(ctx.store, "team-judge", "http://127.0.0.1:9/v1", "judge-8b", concurrency=2, timeout_s=5)
    assert choice_for_name(ctx, fake_backend.info.name) == LOADED_MODEL
    assert choice_for_name(ctx, "team-judge") == "team-judge"
    assert choice_for_name(ctx, "gone") is None
