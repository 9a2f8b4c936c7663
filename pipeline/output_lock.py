"""One local run per output folder at a time, and no execution left RUNNING by a run that was killed.

run_local holds an exclusive lock on ``<output_dir>/.run.lock`` for the whole run (the kernel releases it when
the process dies, however it dies), so two runs cannot share one MLMD store and read each other's results. Once
it holds the lock, any execution still recorded as RUNNING belongs to a run that is gone: it is marked FAILED.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

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


def fail_stale_executions(metadata_path: str) -> list[int]:
    """Marks every execution recorded as RUNNING in the sqlite MLMD at ``metadata_path`` as FAILED (call it only
    while holding the lock: then no run is alive to own them); returns their ids."""
    if not os.path.exists(metadata_path):
        return []
    connection = metadata_store_pb2.ConnectionConfig()
    connection.sqlite.filename_uri = metadata_path
    store = metadata_store.MetadataStore(connection)
    stale = [e for e in store.get_executions() if e.last_known_state == metadata_store_pb2.Execution.RUNNING]
    for execution in stale:
        execution.last_known_state = metadata_store_pb2.Execution.FAILED
        execution.custom_properties["failure_reason"].string_value = "its run ended before it did (killed)"
    if stale:
        store.put_executions(stale)
    return [e.id for e in stale]
