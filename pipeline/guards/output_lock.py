"""One local run per output folder at a time.

run_local holds an exclusive lock on ``<output_dir>/.run.lock`` for the whole run (the kernel releases it when
the process dies, however it dies), so two runs cannot share one MLMD store and read each other's results. Once
it holds the lock, any execution still recorded as RUNNING belongs to a run that is gone
(``pipeline.metadata.fail_stale_executions`` marks it FAILED).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator

from config import UserError

LOCK_FILE = ".run.lock"


class OutputInUse(UserError):
    """Another run holds the output folder."""


@contextlib.contextmanager
def exclusive_output(output_dir: str) -> Iterator[None]:
    """Holds ``output_dir``'s run lock while the block runs; raises OutputInUse at once if another run holds it."""
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, LOCK_FILE), "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputInUse(f"{output_dir}: another `mtl run` is using this output folder; wait for it to end, "
                              "or pass another --output-dir") from None
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)

