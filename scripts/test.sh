#!/usr/bin/env bash
# Installs the studio with its test and training extras into .venv, fetches the embedded model, then runs the
# layer contracts, the linters, the formatting check and the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
PY=.venv/bin/python
"$PY" -m pip install -q --upgrade pip
# The CPU build of torch is enough for the trainer tests; pin it so pip does not pull a CUDA build.
"$PY" -c "import torch" 2>/dev/null || "$PY" -m pip install -q "torch==2.13.0"
"$PY" -m pip install -q -e ".[dev,train]"
# The embedded model is fetched only when no intact copy is registered yet; the tests use that copy.
STUDIO_TEST_MODEL=$(.venv/bin/studio models install-default)
export STUDIO_TEST_MODEL
.venv/bin/lint-imports
.venv/bin/ruff check studio tests bench
.venv/bin/ruff format --check studio tests bench
.venv/bin/mypy
export QT_QPA_PLATFORM=offscreen
exec "$PY" -m pytest "$@"
