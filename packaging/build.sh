#!/usr/bin/env bash
# Builds the one-folder desktop bundle into dist/cosa-studio (dist/CoSA Studio.app on macOS) with PyInstaller.
# Uses the virtual environment in .venv (or $PYTHON) and installs PyInstaller into it when it is missing.
# Usage: packaging/build.sh [--smoke]   (--smoke runs packaging/smoke_test.py on the result)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
if [ ! -x "$PY" ] && [ -x .venv/Scripts/python.exe ]; then
  PY=.venv/Scripts/python.exe
fi
if ! "$PY" -c "import PyInstaller" >/dev/null 2>&1; then
  echo "installing pyinstaller into $("$PY" -c 'import sys; print(sys.prefix)')"
  "$PY" -m pip install -q "pyinstaller>=6.10"
fi
start=$(date +%s)
"$PY" -m PyInstaller --noconfirm --clean --log-level WARN --distpath dist --workpath build/pyinstaller \
  packaging/cosa-studio.spec
echo "built dist/cosa-studio in $(( $(date +%s) - start )) s"
if [ "${1:-}" = "--smoke" ]; then
  "$PY" packaging/smoke_test.py
fi
