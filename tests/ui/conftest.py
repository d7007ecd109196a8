"""Fixtures for the GUI tests: an application context on a fresh home with a fake model, and a thread-leak check."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from studio.core.documents import ConfigKind, SafetyConfig
from studio.core.inference.base import Backend
from studio.core.inference.fake import FakeBackend
from studio.core.settings import InferenceSettings
from studio.ui.collector import MainThreadCollector
from studio.ui.context import AppContext

TOKEN_DELAY_S = 0.01


@pytest.fixture(autouse=True)
def collect_on_the_gui_thread(qapp: object) -> Iterator[None]:
    """As in the app: no cyclic collection in worker threads while a GUI test runs; collect here afterwards."""
    collector = MainThreadCollector()
    collector.start()
    yield
    collector.stop()
    collector.deleteLater()


def fake_factory(path: Path, name: str, sha256: str | None, settings: InferenceSettings) -> Backend:
    return FakeBackend(name=name, token_delay_s=TOKEN_DELAY_S, context_length=settings.max_context)


@pytest.fixture
def ctx(studio_home: Path, qapp: object) -> Iterator[AppContext]:
    context = AppContext.open(studio_home, backend_factory=fake_factory)
    yield context
    context.close()
    context.store.close()


@pytest.fixture
def fake_backend(ctx: AppContext) -> FakeBackend:
    backend = FakeBackend(name="fake-model", token_delay_s=TOKEN_DELAY_S, context_length=2048)
    ctx.backends.set_backend(backend)
    return backend


def make_config(
    config_id: str = "game-studio", text: str = "## Scope\nA game studio writing dark fiction.\n"
) -> SafetyConfig:
    return SafetyConfig(id=config_id, title=config_id.replace("-", " ").title(), kind=ConfigKind.FREE_FORM, text=text)
