"""Shared fixtures. Every test runs with its own app home; the embedded model is fetched once per checkout."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from studio.core.store import Store

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-long",
        action="store_true",
        help="also run the tests marked long (minutes each: the bundle build, the full training pipeline)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip ``long`` tests unless asked for, whatever ``-m`` selects: the default run stays short on two cores."""
    if config.getoption("--run-long"):
        return
    skip = pytest.mark.skip(reason="a long real run; opt in with --run-long")
    for item in items:
        if item.get_closest_marker("long") is not None:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def studio_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point the app home and model store at fresh temporary folders."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("STUDIO_HOME", str(home))
    monkeypatch.setenv("STUDIO_MODELS_DIR", str(home / "models"))
    monkeypatch.setenv("STUDIO_IDENTITY", "tester")
    yield home


@pytest.fixture
def store(studio_home: Path) -> Iterator[Store]:
    """The studio database in the test's own home, closed after the test."""
    from studio.core.store import Store

    with Store.open() as opened:
        yield opened


@pytest.fixture(scope="session")
def embedded_model() -> Path:
    """Path of the embedded SmolLM2 GGUF: the installed copy `scripts/test.sh` found ($STUDIO_TEST_MODEL), else
    the one in the checkout's git-ignored models/, fetched there on first use."""
    from studio.core.inference.embedded import install_embedded_model

    installed = os.environ.get("STUDIO_TEST_MODEL")
    if installed and Path(installed).is_file():
        return Path(installed)
    return install_embedded_model(REPO / "models", verify_existing=False)


@pytest.fixture(autouse=True)
def no_thread_left() -> Iterator[None]:
    """Fail a test that leaves a thread running."""
    before = set(threading.enumerate())
    yield
    leftover = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert not leftover, f"threads still running: {[t.name for t in leftover]}"
