"""The README's terminal session, run as written: template, probe, check, review, submit, approval by a second
identity, export and verification, on the embedded model with the default settings.

The block between the ``walkthrough`` markers of README.md is executed by bash in a fresh app home, with ``studio``
running this checkout's code, so the README cannot drift from what works.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from studio.core.inference.embedded import FILE_NAME

REPO = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"<!-- walkthrough:start -->\n```bash\n(?P<body>.*?)```\n<!-- walkthrough:end -->", re.S)


def readme_session() -> str:
    found = BLOCK.search((REPO / "README.md").read_text(encoding="utf-8"))
    assert found is not None, "README.md has no walkthrough block"
    return found["body"]


def test_readme_session_is_a_complete_cli_flow() -> None:
    """Cheap guard that runs everywhere: the block walks the whole path the README promises."""
    session = readme_session()
    steps = [
        "studio config new --template",
        "studio probe --config",
        "studio check --config",
        "studio runs show",
        "studio runs review",
        "studio review submit",
        "studio review approve",
        "studio export",
        "studio verify",
    ]
    positions = [session.find(step) for step in steps]
    assert -1 not in positions and positions == sorted(positions)
    assert "settings set" not in session  # the defaults must do


@pytest.mark.real_model
@pytest.mark.slow
def test_readme_session_runs_end_to_end(tmp_path: Path, embedded_model: Path) -> None:
    home, models = tmp_path / "home", tmp_path / "models"
    models.mkdir()
    # The model is already on this machine: `install-default` verifies and registers it instead of fetching it.
    (models / FILE_NAME).symlink_to(embedded_model)
    script = tmp_path / "session.sh"
    script.write_text(
        'set -euo pipefail\nstudio() { "$STUDIO_TEST_PYTHON" -m studio "$@"; }\nset -x\n' + readme_session(),
        encoding="utf-8",
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith("STUDIO_") and key != "PYTHONPATH"}
    env.update(
        STUDIO_HOME=str(home),
        STUDIO_MODELS_DIR=str(models),
        STUDIO_TEST_PYTHON=sys.executable,
        PYTHONPATH=str(REPO),
    )
    finished = subprocess.run(
        ["bash", str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    log = finished.stdout + finished.stderr
    assert finished.returncode == 0, log[-4000:]
    assert "game-studio-writers-room v1 approved by bob" in finished.stdout
    assert "game-studio.approved.yaml: OK" in finished.stdout
    assert (tmp_path / "game-studio.approved.yaml").is_file()
