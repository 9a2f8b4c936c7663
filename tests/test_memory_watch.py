"""Peak memory of a run counts the processes it started, and each component's line shows its own peak."""

import io
import logging
import subprocess
import sys
import time

from pipeline.console import ProgressHandler
from pipeline.memory_watch import GIB, MemoryWatch, tree_rss

HOLD_300_MB = "import sys, time; block = bytearray(300 * 2**20); sys.stdout.write('ready\\n'); sys.stdout.flush(); " \
              "time.sleep(30)"


def test_a_child_process_memory_counts_in_the_tree_and_the_peak_outlives_it():
    before = tree_rss()
    with MemoryWatch(interval=0.05) as memory:
        child = subprocess.Popen([sys.executable, "-c", HOLD_300_MB], stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout.readline() == "ready\n"
            time.sleep(0.3)
            assert tree_rss() - before > 280 * 2**20
        finally:
            child.kill()
            child.wait()
        time.sleep(0.2)
    assert tree_rss() - before < 100 * 2**20
    assert memory.run_peak - before > 280 * 2**20 and memory.peak == memory.run_peak


def test_component_line_shows_its_own_peak_memory():
    console = io.StringIO()
    with MemoryWatch(interval=0.05) as memory:
        handler = ProgressHandler(console, memory)
        logger = logging.getLogger("test-progress")
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        try:
            logger.info("Component Transform is running.")
            block = bytearray(200 * 2**20)  # touched: resident
            time.sleep(0.3)
            del block
            logger.info("Component Transform is finished.")
        finally:
            logger.removeHandler(handler)
    start, done = console.getvalue().splitlines()
    assert start == "  Transform ..."
    seconds, peak = done.removeprefix("  Transform done in ").split(" s, peak memory ")
    assert float(seconds) >= 0.3 and peak.endswith(" GiB")
    assert float(peak.removesuffix(" GiB")) >= (tree_rss() + 150 * 2**20) / GIB - 0.01
