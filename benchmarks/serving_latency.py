"""Serving latency and throughput of the exported model, loaded in-process as TF Serving would load it: batch-1
p50/p99 latency and batch-1,024 throughput, for both signatures (serialized tf.Examples through
``serving_default``, named raw features through ``serving_raw``), on the default model and on a model with 40
features.

Trains both models with the real pipeline (pipeline.runners.run_local) on generated logs; the 40-feature logs are
the generated events with 31 more columns (16 numbers, 15 categories of 50 values), declared in the config like any
other feature. Writes benchmarks/results/serving-latency.md and prints it.

    .venv/bin/python benchmarks/serving_latency.py [--events 20000] [--calls 2000] [--work /tmp/mtl-serving-bench]
"""

import argparse
import dataclasses
import glob
import os
import shutil
import statistics
import sys
import time

from provenance import measured_line  # noqa: E402  (benchmarks/, beside this script)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from config import DEFAULT_CONFIG, FeatureConfig, PipelineConfig  # noqa: E402
from data.world import LogSpec  # noqa: E402
from data.writer import EVENTS_FILE, generate_logs  # noqa: E402

EXTRA_NUMBERS, EXTRA_CATEGORIES, CATEGORY_VALUES = 16, 15, 50


def _add_columns(span_dir: str, seed: int = 0) -> None:
    """Rewrites the span's events with EXTRA_NUMBERS numeric and EXTRA_CATEGORIES categorical columns more."""
    import tensorflow as tf

    path = os.path.join(span_dir, EVENTS_FILE)
    records = [r.numpy() for r in tf.data.TFRecordDataset(path, compression_type="GZIP")]
    rng = np.random.default_rng(seed)
    numbers = rng.normal(size=(len(records), EXTRA_NUMBERS)).astype(np.float32)
    categories = rng.integers(CATEGORY_VALUES, size=(len(records), EXTRA_CATEGORIES))
    with tf.io.TFRecordWriter(path + ".tmp", "GZIP") as writer:
        for i, record in enumerate(records):
            example = tf.train.Example.FromString(record)
            for j in range(EXTRA_NUMBERS):
                example.features.feature[f"num_{j:02d}"].float_list.value.append(numbers[i, j])
            for j in range(EXTRA_CATEGORIES):
                example.features.feature[f"cat_{j:02d}"].bytes_list.value.append(f"v{categories[i, j]}".encode())
            writer.write(example.SerializeToString())
    os.replace(path + ".tmp", path)


def _wide_config(config: PipelineConfig) -> PipelineConfig:
    extra = [FeatureConfig(name=f"num_{j:02d}", kind="zscore") for j in range(EXTRA_NUMBERS)]
    extra += [FeatureConfig(name=f"cat_{j:02d}", kind="vocabulary", embedding_dim=4) for j in range(EXTRA_CATEGORIES)]
    return config.replace(name=f"{config.name}-wide", features=(*config.features, *extra))


def train(work: str, name: str, config: PipelineConfig) -> tuple[str, str]:
    """(SavedModel folder, raw eval examples file) of one pipeline run; the Trainer's model, pushed or not."""
    from pipeline.reports.run_report import load_run_report
    from pipeline.runners import run_local

    output_dir = os.path.join(work, name)
    report = load_run_report(*run_local(config, output_dir=output_dir, serving_dir=os.path.join(output_dir, "serve")))
    (model,) = glob.glob(os.path.join(output_dir, "pipeline_root", "Trainer", "model", "*", "Format-Serving"))
    (examples,) = glob.glob(os.path.join(report.examples_uri, "Split-eval", "*"))
    return model, examples


def measure(model_dir: str, examples_file: str, calls: int) -> dict[str, dict[str, float]]:
    """{signature: {p50_ms, p99_ms, examples_per_second}} for one SavedModel."""
    import tensorflow as tf

    model = tf.saved_model.load(model_dir)
    serialized = [r.numpy() for r in tf.data.TFRecordDataset(examples_file, compression_type="GZIP").take(2048)]
    raw = model.signatures["serving_raw"]
    specs = raw.structured_input_signature[1]
    parsed = tf.io.parse_example(serialized, {name: tf.io.FixedLenFeature([], spec.dtype)
                                              for name, spec in specs.items()})
    requests = {
        "serving_default (tf.Example)": (model.signatures["serving_default"],
                                         lambda rows: {"examples": tf.constant(serialized[rows])}),
        "serving_raw (JSON features)": (raw, lambda rows: {k: v[rows] for k, v in parsed.items()}),
    }
    results = {}
    for name, (signature, make) in requests.items():
        single = [make(slice(i, i + 1)) for i in range(256)]
        for i in range(50):  # warm-up
            signature(**single[i % len(single)])
        latencies = []
        for i in range(calls):
            start = time.perf_counter()
            signature(**single[i % len(single)])
            latencies.append(time.perf_counter() - start)
        big = make(slice(0, 1024))
        signature(**big)
        throughput = []
        for _ in range(20):
            start = time.perf_counter()
            signature(**big)
            throughput.append(1024 / (time.perf_counter() - start))
        latencies.sort()
        results[name] = {"p50_ms": 1000 * latencies[len(latencies) // 2],
                         "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)],
                         "examples_per_second": statistics.median(throughput)}
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--calls", type=int, default=2000, help="batch-1 calls per signature")
    parser.add_argument("--work", default="/tmp/mtl-serving-bench")
    parser.add_argument("--output", default=os.path.join(os.path.dirname(__file__), "results", "serving-latency.md"))
    args = parser.parse_args(argv)
    shutil.rmtree(args.work, ignore_errors=True)
    base = PipelineConfig.from_yaml(DEFAULT_CONFIG)
    models = {}
    for name, config in (("default", base), ("wide", _wide_config(base))):
        logs = os.path.join(args.work, f"logs-{name}")
        generate_logs(LogSpec(num_events=args.events), logs, [1])
        if name == "wide":
            _add_columns(os.path.join(logs, "span-1"))
        config = config.replace(data=dataclasses.replace(config.data, log_root=logs))
        models[f"{name} ({len(config.features)} features)"] = train(args.work, name, config)
    lines = [f"In-process `tf.saved_model.load` of the Trainer's SavedModel (Transform graph inside), on this "
             f"2-core machine; batch 1: {args.calls:,} sequential calls after 50 warm-up calls; batch 1,024: "
             "median of 20 calls.", "",
             "| model | signature | batch-1 p50 ms | batch-1 p99 ms | batch-1,024 examples/s |",
             "|---|---|---|---|---|"]
    for model_name, (model_dir, examples) in models.items():
        for signature, values in measure(model_dir, examples, args.calls).items():
            lines.append(f"| {model_name} | {signature} | {values['p50_ms']:.2f} | {values['p99_ms']:.2f} | "
                         f"{values['examples_per_second']:,.0f} |")
    text = "\n".join(lines)
    with open(args.output, "w") as f:
        f.write("# Serving latency\n\n" + text + "\n\n" + measured_line() + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
