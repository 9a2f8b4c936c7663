"""Training across workers: 1 against 2 MultiWorkerMirroredStrategy workers on the same examples.

Each setting starts its worker processes on 127.0.0.1 with their own TF_CONFIG (as Vertex or a Kubernetes job
would); every worker builds the default model in the strategy's scope and trains it through the Trainer's own
input path (models.training.example_datasets over a pipeline run's Transform output) for ``--epochs`` one-pass
epochs, then all evaluate the eval split. Reported from worker 0: training examples/s (the split's examples per
epoch over the epochs' wall time, validation excluded) and each head's Keras metric, per seed.

    .venv/bin/python benchmarks/multi_worker.py [--events 200000 | --pipeline-root DIR] [--seeds 0 1]

writes benchmarks/results/multi-worker.md (and .json).
"""

import argparse
import dataclasses
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from provenance import measured_line  # noqa: E402  (benchmarks/, beside this script)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def worker(pipeline_root: str, epochs: int, seed: int, out: str) -> None:
    """One worker process: trains and evaluates; worker 0 writes ``out``."""
    sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]
    from config import DEFAULT_CONFIG, PipelineConfig  # before TensorFlow: config sets TF_USE_LEGACY_KERAS

    # isort: split
    import tensorflow as tf

    strategy = tf.distribute.MultiWorkerMirroredStrategy()  # first: it sets up TensorFlow's collectives
    import trainer_input

    from models.builder import build_model
    from models.distribution import is_chief
    from models.tasks import make_tasks
    from models.training import example_datasets

    config = PipelineConfig.from_yaml(DEFAULT_CONFIG)
    config = config.replace(model=dataclasses.replace(config.model, seed=seed))
    files, schema, cardinalities = trainer_input.pipeline_source(config, pipeline_root)
    eval_files = [pattern.replace("Split-train", "Split-eval") for pattern in files]
    train, evaluation = example_datasets(trainer_input.dataset_factory, files, eval_files, schema, config.model)
    import tf_keras

    tf_keras.utils.set_random_seed(seed)
    with strategy.scope():
        model = build_model(config, cardinalities)
    model.fit(train, epochs=1, verbose=0)  # the first pass: tracing, reading, filling the cache
    started = time.perf_counter()
    model.fit(train, epochs=epochs, verbose=0)
    seconds = time.perf_counter() - started
    metrics = model.evaluate(evaluation, return_dict=True, verbose=0)
    # This worker's share of the split: Keras shards the files between the workers, and the cache it filled holds
    # just that share. Every worker trains on its own share at the same time, so an epoch covers the workers' sum.
    share = sum(int(tf.shape(next(iter(b.values())))[0]) for b in train)
    examples = share * strategy.num_replicas_in_sync
    if is_chief(strategy):
        heads = {t.name: metrics[m.name] for t in make_tasks(config.tasks) for m in t.make_metrics()}
        Path(out).write_text(json.dumps({"examples_per_second": examples * epochs / seconds, "heads": heads,
                                         "examples_per_epoch": examples, "share_per_worker": share}))


def run_setting(workers: int, pipeline_root: str, epochs: int, seed: int) -> dict:
    """Starts ``workers`` worker processes and returns worker 0's result."""
    sys.path.insert(0, str(ROOT))
    from models.distribution import local_cluster

    with tempfile.TemporaryDirectory() as folder:
        out = f"{folder}/result.json"
        processes = []
        for tf_config in local_cluster(workers):
            env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TF_CONFIG": json.dumps(tf_config)}
            processes.append(subprocess.Popen(
                [sys.executable, __file__, "--worker", pipeline_root, str(epochs), str(seed), out], env=env,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        codes = [p.wait(timeout=1800) for p in processes]
        if codes != [0] * workers:
            raise RuntimeError(f"{workers} workers, seed {seed}: exit codes {codes}")
        return json.loads(Path(out).read_text())


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--pipeline-root", help="a finished run's pipeline_root (default: run one on --events)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = parser.parse_args()
    pipeline_root = args.pipeline_root
    if pipeline_root is None:
        sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]
        import trainer_input

        from config import DEFAULT_CONFIG, PipelineConfig

        pipeline_root = trainer_input.run_default_pipeline(PipelineConfig.from_yaml(DEFAULT_CONFIG), args.events)
    rows = [{"workers": workers, "seed": seed, **run_setting(workers, pipeline_root, args.epochs, seed)}
            for workers in (1, 2) for seed in args.seeds]
    for row in rows:
        print(json.dumps(row), flush=True)
    heads = list(rows[0]["heads"])
    lines = [f"# Training across workers: 1 against 2 ({platform.machine()}, {os.cpu_count()} cores, all workers on "
             "this machine)", "",
             f"`benchmarks/multi_worker.py`: MultiWorkerMirroredStrategy workers on 127.0.0.1, the default model, "
             f"{rows[0]['examples_per_epoch']:,} training examples per epoch (with 2 workers, each trains on its "
             f"share of the files), {args.epochs} timed one-pass epochs after a first pass; examples/s over the "
             "whole split; metrics from Keras on the whole eval split.", "",
             "| workers | seed | training examples/s | " + " | ".join(heads) + " |",
             "|---|---|---|" + "---|" * len(heads)]
    for row in rows:
        lines.append(f"| {row['workers']} | {row['seed']} | {row['examples_per_second']:,.0f} | "
                     + " | ".join(f"{row['heads'][h]:.4f}" for h in heads) + " |")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "multi-worker.json").write_text(json.dumps(rows, indent=1) + "\n")
    (RESULTS / "multi-worker.md").write_text("\n".join([*lines, "", measured_line()]) + "\n")
    print(RESULTS / "multi-worker.md")


if __name__ == "__main__":
    main()
