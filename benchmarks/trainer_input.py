"""Trainer input against the in-memory bound: does the input path, not the model, set the Trainer's pace?

The same model, on the same transformed examples, trained side by side in one run:
- **cached**: the Trainer's own input path (``models.training.example_datasets``: tfxio over Transform's gzip
  TFRecords, the way the TFX data accessor builds it, parsed once and then served from memory), one pass per epoch;
- **streaming**: the same path with the cache off (``model.cache_mb: 0``), parsing every pass;
- **in memory**: the same batches, read once and held as tensors (the bound: no reading or parsing at all).
Examples/s of training steps only, median of ``--repeats`` epochs after one warm-up epoch each, for two models: the
default config's (9 features, on Transform's output of a real pipeline run over ``--events`` generated events)
and a wide one (40 features: 8 hashed ids and 32 numbers, on generated transformed examples).

    .venv/bin/python benchmarks/trainer_input.py [--events 200000] [--pipeline-root DIR]

writes benchmarks/results/trainer-input.md (and .json).
"""

import argparse
import dataclasses
import glob
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from provenance import measured_line  # noqa: E402  (benchmarks/, beside this script)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from config import DEFAULT_CONFIG, EvaluationConfig, FeatureConfig, PipelineConfig, ValidationConfig  # noqa: E402

# isort: split
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_transform as tft  # noqa: E402
from tfx_bsl.public import tfxio  # noqa: E402

from data.writer import write_examples  # noqa: E402
from models import features  # noqa: E402
from models.builder import build_model  # noqa: E402
from models.tasks import make_tasks  # noqa: E402
from models.training import example_datasets  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
WIDE_IDS, WIDE_NUMBERS, WIDE_HASH_BUCKETS = 8, 32, 1000


def dataset_factory(files, options, schema):
    """What the TFX Trainer's data accessor does with Transform's output: tfxio's TFExampleRecord, parsed in
    batches by its TensorFlowDataset."""
    return tfxio.TFExampleRecord(file_pattern=files, schema=schema,
                                 telemetry_descriptors=["benchmark"]).TensorFlowDataset(options)


def run_default_pipeline(config: PipelineConfig, events: int) -> str:
    """Generates one span of ``events`` events and runs the pipeline on it; returns the run's pipeline_root."""
    from data.world import LogSpec
    from data.writer import generate_logs
    from pipeline.runners import run_local

    work = tempfile.mkdtemp(prefix="trainer-input-")
    generate_logs(LogSpec(num_events=events), f"{work}/logs", [1])
    run_config = config.replace(data=dataclasses.replace(config.data, log_root=f"{work}/logs"))
    run_local(run_config, output_dir=f"{work}/out", serving_dir=f"{work}/serving")
    return f"{work}/out/pipeline_root"


def pipeline_source(config: PipelineConfig, pipeline_root: str):
    """(train files, schema, cardinalities) of the Transform output in a finished run's ``pipeline_root``."""
    graph = sorted(glob.glob(f"{pipeline_root}/Transform/transform_graph/*"))[-1]
    examples = sorted(glob.glob(f"{pipeline_root}/Transform/transformed_examples/*"))[-1]
    output = tft.TFTransformOutput(graph)
    return ([f"{examples}/Split-train/*"], output.transformed_metadata.schema,
            features.cardinalities(config.features, output))


def wide_source(config: PipelineConfig, events: int, folder: str):
    """(train files, schema, cardinalities) of generated transformed examples with 40 features and the config's
    labels and weights; the wide config's features are in ``wide_config``."""
    from tensorflow_metadata.proto.v0 import schema_pb2

    rng = np.random.default_rng(0)
    tasks = make_tasks(config.tasks)
    columns = {f"id_{i}": rng.integers(0, WIDE_HASH_BUCKETS, events) for i in range(WIDE_IDS)}
    columns |= {f"x_{i}": rng.standard_normal(events).astype(np.float32) for i in range(WIDE_NUMBERS)}
    for task in tasks:
        columns[task.label_feature] = (rng.integers(0, task.units, events) if task.label_dtype == tf.int64
                                       else rng.integers(0, 2, events).astype(np.float32))
        columns[task.weight_feature] = (rng.random(events) < 0.5).astype(np.float32)
    schema = schema_pb2.Schema()
    for name, values in columns.items():
        feature = schema.feature.add(name=name, type=schema_pb2.INT if values.dtype.kind == "i" else schema_pb2.FLOAT)
        feature.shape.SetInParent()
        feature.presence.min_fraction = 1.0
    os.makedirs(folder, exist_ok=True)
    for shard in range(2):
        write_examples(columns, f"{folder}/part-{shard}.gz", rows=range(shard, events, 2))
    return [f"{folder}/part-*.gz"], schema, {f"id_{i}": WIDE_HASH_BUCKETS for i in range(WIDE_IDS)}


def wide_config(config: PipelineConfig) -> PipelineConfig:
    ids = [FeatureConfig(name=f"id_{i}", kind="hash", hash_buckets=WIDE_HASH_BUCKETS, embedding_dim=8)
           for i in range(WIDE_IDS)]
    numbers = [FeatureConfig(name=f"x_{i}", kind="zscore") for i in range(WIDE_NUMBERS)]
    return config.replace(features=tuple(ids + numbers), evaluation=EvaluationConfig(),
                          validation=ValidationConfig())  # no slices or drift checks on features it does not have


def in_memory(dataset) -> tuple[tf.data.Dataset, int]:
    """The full batches of one pass over ``dataset``, held as tensors (one dataset element per batch), and
    their number of examples."""
    batches = [batch for batch in dataset]
    size = len(next(iter(batches[0].values())))
    batches = [b for b in batches if len(next(iter(b.values()))) == size]
    stacked = {key: tf.stack([b[key] for b in batches]) for key in batches[0]}
    return tf.data.Dataset.from_tensor_slices(stacked).prefetch(2), len(batches) * size


def examples_per_second(model, dataset, examples: int) -> float:
    started = time.perf_counter()
    model.fit(dataset, epochs=1, verbose=0)
    return examples / (time.perf_counter() - started)


def measure(name: str, config: PipelineConfig, files: list[str], schema, cardinalities, repeats: int) -> dict:
    """Examples/s of one model fed three ways, epochs alternating so all see the same machine state: the
    Trainer's input path as configured (``cached``: parsed on the first pass, then from memory, when the split fits
    model.cache_mb), the same path parsing every pass (``streaming``: cache_mb 0, as before the cache), and the
    batches already in memory (the bound)."""
    streaming_config = config.replace(model=dataclasses.replace(config.model, cache_mb=0))
    streaming, _ = example_datasets(dataset_factory, files, files, schema, streaming_config.model)
    cached, _ = example_datasets(dataset_factory, files, files, schema, config.model)
    memory, examples = in_memory(streaming)
    model = build_model(config, cardinalities)
    examples_per_second(model, memory, examples)  # warm-up: tracing
    first_pass = examples_per_second(model, cached, examples)  # reads, parses and fills the cache
    speeds = {"streaming": [], "cached": [], "in memory": []}
    for _ in range(repeats):
        for path, dataset in (("streaming", streaming), ("cached", cached), ("in memory", memory)):
            speeds[path].append(examples_per_second(model, dataset, examples))
    row = {"model": name, "features": len(config.features), "examples": examples,
           "batch_size": config.model.batch_size, "first pass": first_pass,
           **{path: statistics.median(values) for path, values in speeds.items()}, "runs": speeds}
    row["ratio"] = row["cached"] / row["in memory"]
    row["streaming ratio"] = row["streaming"] / row["in memory"]
    print(json.dumps({k: v for k, v in row.items() if k != "runs"}), flush=True)
    return row


def write_table(rows: list[dict], args) -> Path:
    lines = [f"# Trainer input against the in-memory bound ({platform.machine()}, {os.cpu_count()} cores)", "",
             f"`benchmarks/trainer_input.py --events {args.events}`: examples/s of training steps (no validation), "
             f"median of {args.repeats} one-pass epochs per path, the paths alternating. *Streaming*: tfxio reads "
             "and parses Transform's gzip TFRecords every pass (what the Trainer does for a split larger than "
             "model.cache_mb); *cached*: the Trainer's path for a split that fits, which parses the first pass "
             "(its speed in the first-pass column) and then serves "
             "the parsed batches from memory in a new order each pass; *in memory*: the same batches already in "
             "memory, the bound.", "",
             "| model | features | examples per epoch | batch | streaming | first pass | cached | in memory | "
             "streaming / in memory | **cached / in memory** |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['features']} | {r['examples']:,} | {r['batch_size']} | "
                     f"{r['streaming']:,.0f} | {r['first pass']:,.0f} | {r['cached']:,.0f} | {r['in memory']:,.0f} | "
                     f"{r['streaming ratio']:.2f} | **{r['ratio']:.2f}** |")
    path = RESULTS / "trainer-input.md"
    path.write_text("\n".join([*lines, "", measured_line()]) + "\n")
    (RESULTS / "trainer-input.json").write_text(json.dumps(rows, indent=1) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--pipeline-root", help="a finished run's pipeline_root (default: run one on --events)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    config = PipelineConfig.from_yaml(DEFAULT_CONFIG)
    config = config.replace(model=dataclasses.replace(config.model, train_steps=None, eval_steps=None))
    pipeline_root = args.pipeline_root or run_default_pipeline(config, args.events)
    rows = [measure("default (config/default.yaml)", config, *pipeline_source(config, pipeline_root), args.repeats)]
    wide = wide_config(config)
    with tempfile.TemporaryDirectory() as folder:
        rows.append(measure("wide (8 hashed ids, 32 numbers)", wide,
                            *wide_source(wide, int(args.events * 0.8), folder), args.repeats))
    print(write_table(rows, args))


if __name__ == "__main__":
    main()
