"""scripts/setup.sh picks the stack a machine can run (glibc and Python version), says which, and refuses a stack
the machine cannot run with one line that says what to do. Only `--which` runs here: nothing is installed."""

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def which(tmp_path, python_version: str, glibc: str, stack: str | None = None) -> subprocess.CompletedProcess:
    """setup.sh --which with a stand-in interpreter that reports ``python_version`` and MTL_GLIBC=``glibc``."""
    python = tmp_path / "python"
    python.write_text(f"#!/bin/sh\necho {python_version}\n")
    python.chmod(0o755)
    env = {**os.environ, "PYTHON": str(python), "MTL_GLIBC": glibc}
    env.pop("MTL_STACK", None)
    if stack:
        env["MTL_STACK"] = stack
    return subprocess.run(["bash", str(ROOT / "scripts" / "setup.sh"), "--which"], env=env, capture_output=True,
                          text=True)


@pytest.mark.parametrize("python_version, glibc, lock", [
    ("3.11", "2.36", "TFX 1.16 (requirements/lock.txt)"),  # Debian 12: the only stack that runs
    ("3.11", "2.41", "TFX 1.21 (requirements/lock-tfx121.txt)"),  # a current system: the current stack
    ("3.13", "2.41", "TFX 1.21 (requirements/lock-tfx121.txt)"),  # Debian 13
    ("3.12", "2.39", "TFX 1.21 (requirements/lock-tfx121.txt)"),  # Ubuntu 24.04
])
def test_picks_the_stack_the_machine_runs_and_says_which(tmp_path, python_version, glibc, lock):
    result = which(tmp_path, python_version, glibc)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"stack: {lock}, Python {python_version}, glibc {glibc}"


def test_mtl_stack_chooses_the_older_stack_on_a_current_system(tmp_path):
    result = which(tmp_path, "3.11", "2.41", stack="1.16")
    assert result.returncode == 0 and "TFX 1.16 (requirements/lock.txt)" in result.stdout


@pytest.mark.parametrize("python_version, glibc, stack, message", [
    ("3.11", "2.36", "1.21", "TFX 1.21 needs glibc >= 2.38, this machine has 2.36: use MTL_STACK=1.16"),
    ("3.13", "2.36", None, "TFX 1.21 needs glibc >= 2.38, this machine has 2.36: use MTL_STACK=1.16 with Python 3.11"),
    ("3.13", "2.41", "1.16", "TFX 1.16 needs Python 3.9-3.11"),
    ("3.14", "2.41", None, "TFX 1.21 here is locked for Python 3.11-3.13"),
    ("3.11", "2.36", "2.0", "MTL_STACK=2.0 is not a stack: use 1.16 or 1.21"),
])
def test_a_stack_the_machine_cannot_run_is_refused_in_one_line(tmp_path, python_version, glibc, stack, message):
    result = which(tmp_path, python_version, glibc, stack)
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr
