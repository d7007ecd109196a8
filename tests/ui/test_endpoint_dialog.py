"""The Add endpoint dialog against the stand-in server: Test lists the server's models off the GUI thread, OK
registers the endpoint, and the model manager connects to it as the current model."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pytestqt.qtbot import QtBot

from studio.core.inference import endpoints
from studio.ui.context import AppContext
from studio.ui.endpoint_dialog import EndpointDialog
from tests.core.endpoint_standin import StandinServer
from tests.core.hub_standin import closed_port


@pytest.fixture
def standin() -> Iterator[StandinServer]:
    server = StandinServer().start()
    yield server
    server.stop()


def test_test_button_lists_models_and_ok_registers(qtbot: QtBot, ctx: AppContext, standin: StandinServer) -> None:
    dialog = EndpointDialog(ctx)
    qtbot.addWidget(dialog)
    dialog.url_edit.setText(standin.url)
    dialog.test_button.click()
    qtbot.waitUntil(lambda: dialog.model_combo.count() == 1, timeout=5000)
    assert dialog.model_combo.currentText() == "standin"
    assert dialog.status_label.text() == "Server: unknown; models: standin"

    dialog.name_edit.setText("remote")
    dialog.concurrency_spin.setValue(6)
    dialog.save()
    assert dialog.entry is not None
    entry = endpoints.get_endpoint(ctx.store, "remote")
    assert (entry.base_url, entry.model_id, entry.concurrency) == (standin.url, "standin", 6)

    with qtbot.waitSignal(ctx.backends.loaded, timeout=5000) as loaded:
        assert ctx.backends.load_endpoint(entry)
    assert loaded.args[0].kind == "openai" and loaded.args[0].name == "remote"


def test_unreachable_server_and_bad_input_are_shown(qtbot: QtBot, ctx: AppContext) -> None:
    dialog = EndpointDialog(ctx)
    qtbot.addWidget(dialog)
    dialog.url_edit.setText(f"http://127.0.0.1:{closed_port()}/v1")
    dialog.test_button.click()
    qtbot.waitUntil(lambda: dialog.status_label.text().startswith("No answer"), timeout=10000)
    assert "cannot connect" in dialog.status_label.text()
    dialog.url_edit.setText("not a url")
    dialog.name_edit.setText("x")
    dialog.model_combo.setCurrentText("m")
    dialog.save()
    assert "http" in dialog.status_label.text() and dialog.entry is None
    assert endpoints.list_endpoints(ctx.store) == []
