#!/usr/bin/env bash
# Creates a virtual environment with a pinned stack and this project installed.
# The README, CI (.ci/run) and the Dockerfile all install through this script, so they cannot drift.
#
# Two stacks, one code base; the script picks the one this machine can run and says which:
#   TFX 1.16 (requirements/lock.txt):        Python 3.9-3.11 on glibc < 2.38 (e.g. Debian 12)
#   TFX 1.21 (requirements/lock-tfx121.txt): Python 3.11-3.13 on glibc >= 2.38 (e.g. Debian 13, Ubuntu 24.04)
# MTL_STACK=1.16 or MTL_STACK=1.21 chooses instead; PYTHON=python3.13 picks the interpreter (default python3).
# Usage: scripts/setup.sh [VENV_DIR]   (default: .venv in the repository)
#        scripts/setup.sh --which      (prints the stack it would install, installs nothing)
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${1:-.venv}"
python="${PYTHON:-python3}"

fail() { echo "setup.sh: $*" >&2; exit 1; }

command -v "$python" >/dev/null || fail "no '$python' on PATH: install Python 3.11 (or set PYTHON=...)"
py_version="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
py_minor="${py_version#3.}"
# glibc's version from ldd's first line ("ldd (Debian GLIBC 2.36-9+deb12u14) 2.36"); MTL_GLIBC stands in for tests.
glibc="${MTL_GLIBC:-$( (ldd --version 2>/dev/null || true) | sed -n '1s/.* \([0-9]*\.[0-9]*\)$/\1/p')}"
glibc="${glibc:-0.0}"
glibc_minor="${glibc#2.}"
if [ "${glibc%%.*}" != 2 ]; then glibc_minor=0; fi

stack="${MTL_STACK:-}"
if [ -z "$stack" ]; then
  if [ "$glibc_minor" -ge 38 ] || [ "$py_minor" -ge 12 ]; then stack=1.21; else stack=1.16; fi
fi
case "$stack" in
  1.16) lock=requirements/lock.txt
        [ "$py_minor" -ge 9 ] && [ "$py_minor" -le 11 ] \
          || fail "TFX 1.16 needs Python 3.9-3.11, '$python' is $py_version: set PYTHON=python3.11, or MTL_STACK=1.21"
        ;;
  1.21) lock=requirements/lock-tfx121.txt
        [ "$glibc_minor" -ge 38 ] \
          || fail "TFX 1.21 needs glibc >= 2.38, this machine has $glibc: use MTL_STACK=1.16 with Python 3.11"
        [ "$py_minor" -ge 11 ] && [ "$py_minor" -le 13 ] \
          || fail "TFX 1.21 here is locked for Python 3.11-3.13, '$python' is $py_version: set PYTHON=python3.13"
        ;;
  *) fail "MTL_STACK=$stack is not a stack: use 1.16 or 1.21" ;;
esac
echo "stack: TFX $stack ($lock), Python $py_version, glibc $glibc"
[ "$venv" != --which ] || exit 0

marker="$venv/.mtl-stack"
if [ -e "$marker" ] && [ "$(cat "$marker")" != "$stack" ]; then
  fail "$venv holds the TFX $(cat "$marker") stack: remove it (rm -rf $venv) or give another directory"
fi
# uv goes inside the environment: system Pythons such as Debian 13's refuse pip installs (PEP 668).
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv" \
  || fail "'$python -m venv' failed: install the venv module (Debian: apt-get install python3-venv)"
if ! "$venv/bin/python" -m uv --version >/dev/null 2>&1; then
  "$venv/bin/python" -m pip --version >/dev/null 2>&1 || "$venv/bin/python" -m ensurepip --default-pip >/dev/null
  "$venv/bin/python" -m pip install --quiet "uv==0.13.9"
fi
"$venv/bin/python" -m uv pip install --quiet --python "$venv/bin/python" -r "$lock"
"$venv/bin/python" -m uv pip install --quiet --python "$venv/bin/python" --no-deps -e .
echo "$stack" > "$marker"
echo "ready: $venv (run '$venv/bin/mtl --help')"
