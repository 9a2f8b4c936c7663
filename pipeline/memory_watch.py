"""Peak memory of a run: the resident set of this process and every process it started (Beam's workers), sampled
a few times a second by a background thread. `mtl run` shows it per component and for the whole run."""

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


class MemoryWatch:
    """Samples ``tree_rss`` every ``interval`` seconds while started; ``peak`` since the last ``reset`` and
    ``run_peak`` since the start, in bytes. Used as a context manager by quiet_console's progress lines."""

    def __init__(self, interval: float = 0.2):
        self.interval = interval
        self.peak = self.run_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="memory-watch", daemon=True)

    def __enter__(self) -> MemoryWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def reset(self) -> None:
        """Starts a new window for ``peak`` (a component starts)."""
        self.peak = tree_rss()

    def _sample(self) -> None:
        while not self._stop.is_set():
            rss = tree_rss()
            self.peak, self.run_peak = max(self.peak, rss), max(self.run_peak, rss)
            self._stop.wait(self.interval)
