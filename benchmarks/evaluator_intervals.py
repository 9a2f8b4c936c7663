"""What confidence intervals cost the Evaluator: TFMA with the pipeline's EvalConfig (every head's metrics on
every slice, the candidate against a baseline), without and with TFMA's jackknife intervals, on test splits of
several sizes; events per second and the ratio, side by side in one run.

Trains the default model once with the real pipeline (pipeline.runners.run_local) on a generated span, then runs
``tfma.run_model_analysis`` as the Evaluator does (the same model as candidate and baseline, so the change metrics
and their paired intervals are computed too) on the first N events of generated test data. Writes
benchmarks/results/evaluator-intervals.md and .json and prints the table.

    .venv/bin/python benchmarks/evaluator_intervals.py [--sizes 2000 20000 100000] [--repeats 2]
"""

import argparse
import dataclasses
import glob
import os
import shutil
import statistics
import sys
import time

from blessing_noise import evaluate  # noqa: E402  (benchmarks/, beside this script)
from provenance import write_results  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from config import DEFAULT_CONFIG, PipelineConfig  # noqa: E402
from data.world import LogSpec  # noqa: E402
from data.writer import EVENTS_FILE, generate_logs  # noqa: E402


def _trained_model(work: str, config: PipelineConfig) -> str:
    """The Trainer's SavedModel of one pipeline run on a generated span of 20,000 events."""
    from pipeline.runners import run_local

    logs = os.path.join(work, "logs")
    generate_logs(LogSpec(num_events=20_000, seed=3), logs, [1])
    config = config.replace(data=dataclasses.replace(config.data, log_root=logs))
    run_local(config, output_dir=os.path.join(work, "run"), serving_dir=os.path.join(work, "serving"))
    (model,) = glob.glob(os.path.join(work, "run", "pipeline_root", "Trainer", "model", "*", "Format-Serving"))
    return model


def _test_data(work: str, events: int) -> str:
    """A file of ``events`` generated events (span 2 of the same world: events the model never saw)."""
    folder = os.path.join(work, f"test-{events}")
    generate_logs(LogSpec(num_events=events, seed=3), folder, [2])
    return os.path.join(folder, "span-2", EVENTS_FILE)


def _seconds(model: str, data: str, config: PipelineConfig, intervals: bool, output: str) -> float:
    """Wall seconds of one TFMA evaluation of ``data`` with the pipeline's EvalConfig, candidate and baseline."""
    config = config.replace(evaluation=dataclasses.replace(config.evaluation, confidence_intervals=intervals))
    started = time.perf_counter()
    evaluate(config, model, model, data, output)
    return time.perf_counter() - started


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[2_000, 20_000, 100_000],
                        help="test events per evaluation (100,000: the test split of a 1,000,000-event span)")
    parser.add_argument("--repeats", type=int, default=2, help="evaluations per size and setting (the median)")
    parser.add_argument("--work", default="/tmp/mtl-evaluator-intervals")
    parser.add_argument("--output", default=os.path.join(os.path.dirname(__file__), "results",
                                                         "evaluator-intervals.md"))
    args = parser.parse_args(argv)
    shutil.rmtree(args.work, ignore_errors=True)
    config = PipelineConfig.from_yaml(DEFAULT_CONFIG)
    model = _trained_model(args.work, config.replace(
        evaluation=dataclasses.replace(config.evaluation, confidence_intervals=False)))
    rows = []
    for size in args.sizes:
        data = _test_data(args.work, size)
        medians = {}
        for intervals in (False, True):
            medians[intervals] = statistics.median(
                _seconds(model, data, config, intervals, os.path.join(args.work, f"out-{size}-{intervals}-{i}"))
                for i in range(args.repeats))
        rows.append({"events": size, "seconds": medians[False], "seconds_intervals": medians[True],
                     "events_per_second": size / medians[False],
                     "events_per_second_intervals": size / medians[True]})
    lines = ["TFMA (`run_model_analysis`, the DirectRunner in one process) with the default config's EvalConfig: 4 "
             f"heads, overall + {len(config.evaluation.slices)} slice features, candidate and baseline; median of "
             f"{args.repeats} runs per cell, on this 2-core machine. Intervals: TFMA's jackknife (20 buckets).", "",
             "| test events | seconds | events/s | seconds with intervals | events/s with intervals | ratio |",
             "|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['events']:,} | {row['seconds']:.1f} | {row['events_per_second']:,.0f} | "
                     f"{row['seconds_intervals']:.1f} | {row['events_per_second_intervals']:,.0f} | "
                     f"{row['events_per_second_intervals'] / row['events_per_second']:.2f}x |")
    text = "\n".join(lines)
    write_results(args.output, "Evaluator throughput with confidence intervals", text, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
