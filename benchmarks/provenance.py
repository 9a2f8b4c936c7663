"""The line under every benchmark table: when it was measured, at which commit, on which machine."""

import datetime
import json
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


def write_results(output: str, title: str, text: str, rows) -> None:
    """Writes ``output`` (markdown: ``title``, ``text`` and the measured line) and beside it the same name with
    ``.json`` (``rows``), then prints ``text``."""
    with open(output, "w") as f:
        f.write(f"# {title}\n\n{text}\n\n{measured_line()}\n")
    with open(output.replace(".md", ".json"), "w") as f:
        json.dump(rows, f, indent=1)
    print(text)
