#!/usr/bin/env bash
# Creates a virtual environment with the pinned stack (requirements/lock.txt) and this project installed.
# The README, CI (.ci/run) and the Dockerfile all install through this script, so they cannot drift.
# Usage: scripts/setup.sh [VENV_DIR]   (default: .venv in the repository)
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${1:-.venv}"
python3 -m pip --version >/dev/null
python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet "uv==0.13.9"
[ -x "$venv/bin/python" ] || python3 -m uv venv --quiet --python "$(command -v python3)" "$venv"
python3 -m uv pip install --quiet --python "$venv/bin/python" -r requirements/lock.txt
python3 -m uv pip install --quiet --python "$venv/bin/python" --no-deps -e .
echo "ready: $venv (run '$venv/bin/mtl --help')"
