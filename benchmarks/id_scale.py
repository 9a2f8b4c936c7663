"""Id tables at production size: what a training step, the Trainer's memory, the export and serving cost as the
user table grows, for whole-table updates (Keras' Adam, whole-table L2) next to row updates
(models.row_optimizer.RowAdam, rows caught up with the steps they missed when next read), in one run.

For each number of user_id rows and each ``model.id_updates`` it starts one process that builds the default
config's model with only the user table resized (items, categories and the rest as in the bundled world), trains
it on 20 random transformed batches of the config's batch size held in memory (so the step, not the input, is
timed), and reports the median ms per step over 5 timed runs, the process's peak memory, the SavedModel's size
and export seconds (the model on transformed inputs, as the Trainer's export holds it; Transform's vocabulary file
comes on top: about 7 bytes per id), its load seconds and the batch-1 latency of the loaded model over 300 calls.

    .venv/bin/python benchmarks/id_scale.py [--rows 5000 100000 1000000 10000000]

writes benchmarks/results/id-scale.md and .json.

    .venv/bin/python benchmarks/id_scale.py --raw-serving [--rows 5000 1000000 10000000]

measures what serving raw ids costs at that vocabulary size: the default config's model (untrained: serving
reads the weights, not what they learned) with a user table of that many ids plus the config's OOV buckets, behind
the lookup Transform puts in the serving graph for a vocabulary feature (tft.compute_and_apply_vocabulary's
tf.lookup.StaticVocabularyTable over a TextFileInitializer of the vocabulary file, an asset of the SavedModel).
It reports the SavedModel's size with its vocabulary file, export seconds, then, in a fresh process as a model
server starts, load seconds, that process's peak memory and batch-1 latency for a known and an unknown user_id;
writes benchmarks/results/id-scale-serving.md and .json.

    .venv/bin/python benchmarks/id_scale.py --warm-start [--rows 1000000 10000000]

times warm start's token remap (models.warm_start) for one vocabulary feature of that many ids: the new span's
vocabulary keeps 90% of the old ids in a new order and adds 10% new ones, and each of the user_id tables of the
default model (shared embedding, factors, interest's own) is carried over by token, with the tokens matched for
each table and once per feature (as warm_start does), in one run; writes
benchmarks/results/id-scale-warm-start.md and .json.

    .venv/bin/python benchmarks/id_scale.py --head-copies [--rows 1000000 10000000]

measures per-head selection's weight copies at that many user ids, for each ``model.head_copies``: the default
model, fed four epochs' validation losses in which each head peaks at an epoch of its own, copies those epochs'
weights; the copies are then built and saved with the model. Reports the seconds of copying and building, the
process's peak memory, and the SavedModel's size and export seconds; writes
benchmarks/results/id-scale-head-copies.md and .json.

    .venv/bin/python benchmarks/id_scale.py --pipeline [--events 1000000] [--users 1000000]

runs the whole pipeline (`mtl run`, default config, Beam on all cores; user_id and item_id vocabularies keep
every id) on a span of the bundled world's 5,000 users and on a span of ``--users`` users (items a tenth as many),
``--events`` each, and writes benchmarks/results/id-scale-pipeline.md: each component's seconds, cost per
million events and peak memory side by side. The quality of each update rule is zoo_benchmark.py's
"id tables" variants (benchmarks/results/id-updates.md, id-updates-500users.md).
"""

import argparse
import dataclasses
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from provenance import measured_line  # noqa: E402  (benchmarks/, beside this script)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

RESULTS = Path(__file__).resolve().parent / "results"
MODES = ("whole_table", "rows")
# The bundled world's other id tables (Transform's vocabulary sizes plus OOV buckets).
OTHER_SIZES = {"item_id": 2_016, "item_category": 13, "device": 4, "country": 11, "hour": 8}
NUMERIC = ("user_activity", "item_popularity", "price")
COMPONENTS = ("ImportExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator", "Transform", "Trainer",
              "Evaluator", "Pusher")
TIMED_RUNS = 5
SERVING_CALLS = 300


def in_child(*args: str) -> dict:
    """Runs this script with ``args`` in a fresh process (its own memory peak, nothing shared with the last cell)
    and returns the JSON its last line printed."""
    child = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if child.returncode:
        raise RuntimeError(f"{' '.join(args)}: failed\n{child.stderr[-3000:]}")
    return json.loads(child.stdout.strip().splitlines()[-1])


def batch_one_latencies(served, one: dict) -> list[float]:
    """Milliseconds of SERVING_CALLS calls of the signature ``served`` with the batch-1 request ``one``, after 20
    untimed calls."""
    for _ in range(20):
        served(**one)
    latencies = []
    for _ in range(SERVING_CALLS):
        start = time.perf_counter()
        served(**one)
        latencies.append((time.perf_counter() - start) * 1000)
    return latencies


def timed_save(module, export_dir: str) -> tuple[float, float]:
    """Saves ``module`` with its ``serve`` function as serving_default; returns (seconds, the folder's MB)."""
    import tensorflow as tf

    start = time.perf_counter()
    tf.saved_model.save(module, export_dir, signatures={"serving_default": module.serve})
    seconds = time.perf_counter() - start
    return seconds, sum(f.stat().st_size for f in Path(export_dir).rglob("*") if f.is_file()) / 2 ** 20


def user_oov_buckets(config) -> int:
    """The OOV buckets of ``config``'s user_id feature: the rows its table has beyond the vocabulary."""
    return next(f.oov_buckets for f in config.features if f.name == "user_id")


def measure(rows: int, mode: str) -> dict:
    """One (rows, mode) cell, in this process: see the module docstring."""
    import numpy as np
    import tensorflow as tf
    import tf_keras

    from config import DEFAULT_CONFIG, PipelineConfig
    from models.builder import build_model

    base = PipelineConfig.from_yaml(DEFAULT_CONFIG)  # its model, with ``mode``'s update rule (the same L2s)
    config = base.replace(model=dataclasses.replace(base.model, id_updates=mode))
    tf_keras.utils.set_random_seed(0)
    sizes = {**OTHER_SIZES, "user_id": rows}
    model = build_model(config, sizes)
    batch_size = config.model.batch_size
    columns = random_batches(model, sizes, batch_size)
    data = tf.data.Dataset.from_tensor_slices(columns).cache().repeat()
    steps = 40 if mode == "rows" or rows <= 100_000 else 8
    model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)  # traces and warms up
    timings = []
    for _ in range(TIMED_RUNS):
        start = time.perf_counter()
        model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
        timings.append((time.perf_counter() - start) / steps)
    ms = statistics.median(timings) * 1000
    peak_training = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20

    inputs = {name: tf.TensorSpec([None], tf.int64 if name in sizes else tf.float32, name=name)
              for name in (*sizes, *NUMERIC)}
    module = tf.Module()
    module.model = model
    module.serve = tf.function(lambda features: module.model(features), input_signature=[inputs])
    export_dir = tempfile.mkdtemp(prefix="id-scale-")
    try:
        export_seconds, size_mb = timed_save(module, export_dir)
        start = time.perf_counter()
        served = tf.saved_model.load(export_dir).signatures["serving_default"]
        load_seconds = time.perf_counter() - start
        latencies = batch_one_latencies(served, {name: tf.constant(values[0, :1]) for name, values in columns.items()
                                                 if name in inputs})
    finally:
        shutil.rmtree(export_dir, ignore_errors=True)
    table_mb = sum(v.shape.num_elements() for v in model.id_tables()) * 4 / 2 ** 20
    return {"rows": rows, "mode": mode, "ms_per_step": ms, "examples_per_second": batch_size / ms * 1000,
            "batch_size": batch_size, "peak_training_gib": peak_training, "tables_mb": table_mb,
            "savedmodel_mb": size_mb, "export_seconds": export_seconds, "load_seconds": load_seconds,
            "serving_p50_ms": float(np.percentile(latencies, 50)),
            "serving_p99_ms": float(np.percentile(latencies, 99))}


def measure_raw_serving(rows: int) -> dict:
    """One --raw-serving cell, in this process: see the module docstring."""
    import tensorflow as tf
    import tf_keras

    from config import DEFAULT_CONFIG, PipelineConfig
    from models.builder import build_model

    config = PipelineConfig.from_yaml(DEFAULT_CONFIG)
    oov = user_oov_buckets(config)
    tf_keras.utils.set_random_seed(0)
    sizes = {**OTHER_SIZES, "user_id": rows + oov}
    model = build_model(config, sizes)
    work = Path(tempfile.mkdtemp(prefix="id-scale-serving-"))
    try:
        vocabulary = work / "user_id"
        width = max(5, len(str(rows - 1)))
        with open(vocabulary, "w") as f:  # the generator's ids, most frequent first as Transform writes them
            f.writelines(f"u{i:0{width}d}\n" for i in range(rows))
        module = tf.Module()
        module.model = model
        module.vocabulary = tf.saved_model.Asset(str(vocabulary))
        module.table = tf.lookup.StaticVocabularyTable(tf.lookup.TextFileInitializer(
            module.vocabulary, tf.string, tf.lookup.TextFileIndex.WHOLE_LINE, tf.int64,
            tf.lookup.TextFileIndex.LINE_NUMBER), num_oov_buckets=oov)
        inputs = {"user_id": tf.TensorSpec([None], tf.string, name="user_id"),
                  **{name: tf.TensorSpec([None], tf.int64, name=name) for name in OTHER_SIZES},
                  **{name: tf.TensorSpec([None], tf.float32, name=name) for name in NUMERIC}}

        @tf.function(input_signature=[inputs])
        def serve(features):
            return module.model({**features, "user_id": module.table.lookup(features["user_id"])})

        module.serve = serve
        model({**{name: tf.zeros([1], tf.int64) for name in sizes}, **{name: tf.zeros([1]) for name in NUMERIC}})
        export_seconds, size_mb = timed_save(module, str(work / "model"))
        served = in_child("--serve", str(work / "model"), f"u{rows - 1:0{width}d}")
        return {"rows": rows, "savedmodel_mb": size_mb, "export_seconds": export_seconds, **served}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def serve_raw(export_dir: str, known_id: str) -> dict:
    """In a fresh process: loads ``export_dir`` and times batch-1 calls with ``known_id`` and with an id the
    vocabulary lacks; returns load seconds, this process's peak memory and the latencies."""
    import numpy as np
    import tensorflow as tf

    start = time.perf_counter()
    served = tf.saved_model.load(export_dir).signatures["serving_default"]
    load_seconds = time.perf_counter() - start
    result = {"load_seconds": load_seconds}
    for name, user_id in (("known", known_id), ("unknown", "never-seen")):
        latencies = batch_one_latencies(served, {"user_id": tf.constant([user_id]),
                                                 **{n: tf.constant([0], tf.int64) for n in OTHER_SIZES},
                                                 **{n: tf.constant([0.0]) for n in NUMERIC}})
        result[f"{name}_p50_ms"] = float(np.percentile(latencies, 50))
        result[f"{name}_p99_ms"] = float(np.percentile(latencies, 99))
    result["serving_peak_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
    return result


def raw_serving_table(cells: list[dict]) -> str:
    lines = ["| user_id vocabulary | SavedModel with its vocabulary file | export | load | serving process peak | "
             "batch-1 p50 / p99, known id | batch-1 p50 / p99, unknown id |", "|---|---|---|---|---|---|---|"]
    for c in cells:
        lines.append(f"| {c['rows']:,} | {c['savedmodel_mb']:,.0f} MB | {c['export_seconds']:.1f} s | "
                     f"{c['load_seconds']:.1f} s | {c['serving_peak_gib']:.2f} GiB | "
                     f"{c['known_p50_ms']:.2f} / {c['known_p99_ms']:.2f} ms | "
                     f"{c['unknown_p50_ms']:.2f} / {c['unknown_p99_ms']:.2f} ms |")
    return "\n".join(lines)


def random_batches(model, sizes: dict[str, int], batch_size: int, batches: int = 20) -> dict:
    """``batches`` random transformed batches for ``model``: ids within ``sizes``, standard-normal numbers, labels
    of each task's kind, every label weighted 1; {column: [batches, batch_size] array}."""
    import numpy as np

    rng = np.random.default_rng(0)
    columns = {name: rng.integers(0, size, (batches, batch_size)) for name, size in sizes.items()}
    columns.update({name: rng.normal(size=(batches, batch_size)).astype(np.float32) for name in NUMERIC})
    for task in model.tasks:
        classes = getattr(task, "units", 1) if task.config.type == "multiclass" else 2
        columns[task.label_feature] = rng.integers(0, classes, (batches, batch_size)).astype(
            np.int64 if task.config.type == "multiclass" else np.float32)
        columns[task.weight_feature] = np.ones((batches, batch_size), np.float32)
    return columns


HEAD_COPIES = ("whole_model", "dense_weights")


def measure_head_copies(rows: int, copies: str) -> dict:
    """One --head-copies cell, in this process: see the module docstring."""
    import tensorflow as tf
    import tf_keras

    from config import DEFAULT_CONFIG, PipelineConfig
    from models.builder import build_model
    from models.head_selection import BestEpochPerHead, head_models
    from models.training import head_copy_layers_from

    base = PipelineConfig.from_yaml(DEFAULT_CONFIG)
    config = base.replace(model=dataclasses.replace(base.model, head_copies=copies))
    tf_keras.utils.set_random_seed(0)
    sizes = {**OTHER_SIZES, "user_id": rows}
    model = build_model(config, sizes)
    data = tf.data.Dataset.from_tensor_slices(random_batches(model, sizes, config.model.batch_size)).repeat()
    names = [t.name for t in model.tasks]
    selection = BestEpochPerHead(names, config.model.early_stopping_patience, copy_id_tables=copies == "whole_model")
    selection.set_model(model)
    copy_seconds = 0.0
    for epoch in range(len(names)):  # head i peaks at epoch i; the last epoch is also the best total
        model.fit(data, steps_per_epoch=2, epochs=1, verbose=0)
        logs = {f"val_{name}_loss": 1.0 - 0.1 * min(epoch, i) for i, name in enumerate(names)}
        logs["val_loss"] = sum(logs.values())
        if epoch == 0:
            selection.on_train_begin()
        start = time.perf_counter()
        selection.on_epoch_end(epoch, logs)
        copy_seconds += time.perf_counter() - start
    selection.on_train_end()
    example = {name: values[0, :1] for name, values in random_batches(model, sizes, 1, batches=1).items()}
    start = time.perf_counter()
    by_head = head_models(lambda: build_model(config, sizes, id_layers_from=head_copy_layers_from(config.model, model)),
                          selection.head_weights, example)
    build_seconds = time.perf_counter() - start
    peak_training = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
    inputs = {name: tf.TensorSpec([None], tf.int64 if name in sizes else tf.float32, name=name)
              for name in (*sizes, *NUMERIC)}
    module = tf.Module()
    module.model, module.head_models = model, by_head

    @tf.function(input_signature=[inputs])
    def serve(features):  # as models.signatures.ServingModule.predict: each head from its own epoch's model
        outputs = module.model(features)
        return {**outputs, **{name: copy(features)[name] for name, copy in module.head_models.items()}}

    module.serve = serve
    export_dir = tempfile.mkdtemp(prefix="id-scale-copies-")
    try:
        export_seconds, size_mb = timed_save(module, export_dir)
    finally:
        shutil.rmtree(export_dir, ignore_errors=True)
    return {"rows": rows, "copies": copies, "epochs_kept": len({id(w) for w in selection.head_weights.values()}),
            "copy_seconds": copy_seconds, "build_seconds": build_seconds, "peak_training_gib": peak_training,
            "savedmodel_mb": size_mb, "export_seconds": export_seconds,
            "tables_mb": sum(v.shape.num_elements() for v in model.id_tables()) * 4 / 2 ** 20}


def run_head_copies(rows: list[int]) -> str:
    """Each (rows, head_copies) cell in a process of its own; writes id-scale-head-copies.md and .json."""
    cells = []
    for n in rows:
        for copies in HEAD_COPIES:
            cells.append(in_child("--one-copies", str(n), copies))
    (RESULTS / "id-scale-head-copies.json").write_text(json.dumps(cells, indent=1))
    lines = ["| user_id rows | head_copies | epochs copied | id tables | copying in training | building the copies | "
             "Trainer peak memory | SavedModel | export |", "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {c['rows']:,} | {c['copies']} | {c['epochs_kept']} | {c['tables_mb']:,.0f} MB | "
              f"{c['copy_seconds']:.1f} s | {c['build_seconds']:.1f} s | {c['peak_training_gib']:.2f} GiB | "
              f"{c['savedmodel_mb']:,.0f} MB | {c['export_seconds']:.1f} s |" for c in cells]
    text = (f"# Per-head selection's copies at millions of ids ({platform.machine()}, {os.cpu_count()} cores)\n\n"
            "`benchmarks/id_scale.py --head-copies`: the default model with a user table of that many rows; "
            "per-head selection (models.head_selection) is fed four epochs' validation losses in which each head "
            "peaks at an epoch of its own (two training steps between), so three epochs other than the restored "
            "one serve a head; then the head copies are built and saved with the model, as the Trainer exports "
            "them. whole_model: a copy holds its epoch's id tables; dense_weights: the copies read the restored "
            "model's tables.\n\n" + "\n".join(lines) + "\n\n" + measured_line() + "\n")
    (RESULTS / "id-scale-head-copies.md").write_text(text)
    return text


def table(cells: list[dict]) -> str:
    by = {(c["rows"], c["mode"]): c for c in cells}
    rows = sorted({c["rows"] for c in cells})
    smallest = {mode: by[(rows[0], mode)]["ms_per_step"] for mode in MODES if (rows[0], mode) in by}
    lines = [f"| user_id rows | id updates | ms per step | x the {rows[0]:,}-row step | examples/s | "
             "Trainer peak memory | id tables | SavedModel | export | load | batch-1 p50 / p99 |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for n in rows:
        for mode in MODES:
            c = by.get((n, mode))
            if c is None:
                continue
            lines.append(
                f"| {n:,} | {mode} | {c['ms_per_step']:.1f} | {c['ms_per_step'] / smallest[mode]:.2f}x | "
                f"{c['examples_per_second']:,.0f} | {c['peak_training_gib']:.2f} GiB | {c['tables_mb']:,.0f} MB | "
                f"{c['savedmodel_mb']:,.0f} MB | {c['export_seconds']:.1f} s | {c['load_seconds']:.1f} s | "
                f"{c['serving_p50_ms']:.2f} / {c['serving_p99_ms']:.2f} ms |")
    return "\n".join(lines)


def pipeline_table(runs: list[dict]) -> str:
    small, large = runs
    lines = [f"| component | {small['users']:,} users, {small['events']:,} events: s | s per 1M events | peak | "
             f"{large['users']:,} users, {large['events']:,} events: s | "
             "s per 1M events | peak | cost per event, ratio |", "|---|---|---|---|---|---|---|---|"]
    for name in COMPONENTS:
        a, b = small["all cores"]["components"].get(name), large["all cores"]["components"].get(name)
        if not (a and b):
            continue
        per_a, per_b = a["seconds"] / small["events"] * 1e6, b["seconds"] / large["events"] * 1e6
        lines.append(f"| {name} | {a['seconds']:.1f} | {per_a:.1f} | {a['peak_gib']:.2f} GiB | {b['seconds']:.1f} | "
                     f"{per_b:.1f} | {b['peak_gib']:.2f} GiB | {per_b / per_a:.2f} |")
    lines.append(f"| whole run | {small['all cores']['wall_seconds']:.0f} | | {small['all cores']['peak_gib']:.2f} GiB "
                 f"| {large['all cores']['wall_seconds']:.0f} | | {large['all cores']['peak_gib']:.2f} GiB | |")
    lines.append("| verdict | " + " | | | ".join(
        ("BLESSED" if run["all cores"].get("blessed") else "NOT BLESSED") + (", pushed" if run["all cores"].get(
            "pushed") else ", nothing pushed") for run in runs) + " | | | |")
    return "\n".join(lines)


def run_pipelines(events: int, users: int, base_events: int) -> str:
    """The default world's 5,000 users on ``base_events`` events next to ``users`` users on ``events`` events."""
    from pipeline_scaling import measure_size

    runs = [measure_size(n_events, None, users=n, items=max(2_000, n // 10), settings=("all cores",), bound=False)
            for n_events, n in ((base_events, 5_000), (events, users))]
    (RESULTS / "id-scale-pipeline.json").write_text(json.dumps(runs, indent=1))
    text = (f"# The whole pipeline with {users:,} users ({platform.machine()}, {os.cpu_count()} cores)\n\n"
            f"`benchmarks/id_scale.py --pipeline`: `mtl run` with the default config (Beam on all cores; user_id "
            f"and item_id vocabularies keep every id) on one generated span: {base_events:,} events from the bundled "
            f"world's 5,000 users, and {events:,} events from {users:,} users with power-law activity.\n\n"
            + pipeline_table(runs) + "\n\n" + measured_line() + "\n")
    (RESULTS / "id-scale-pipeline.md").write_text(text)
    return text


def run_raw_serving(rows: list[int]) -> str:
    """Each size's --raw-serving cell in a process of its own; writes id-scale-serving.md and .json."""
    cells = []
    for n in rows:
        cells.append(in_child("--one-raw", str(n)))
        print(f"{n:,} ids: load {cells[-1]['load_seconds']:.1f} s", file=sys.stderr, flush=True)
    (RESULTS / "id-scale-serving.json").write_text(json.dumps(cells, indent=1))
    text = (f"# Serving raw ids through a vocabulary of millions ({platform.machine()}, {os.cpu_count()} cores)\n\n"
            "`benchmarks/id_scale.py --raw-serving`: the default config's model with a user table of that many ids "
            "plus its OOV buckets, behind Transform's vocabulary lookup of the raw user_id (a "
            "StaticVocabularyTable over the vocabulary file, an asset of the SavedModel); load, peak memory and "
            f"latency in a fresh process, {SERVING_CALLS} batch-1 calls per id.\n\n" + raw_serving_table(cells)
            + "\n\n" + measured_line() + "\n")
    (RESULTS / "id-scale-serving.md").write_text(text)
    return text


USER_TABLE_DIMS = (8, 16, 8)  # the default model's user_id tables: shared embedding, factors, interest's own
WARM_START_WAYS = ("each table", "once per feature")  # where the tokens are matched: models.warm_start does the latter


def measure_warm_start(rows: int) -> dict:
    """One --warm-start cell, in this process: see the module docstring."""
    import numpy as np

    from config import DEFAULT_CONFIG, PipelineConfig
    from models.warm_start import TokenRows, _vocabulary_file, carry_rows

    oov = user_oov_buckets(PipelineConfig.from_yaml(DEFAULT_CONFIG))
    rng = np.random.default_rng(0)
    width = max(5, len(str(2 * rows)))
    old_tokens = [f"u{i:0{width}d}".encode() for i in range(rows)]
    kept = rng.permutation(rows)[: rows * 9 // 10]
    new_tokens = [old_tokens[i] for i in kept] + [f"u{i:0{width}d}".encode() for i in range(rows, rows + rows // 10)]
    new_tokens = [new_tokens[i] for i in rng.permutation(len(new_tokens))]
    work = Path(tempfile.mkdtemp(prefix="id-scale-warm-start-"))
    seconds = {}
    try:
        (work / "user_id").write_bytes(b"".join(t + b"\n" for t in old_tokens))
        tables = [(rng.normal(size=(rows + oov, d)).astype(np.float32),
                   rng.normal(size=(len(new_tokens) + oov, d)).astype(np.float32)) for d in USER_TABLE_DIMS]
        for way in WARM_START_WAYS:
            start = time.perf_counter()
            token_rows = None
            for old, new in tables:
                if token_rows is None or way == "each table":  # the base model's file read, the tokens matched
                    token_rows = TokenRows.between(_vocabulary_file(str(work / "user_id")), new_tokens)
                carried, count = carry_rows(old, new, token_rows, oov)
            seconds[way] = time.perf_counter() - start
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"rows": rows, "new_rows": len(new_tokens), "tokens_kept": count, "tables": len(tables),
            "seconds": seconds, "peak_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20}


def run_warm_start(rows: list[int]) -> str:
    """Each size's --warm-start cell in a process of its own; writes id-scale-warm-start.md and .json."""
    cells = []
    for n in rows:
        cells.append(in_child("--one-warm-start", str(n)))
    (RESULTS / "id-scale-warm-start.json").write_text(json.dumps(cells, indent=1))
    lines = ["| user_id vocabulary (old / new) | tokens carried | tables | tokens matched for each table | "
             "matched once per feature | ratio | peak memory |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {c['rows']:,} / {c['new_rows']:,} | {c['tokens_kept']:,} | {c['tables']} | "
              f"{c['seconds']['each table']:.1f} s | {c['seconds']['once per feature']:.1f} s | "
              f"{c['seconds']['once per feature'] / c['seconds']['each table']:.2f} | {c['peak_gib']:.2f} GiB |"
              for c in cells]
    text = (f"# Warm start's token remap at millions of ids ({platform.machine()}, {os.cpu_count()} cores)\n\n"
            "`benchmarks/id_scale.py --warm-start`: the new span's vocabulary keeps 90% of the old ids in a new order "
            "and adds 10% new ones; each of the default model's user_id tables "
            f"({', '.join(map(str, USER_TABLE_DIMS))} columns) is carried over by token. Seconds: the remap of all "
            "of them, with the base model's vocabulary file read and the tokens matched for each table, or once per "
            "feature as models.warm_start does; peak: the process's.\n\n" + "\n".join(lines) + "\n\n"
            + measured_line() + "\n")
    (RESULTS / "id-scale-warm-start.md").write_text(text)
    return text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[5_000, 100_000, 1_000_000, 10_000_000])
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--output", default=str(RESULTS / "id-scale.md"))
    parser.add_argument("--pipeline", action="store_true", help="the whole-pipeline comparison instead")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--base-events", type=int, default=1_000_000, help="events of the 5,000-user run")
    parser.add_argument("--raw-serving", action="store_true", help="serving raw ids through the vocabulary instead")
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--serve", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--one-raw", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--warm-start", action="store_true", help="warm start's token remap instead")
    parser.add_argument("--one-warm-start", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--head-copies", action="store_true", help="per-head selection's copies instead")
    parser.add_argument("--one-copies", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        print(json.dumps(serve_raw(*args.serve)))
        return 0
    if args.one_raw:
        print(json.dumps(measure_raw_serving(args.one_raw)))
        return 0
    if args.one_copies:
        print(json.dumps(measure_head_copies(int(args.one_copies[0]), args.one_copies[1])))
        return 0
    if args.head_copies:
        print(run_head_copies(args.rows))
        return 0
    if args.one_warm_start:
        print(json.dumps(measure_warm_start(args.one_warm_start)))
        return 0
    if args.warm_start:
        print(run_warm_start(args.rows))
        return 0
    if args.raw_serving:
        print(run_raw_serving(args.rows))
        return 0
    if args.pipeline:
        print(run_pipelines(args.events, args.users, args.base_events))
        return 0
    if args.one:
        print(json.dumps(measure(int(args.one[0]), args.one[1])))
        return 0
    cells = []
    for rows in args.rows:
        for mode in args.modes:
            cells.append(in_child("--one", str(rows), mode))
            print(f"{rows:,} rows, {mode}: {cells[-1]['ms_per_step']:.1f} ms/step", file=sys.stderr, flush=True)
    text = (f"# Id tables at production size ({platform.machine()}, {os.cpu_count()} cores)\n\n"
            "`benchmarks/id_scale.py`: the default config's model with only the user table resized, trained on "
            "random transformed batches held in memory; each cell is one process. ms per step: median of "
            f"{TIMED_RUNS} timed runs. SavedModel: the model on transformed inputs (Transform's vocabulary file "
            f"adds about 7 bytes per id). Batch-1 latency: {SERVING_CALLS} calls of the loaded model. "
            "whole_table: Keras' Adam and whole-table L2; rows: RowAdam on the rows a batch read, each row caught up "
            "with the steps it missed when next read.\n\n" + table(cells) + "\n\n" + measured_line() + "\n")
    Path(args.output).write_text(text)
    Path(args.output).with_suffix(".json").write_text(json.dumps(cells, indent=1))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
