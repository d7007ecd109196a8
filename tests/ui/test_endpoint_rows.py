"""Endpoints in the model manager's table, against the stand-in server: their row shows the address, model id,
requests at once and where the key comes from (never the key); Test, Requests at once, Set key, Load and Remove
work on the selected endpoint off the GUI thread."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from studio.core.inference import endpoints
from studio.ui.context import AppContext
from studio.ui.models_pane import ModelManagerPane
from tests.core.endpoint_standin import Behaviour, StandinServer, memory_keyring

SECRET = "sk-row-test-51c2e"


@pytest.fixture
def standin() -> Iterator[StandinServer]:
    server = StandinServer(Behaviour()).start()
    yield server
    server.stop()


@pytest.fixture
def pane(qtbot: QtBot, ctx: AppContext, standin: StandinServer) -> Iterator[ModelManagerPane]:
    endpoints.add_endpoint(ctx.store, "remote", standin.url, "standin", concurrency=3)
    widget = ModelManagerPane(ctx)
    qtbot.addWidget(widget)
    widget.select_name("remote")
    yield widget
    widget.shutdown()


def _row(pane: ModelManagerPane, name: str) -> dict[str, str]:
    model = pane.model
    for row, entry in enumerate(model.rows()):
        if entry.name == name:
            headers = [model.headerData(c, Qt.Orientation.Horizontal) for c in range(model.columnCount())]
            return {h: model.data(model.index(row, c)) for c, h in enumerate(headers)}
    raise AssertionError(f"no row {name!r}")


def test_endpoint_row_and_test_button(
    qtbot: QtBot, pane: ModelManagerPane, standin: StandinServer, qtmodeltester: object
) -> None:
    qtmodeltester.check(pane.model)  # type: ignore[attr-defined]
    row = _row(pane, "remote")
    assert row["Architecture"] == "endpoint" and row["Source"] == standin.url
    assert (row["Model id"], row["At once"], row["API key"]) == ("standin", "3", "none")
    assert not pane.default_button.isEnabled() and "file" in pane.default_button.toolTip()
    actions = pane.endpoint_actions
    assert all(button.isEnabled() for button in actions.buttons)

    standin.behaviour.list_latency_s = 0.5
    started = time.monotonic()
    actions.test_button.click()
    assert time.monotonic() - started < 0.3  # the server is asked on a worker thread
    assert not actions.test_button.isEnabled()
    with qtbot.waitSignal(pane.message, timeout=5000, check_params_cb=lambda text: "server:" in text) as message:
        pass
    assert message.args[0] == "remote: server: unknown; models: standin"
    qtbot.waitUntil(actions.test_button.isEnabled, timeout=2000)

    standin.stop()
    with qtbot.waitSignal(pane.message, timeout=10000, check_params_cb=lambda t: "cannot connect" in t):
        actions.test_button.click()


def test_concurrency_key_load_and_remove(
    qtbot: QtBot, ctx: AppContext, pane: ModelManagerPane, studio_home: Path
) -> None:
    actions = pane.endpoint_actions
    with qtbot.waitSignal(actions.changed, timeout=5000):
        actions.set_concurrency(7)
    assert endpoints.get_endpoint(ctx.store, "remote").concurrency == 7
    assert _row(pane, "remote")["At once"] == "7" and pane.selected() is not None

    with memory_keyring() as keyring:
        with qtbot.waitSignal(actions.changed, timeout=5000):
            actions.set_key(SECRET)
        assert keyring.stored == {(endpoints.KEYRING_SERVICE, "remote"): SECRET}
        assert _row(pane, "remote")["API key"] == "OS keyring"
        assert all(SECRET not in text for text in _row(pane, "remote").values())
        assert all(SECRET.encode() not in p.read_bytes() for p in studio_home.rglob("*") if p.is_file())

        with qtbot.waitSignal(ctx.backends.loaded, timeout=5000) as loaded:
            pane.load_button.click()
        assert loaded.args[0].kind == "openai" and loaded.args[0].name == "remote"

        pane.select_name("remote")
        with qtbot.waitSignal(actions.changed, timeout=5000):
            pane.remove_button.click()
        assert keyring.stored == {}
    assert endpoints.list_endpoints(ctx.store) == [] and pane.model.rowCount() == 0
    assert not any(button.isEnabled() for button in actions.buttons)
    assert actions.test_button.toolTip() == "Select an endpoint in the table"


def test_bad_concurrency_is_a_message(qtbot: QtBot, ctx: AppContext, pane: ModelManagerPane) -> None:
    with qtbot.waitSignal(pane.message, timeout=5000) as message:
        pane.endpoint_actions.set_concurrency(0)
    assert "--concurrency" in message.args[0] or "between 1 and" in message.args[0]
    assert endpoints.get_endpoint(ctx.store, "remote").concurrency == 3
