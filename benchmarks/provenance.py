"""The line under every benchmark table: when it was measured, at which commit, on which machine."""

import datetime
import os
import platform
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def measured_line() -> str:
    """'Measured 2026-12-01 at commit abc1234 (x86_64, 2 cores).', with '+ uncommitted changes' when the work tree
    differs from the commit outside benchmarks/results/."""
    def git(*args):
        return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    # the tables themselves do not count: a script has opened its own by the time it asks
    dirty = " + uncommitted changes" if git("status", "--porcelain", "--untracked-files=no", "--", ".",
                                            ":!benchmarks/results") else ""
    return (f"Measured {datetime.date.today().isoformat()} at commit {commit}{dirty} ({platform.machine()}, "
            f"{os.cpu_count()} cores).")
