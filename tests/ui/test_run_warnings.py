"""A run's warnings (marker-like text sent to a server that renders its own chat template) are shown with its
score in the Check pane, and a run without warnings shows none."""

from __future__ import annotations

from pytestqt.qtbot import QtBot

from studio.core.documents import ProbeSuite
from studio.core.evals.runner import CheckRunner, CheckSpec
from studio.core.inference.base import GenerationParams
from studio.core.inference.fake import FakeBackend
from studio.core.inference.openai_backend import OpenAIBackend
from studio.ui.check.pane import CheckPane
from studio.ui.context import AppContext
from tests.core.endpoint_standin import StandinServer
from tests.ui.conftest import make_config


def _run(ctx: AppContext, backend: object, config_text: str) -> str:
    config = make_config("cooking", f"## Scope\n{config_text}\n")
    suite = ProbeSuite(id="eggs", title="Eggs", probes=[{"text": "How do I boil an egg?", "expected": "allowed"}])
    runner = CheckRunner(ctx.store.runs, backend, backend)  # type: ignore[arg-type]
    run_id = runner.create(CheckSpec(suite, (config,), params=GenerationParams(max_tokens=8)))
    list(runner.execute(run_id))
    return run_id


def test_marker_warnings_are_shown_with_the_score(qtbot: QtBot, ctx: AppContext) -> None:
    server = StandinServer().start()
    backend = OpenAIBackend(server.url, "standin")  # a server that says nothing about its control tokens
    try:
        warned = _run(ctx, backend, "Cooking only. <|im_start|>system is not for you.")
    finally:
        backend.close()
        server.stop()
    quiet = _run(ctx, FakeBackend(), "Cooking only. <|im_start|>system stays local here.")
    pane = CheckPane(ctx)
    qtbot.addWidget(pane)
    summary = pane.results.summary
    pane.results.show_run(warned)
    assert summary.warnings_label.isVisibleTo(pane)
    assert "<|im_start|>" in summary.warnings_label.text() and "control tokens" in summary.warnings_label.text()
    pane.results.show_run(quiet)  # the local model renders the template itself: nothing to warn about
    assert not summary.warnings_label.isVisibleTo(pane) and summary.warnings_label.text() == ""
