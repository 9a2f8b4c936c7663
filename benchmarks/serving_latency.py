"""Serving latency and throughput of the exported model, loaded in-process as TF Serving would load it: batch-1
p50/p99 latency and batch-1,024 throughput, for both signatures (serialized tf.Examples through
``serving_default``, named raw features through ``serving_raw``) and for the Trainer's TFLite files (float32 and
dynamic-range quantized, TensorFlow's TFLite interpreter with Select TF ops), with each file's size; on the
default model, a model with 40 features and the assistant; and each TFLite file's parity per head, from the
serving check of the same run.

Trains both models with the real pipeline (pipeline.runners.run_local) on generated logs; the 40-feature logs are
the generated events with 31 more columns (16 numbers, 15 categories of 50 values), declared in the config like any
other feature. Writes benchmarks/results/serving-latency.md and prints it.

    .venv/bin/python benchmarks/serving_latency.py [--events 20000] [--calls 2000] [--work /tmp/mtl-serving-bench]
"""

import argparse
import dataclasses
import glob
import json
import os
import shutil
import statistics
import sys
import time

from provenance import measured_line  # noqa: E402  (benchmarks/, beside this script)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from config import DEFAULT_CONFIG, FeatureConfig, PipelineConfig  # noqa: E402
from data.assistant import AssistantSpec  # noqa: E402
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


def train(work: str, name: str, config: PipelineConfig) -> tuple[str, str, dict]:
    """(SavedModel folder, raw eval examples file, the serving check's TFLite parity) of one pipeline run; the
    Trainer's model, pushed or not."""
    from components.serving_check import CHECK_FILE
    from pipeline.reports.run_report import load_run_report
    from pipeline.runners import run_local

    output_dir = os.path.join(work, name)
    report = load_run_report(*run_local(config, output_dir=output_dir, serving_dir=os.path.join(output_dir, "serve")))
    (model,) = glob.glob(os.path.join(output_dir, "pipeline_root", "Trainer", "model", "*", "Format-Serving"))
    (examples,) = glob.glob(os.path.join(report.examples_uri, "Split-eval", "*"))
    (check,) = glob.glob(os.path.join(output_dir, "pipeline_root", "ServingCheck", "infra_blessing", "*"))
    with open(os.path.join(check, CHECK_FILE)) as f:
        parity = json.load(f)["tflite"]
    return model, examples, parity


def _size_mb(path: str) -> float:
    if os.path.isfile(path):
        return os.path.getsize(path) / 1e6
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files) / 1e6


def _timed(call, single: list, big, calls: int) -> dict[str, float]:
    """Batch-1 p50/p99 over ``calls`` sequential calls (after 50 warm-up calls) and batch-1,024 examples/s
    (median of 20 calls)."""
    for i in range(50):
        call(single[i % len(single)])
    latencies = []
    for i in range(calls):
        start = time.perf_counter()
        call(single[i % len(single)])
        latencies.append(time.perf_counter() - start)
    call(big)
    throughput = []
    for _ in range(20):
        start = time.perf_counter()
        call(big)
        throughput.append(1024 / (time.perf_counter() - start))
    latencies.sort()
    return {"p50_ms": 1000 * latencies[len(latencies) // 2], "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)],
            "examples_per_second": statistics.median(throughput)}


def measure(model_dir: str, examples_file: str, calls: int) -> dict[str, dict[str, float]]:
    """{way of serving: {p50_ms, p99_ms, examples_per_second, mb}} for one SavedModel and its TFLite files."""
    import tensorflow as tf

    from components.serving_probe import raw_inputs
    from models import lite

    model = tf.saved_model.load(model_dir)
    serialized = [r.numpy() for r in tf.data.TFRecordDataset(examples_file, compression_type="GZIP").take(2048)]
    while len(serialized) < 1024:
        serialized += serialized
    raw = model.signatures["serving_raw"]
    specs = raw.structured_input_signature[1]
    parsed = raw_inputs(serialized, {name: spec.dtype for name, spec in specs.items()})
    examples = np.array(serialized, dtype=object)
    saved_mb = _size_mb(model_dir)
    ways = {
        "SavedModel serving_default (tf.Example)": (lambda rows: model.signatures["serving_default"](
            examples=tf.constant(examples[rows])), saved_mb),
        "SavedModel serving_raw (JSON features)": (lambda rows: raw(**{k: v[rows] for k, v in parsed.items()}),
                                                   saved_mb),
    }
    lite_dir = os.path.join(os.path.dirname(model_dir), lite.MODEL_DIR)
    for name, label in ((lite.FLOAT_FILE, "TFLite float32"), (lite.QUANTIZED_FILE, "TFLite dynamic-range int8")):
        runner = lite.LiteRunner(os.path.join(lite_dir, name))
        ways[label] = ((lambda rows, runner=runner: runner({k: v[rows] for k, v in parsed.items()})),
                       _size_mb(os.path.join(lite_dir, name)))
    results = {}
    for name, (call, mb) in ways.items():
        single = [slice(i, i + 1) for i in range(256)]
        results[name] = {**_timed(call, single, slice(0, 1024), calls), "mb": mb}
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
    assistant = PipelineConfig.from_yaml(os.path.join(os.path.dirname(DEFAULT_CONFIG), "assistant.yaml"))
    models = {}
    for name, config in (("default", base), ("wide", _wide_config(base)), ("assistant", assistant)):
        logs = os.path.join(args.work, f"logs-{name}")
        if name == "assistant":
            generate_logs(AssistantSpec(num_events=args.events // 2), logs, [1])
        else:
            generate_logs(LogSpec(num_events=args.events), logs, [1])
        if name == "wide":
            _add_columns(os.path.join(logs, "span-1"))
        config = config.replace(data=dataclasses.replace(config.data, log_root=logs))
        models[f"{name} ({len(config.features)} features)"] = train(args.work, name, config)
    lines = [f"In-process `tf.saved_model.load` of the Trainer's SavedModel (Transform graph inside) and "
             f"TensorFlow's TFLite interpreter on the Trainer's TFLite files (raw features in), on this 2-core "
             f"machine; batch 1: {args.calls:,} sequential calls after 50 warm-up calls; batch 1,024: median of 20 "
             "calls. MB: the SavedModel folder or the TFLite file.", "",
             "| model | served by | MB | batch-1 p50 ms | batch-1 p99 ms | batch-1,024 examples/s |",
             "|---|---|---|---|---|---|"]
    parities = {}
    for model_name, (model_dir, examples, parity) in models.items():
        parities[model_name] = parity
        for way, values in measure(model_dir, examples, args.calls).items():
            lines.append(f"| {model_name} | {way} | {values['mb']:.2f} | {values['p50_ms']:.2f} | "
                         f"{values['p99_ms']:.2f} | {values['examples_per_second']:,.0f} |")
    lines += ["", "TFLite parity per head on the serving check's eval events (key metric of the SavedModel, then "
              "of each file; max |score difference|):", "",
              "| model | head | metric | SavedModel | float32 | max abs diff | int8 | max abs diff | shipped |",
              "|---|---|---|---|---|---|---|---|---|"]
    for model_name, parity in parities.items():
        lite_files = [name for name in parity if name.endswith(".tflite")]
        for head, values in parity[lite_files[0]]["heads"].items():
            row = [model_name, head, values["metric"], f"{values['saved_model']:.4f}"]
            for name in lite_files:
                other = parity[name]["heads"][head]
                row += [f"{other['tflite']:.4f}", f"{other['max_score_difference']:.2g}"]
            lines.append("| " + " | ".join(row) + " | " + ", ".join(parity["shipped"]) + " |")
    text = "\n".join(lines)
    with open(args.output, "w") as f:
        f.write("# Serving latency\n\n" + text + "\n\n" + measured_line() + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
