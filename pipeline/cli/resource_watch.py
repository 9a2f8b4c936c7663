"""What a run costs the machine: the resident memory of this process and every process it started (Beam's
workers), sampled a few times a second by a background thread, and the CPU seconds they used. `mtl run` shows both
per component and for the whole run."""

from __future__ import annotations

import threading

import psutil

GIB = 1024 ** 3


def tree_rss() -> int:
    """Bytes resident in this process and its descendants now (shared pages count once per process)."""
    me = psutil.Process()
    total = me.memory_info().rss
    for child in me.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.Error:  # it ended between the listing and the reading
            pass
    return total


def tree_cpu_seconds() -> float:
    """CPU seconds (user and system) used so far by this process, its finished children and its live
    descendants."""
    me = psutil.Process()
    times = me.cpu_times()
    total = times.user + times.system + times.children_user + times.children_system
    for child in me.children(recursive=True):
        try:
            child_times = child.cpu_times()
            total += child_times.user + child_times.system
        except psutil.Error:
            pass
    return total


class ResourceWatch:
    """Samples ``tree_rss`` every ``interval`` seconds while entered: ``peak`` since the last ``reset`` and
    ``run_peak`` since the start, in bytes; ``cpu_seconds()`` since the last ``reset``. quiet_console's progress
    lines reset it when a component starts and read it when it ends; `mtl run` prints ``run_peak``."""

    def __init__(self, interval: float = 0.2):
        self.interval = interval
        self.peak = self.run_peak = 0
        self._cpu_start = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="resource-watch", daemon=True)

    def __enter__(self) -> ResourceWatch:
        self.reset()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def reset(self) -> None:
        """Starts a new window for ``peak`` and ``cpu_seconds`` (a component starts)."""
        self.peak = tree_rss()
        self._cpu_start = tree_cpu_seconds()

    def cpu_seconds(self) -> float:
        """CPU seconds of the process tree since the last reset (a worker that ended within the window counts
        only once it has been waited for, as Beam does when its pipeline ends)."""
        return tree_cpu_seconds() - self._cpu_start

    def _sample(self) -> None:
        while not self._stop.is_set():
            rss = tree_rss()
            self.peak, self.run_peak = max(self.peak, rss), max(self.run_peak, rss)
            self._stop.wait(self.interval)
