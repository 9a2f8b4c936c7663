"""A run's cost counts the processes it started, and each component's line shows its own cores and peak."""

import io
import logging
import subprocess
import sys
import time

from pipeline.cli.console import ProgressHandler
from pipeline.cli.resource_watch import GIB, ResourceWatch, tree_rss

HOLD_300_MB = "import sys, time; block = bytearray(300 * 2**20); sys.stdout.write('ready\\n'); sys.stdout.flush(); " \
              "time.sleep(30)"


def test_a_child_process_memory_counts_in_the_tree_and_the_peak_outlives_it():
    before = tree_rss()
    with ResourceWatch(interval=0.05) as memory:
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


def test_component_line_shows_its_cores_and_peak_memory():
    console = io.StringIO()
    with ResourceWatch(interval=0.05) as memory:
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
    seconds, rest = done.removeprefix("  Transform done in ").split(" s on ")
    cores, peak = rest.split(" cores, peak memory ")
    assert float(seconds) >= 0.3 and 0.0 <= float(cores) <= 1.5 and peak.endswith(" GiB")
    assert float(peak.removesuffix(" GiB")) >= (tree_rss() + 150 * 2**20) / GIB - 0.01


def test_cpu_seconds_count_a_busy_child_process():
    with ResourceWatch(interval=0.05) as watch:
        subprocess.run([sys.executable, "-c", "import time\nend = time.process_time() + 1.0\n"
                        "while time.process_time() < end: pass"], check=True)
        assert 0.9 <= watch.cpu_seconds() <= 2.5
