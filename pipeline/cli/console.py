"""What `mtl run` shows a person: one line per component as it starts and ends (name, seconds, cores busy, peak
memory) and one per Trainer epoch, while everything the libraries print (TensorFlow, Beam, TFX, absl, warnings)
and the traceback of a failure go to a log file.

The CLI wraps the run in ``quiet_console``; with --verbose it does not, and the libraries print as they always do.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import time
import traceback
from collections.abc import Iterator

from absl import logging as absl_logging

from pipeline.cli.resource_watch import GIB, ResourceWatch

_COMPONENT = re.compile(r"Component (\S+) is (running|finished)\.")


class ProgressHandler(logging.Handler):
    """Turns TFX's "Component X is running/finished." and the Trainer's epoch lines into console lines; a
    component's line ends with the cores it kept busy and its peak memory (this process and Beam's workers) when
    ``memory`` (a ResourceWatch) watches it."""

    def __init__(self, stream, memory: ResourceWatch | None = None):
        super().__init__(logging.INFO)
        self.stream = stream
        self.memory = memory
        self.started: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.name == "mtl.progress":
            self._line(f"    {message}")
            return
        match = _COMPONENT.fullmatch(message)
        if not match:
            return
        name, state = match.groups()
        if state == "running":
            self.started[name] = time.perf_counter()
            if self.memory:
                self.memory.reset()
            self._line(f"  {name} ...")
        else:
            seconds = time.perf_counter() - self.started.get(name, time.perf_counter())
            cost = ""
            if self.memory and seconds >= 0.05:
                cost = (f" on {self.memory.cpu_seconds() / seconds:.1f} cores, peak memory "
                        f"{self.memory.peak / GIB:.2f} GiB")
            self._line(f"  {name} done in {seconds:.1f} s{cost}")

    def _line(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()


@contextlib.contextmanager
def quiet_console(log_path: str, memory: ResourceWatch | None = None) -> Iterator[None]:
    """Sends file descriptors 1 and 2 (everything printed, Python's and C++'s) to ``log_path`` while the block
    runs, and shows ProgressHandler's lines (with ``memory``'s peaks) on the real console."""
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved_out, saved_err = os.dup(1), os.dup(2)
    console = os.fdopen(os.dup(saved_out), "w", buffering=1)
    handler = ProgressHandler(console, memory)
    loggers = [logging.getLogger("absl"), logging.getLogger("mtl.progress")]
    verbosity = absl_logging.get_verbosity()
    with open(log_path, "a") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        absl_logging.set_verbosity(absl_logging.INFO)
        for logger in loggers:
            logger.addHandler(handler)
        logging.getLogger("mtl.progress").setLevel(logging.INFO)
        try:
            yield
        except BaseException:
            traceback.print_exc(file=log)  # the whole story in the log; the CLI prints one line
            raise
        finally:
            for logger in loggers:
                logger.removeHandler(handler)
            absl_logging.set_verbosity(verbosity)
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved_out, 1)
            os.dup2(saved_err, 2)
            os.close(saved_out)
            os.close(saved_err)
            console.close()
