"""Model zoo x loss balancing on generated logs: each head's score next to its Bayes limit, speed and memory.

Generates logs (default 200,000 events), runs the real pipeline once (pipeline.runners.run_local), then trains
every variant with the Trainer's own code (models.builder.build_model, models.training.fit) for each seed, one
subprocess per variant so that peak memory is the variant's own. Each model is scored by its tasks' own
``Task.score`` on the raw eval examples through the Transform graph; the Bayes limits come from the report's
``head_limits`` on exactly the same eval split.

    .venv/bin/python benchmarks/zoo_benchmark.py [--events 200000] [--seeds 0 1 2] [--work /tmp/mtl-zoo-bench]
        [--users 5000 --items 2000]   # the generated world; fewer users and items: each is seen more often

Writes benchmarks/results/zoo.md and prints it.
"""

import argparse
import dataclasses
import glob
import json
import os
import resource
import subprocess
import sys
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from config import DEFAULT_CONFIG, PipelineConfig, TaskConfig  # noqa: E402
from data.world import LogSpec  # noqa: E402

SINGLE_TASK = "single-task (one model per task)"
SINGLE_TASK_DOT = "single-task, 0 shared layers + user.item dot"
TWO_SHARED = {"architecture": "shared_bottom", "shared_layers": [64, 32]}
DOT = {**TWO_SHARED, "shared_layers": [], "dot_interaction": ["user_id", "item_id"]}
# Each variant spells out its model, so a change of the default config does not change what it measures;
# "tasks" (optional) names the heads it trains, from TASKS (default: the default config's tasks).
VARIANTS = {
    "shared-bottom, 2 shared layers": TWO_SHARED,
    "shared-bottom, 1 shared layer": {**TWO_SHARED, "shared_layers": [64]},
    "shared-bottom, 0 shared layers": {**TWO_SHARED, "shared_layers": []},
    "shared-bottom, 0 shared layers + reactions head": {**TWO_SHARED, "shared_layers": [],
                                                        "tasks": ["click", "conversion", "watch_time", "interest",
                                                                  "reactions"]},
    "shared-bottom, 0 shared layers + user.item dot": DOT,
    "shared-bottom, 0 shared + dot, per-example loss": {**DOT, "loss_normalization": "per_example"},
    "click + conversion only, 0 shared + dot": {**DOT, "tasks": ["click", "conversion"]},
    "click + conversion only, 0 shared + dot, per-example loss": {**DOT, "loss_normalization": "per_example",
                                                                  "tasks": ["click", "conversion"]},
    "MMoE (4 experts)": {"architecture": "mmoe", "experts": 4, "expert_layers": [64, 32]},
    "CGC (PLE, 1 level)": {"architecture": "ple", "levels": 1, "experts": 2, "task_experts": 1,
                           "expert_layers": [64, 32]},
    "PLE (2 levels)": {"architecture": "ple", "levels": 2, "experts": 2, "task_experts": 1,
                       "expert_layers": [64, 32]},
    "ESMM (shared-bottom)": {**TWO_SHARED, "esmm_tasks": ["click", "conversion"]},
    "shared-bottom + uncertainty": {**TWO_SHARED, "balancing": "uncertainty"},
    "shared-bottom + GradNorm": {**TWO_SHARED, "balancing": "gradnorm"},
    "shared-bottom + PCGrad": {**TWO_SHARED, "balancing": "pcgrad"},
    "MMoE + uncertainty": {"architecture": "mmoe", "experts": 4, "expert_layers": [64, 32],
                           "balancing": "uncertainty"},
    SINGLE_TASK: TWO_SHARED,  # each task alone in the 2-shared-layer network
    SINGLE_TASK_DOT: DOT,  # each task alone in the network of the dot-interaction variants
}


def training(events: int) -> dict:
    """10 epochs of about one pass over the 80% train split each (batch 256), stopped early after 3 flat ones."""
    scale = events / 200_000
    return {"train_steps": max(100, round(6000 * scale)), "epochs": 10, "eval_steps": max(10, round(100 * scale)),
            "early_stopping_patience": 3}


# The heads a variant may train: the default config's, and the multilabel reactions head the logs also carry.
TASKS = (*PipelineConfig.from_yaml(DEFAULT_CONFIG).tasks,
         TaskConfig(name="reactions", type="multilabel", label_key="reactions", num_classes=4, tower=(32,),
                    dropout=0.1))


def prepare(work: str, spec) -> dict:
    """Logs, one run of the real pipeline (its Transform output is what every variant trains on) and each head's
    Bayes limit on that run's eval split; cached in the work folder."""
    from data.writer import generate_logs
    from pipeline.limits import head_limits
    from pipeline.report import load_run_report
    from pipeline.runners import run_local

    paths_file = os.path.join(work, "paths.json")
    if os.path.exists(paths_file):
        return json.load(open(paths_file))
    log_root = os.path.join(work, "logs")
    generate_logs(spec, log_root, [1])
    base = PipelineConfig.from_yaml(DEFAULT_CONFIG)
    # Every head a variant may train, so Transform writes every label and weight column.
    config = base.replace(tasks=TASKS, data=dataclasses.replace(base.data, log_root=log_root))
    report = load_run_report(*run_local(config, output_dir=work, serving_dir=os.path.join(work, "serving")))
    root = os.path.join(work, "pipeline_root")
    paths = {
        "transform_graph": glob.glob(f"{root}/Transform/transform_graph/*")[0],
        "train": glob.glob(f"{root}/Transform/transformed_examples/*/Split-train/*"),
        "eval": glob.glob(f"{root}/Transform/transformed_examples/*/Split-eval/*"),
        "raw_eval": glob.glob(f"{report.examples_uri}/Split-eval/*"),
        "limits": head_limits(report, config),
    }
    json.dump(paths, open(paths_file, "w"))
    return paths


def variant_configs(name: str, events: int) -> list[PipelineConfig]:
    """The configs one variant trains: one, or one per task for the single-task baseline."""
    base = PipelineConfig.from_yaml(DEFAULT_CONFIG)
    variant = dict(VARIANTS[name])
    names = variant.pop("tasks", [t.name for t in base.tasks])
    model_changes = {key: tuple(value) if isinstance(value, list) else value for key, value in variant.items()}
    model = dataclasses.replace(base.model, **training(events), **model_changes)
    config = base.replace(model=model, tasks=tuple(t for t in TASKS if t.name in names))
    if name in (SINGLE_TASK, SINGLE_TASK_DOT):
        return [config.replace(tasks=(t,)) for t in config.tasks]
    return [config]


def run_variant(name: str, seeds: list[int], events: int, paths: dict) -> dict:
    """Trains the variant for every seed; returns per-seed head scores, throughput and this process's peak RSS."""
    import tensorflow as tf
    import tensorflow_transform as tft
    import tf_keras

    from models.builder import build_model
    from models.features import cardinalities
    from models.tasks import make_tasks
    from models.training import fit

    tft_output = tft.TFTransformOutput(paths["transform_graph"])
    spec = tft_output.transformed_feature_spec()

    def transformed(files, shuffle):
        data = tf.data.TFRecordDataset(files, compression_type="GZIP")
        data = data.shuffle(50_000, seed=0).repeat() if shuffle else data.repeat()
        return data.batch(256).map(lambda s: tf.io.parse_example(s, spec)).prefetch(4)

    eval_features = _raw_eval(paths["raw_eval"], tft_output)
    runs = []
    for seed in seeds:
        scores, examples, seconds = {}, 0, 0.0
        for config in variant_configs(name, events):
            config = config.replace(model=dataclasses.replace(config.model, seed=seed))
            tf_keras.utils.set_random_seed(seed)
            model = build_model(config, cardinalities(config.features, tft_output))
            start = time.perf_counter()
            history = fit(model, config.model, transformed(paths["train"], True), transformed(paths["eval"], False),
                          train_steps=config.model.train_steps, eval_steps=config.model.eval_steps, verbose=0)
            seconds += time.perf_counter() - start
            steps_per_epoch = config.model.train_steps // config.model.epochs
            examples += len(history.history["loss"]) * steps_per_epoch * config.model.batch_size
            predictions = model.predict(eval_features, batch_size=4096, verbose=0)
            for task in make_tasks(config.tasks):
                scores[task.name] = task.score(eval_features[task.label_feature], eval_features[task.weight_feature],
                                               np.asarray(predictions[task.name]))
        runs.append({"seed": seed, "scores": scores, "train_seconds": seconds,
                     "examples_per_second": examples / seconds})
    return {"runs": runs, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _raw_eval(files, tft_output):
    """All raw eval examples through the Transform graph: {feature: array}."""
    import tensorflow as tf

    raw_spec = tft_output.raw_feature_spec()
    layer = tft_output.transform_features_layer()
    batches = []
    for serialized in tf.data.TFRecordDataset(files, compression_type="GZIP").batch(4096):
        batches.append({k: v.numpy() for k, v in layer(tf.io.parse_example(serialized, raw_spec)).items()})
    return {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}


def table(results: dict, seeds: list[int], spec, limits: dict) -> str:
    """Markdown: per head mean ± std over seeds, the Bayes limit row (``limits``: head_limits), speed and memory."""
    from models.tasks import make_tasks

    trained = {head for result in results.values() for run in result["runs"] for head in run["scores"]}
    tasks = [t for t in make_tasks(TASKS) if t.name in trained]
    header = [f"{t.name} {t.key_metric_name}" for t in tasks]
    limit_cells = [f"**{limits[t.name][t.key_metric_name]:.4f}**" if t.name in limits else "" for t in tasks]
    lines = [f"{spec.num_events:,} generated events ({spec.num_users:,} users, {spec.num_items:,} items; "
             f"80/20 hash split), seeds {seeds}; mean ± std over seeds. "
             "AUC/accuracy: higher is better; RMSE: lower is better.", "",
             "| variant | " + " | ".join(header) + " | train s (mean) | train ex/s | peak RSS MB |",
             "|---" * (len(header) + 4) + "|",
             "| **Bayes limit / noise floor** | " + " | ".join(limit_cells) + " | | | |"]
    for name, result in results.items():
        cells = []
        for t in tasks:
            values = np.array([run["scores"][t.name] for run in result["runs"] if t.name in run["scores"]])
            if len(values):
                std = values.std(ddof=1) if len(values) > 1 else 0.0
                cells.append(f"{values.mean():.4f} ± {std:.4f}")
            else:
                cells.append("n/a")
        seconds = np.mean([run["train_seconds"] for run in result["runs"]])
        speed = np.median([run["examples_per_second"] for run in result["runs"]])
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {seconds:.0f} | {speed:,.0f} | "
                     f"{result['peak_rss_mb']:,.0f} |")
    return "\n".join(lines)


def _run_in_subprocess(name: str, args, work: str) -> dict:
    """One variant in its own process; its result is kept in the work folder, so a rerun resumes."""
    cached = os.path.join(work, "results", f"{name}-{'-'.join(map(str, args.seeds))}.json".replace(" ", "_"))
    if os.path.exists(cached):
        return json.load(open(cached))
    started = time.perf_counter()
    child = subprocess.run([sys.executable, __file__, "--run-one", name, "--events", str(args.events),
                            "--users", str(args.users), "--items", str(args.items),
                            "--work", args.work, "--seeds", *map(str, args.seeds)], capture_output=True, text=True)
    if child.returncode:
        raise RuntimeError(f"variant '{name}' failed:\n{child.stderr[-3000:]}")
    result = json.loads(child.stdout.strip().splitlines()[-1])
    os.makedirs(os.path.dirname(cached), exist_ok=True)
    json.dump(result, open(cached, "w"))
    print(f"{name}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--users", type=int, default=LogSpec.num_users)
    parser.add_argument("--items", type=int, default=LogSpec.num_items)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--work", default="/tmp/mtl-zoo-bench")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), help="subset of the variant names")
    parser.add_argument("--output", default=os.path.join(os.path.dirname(__file__), "results", "zoo.md"))
    parser.add_argument("--run-one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    spec = LogSpec(num_events=args.events, num_users=args.users, num_items=args.items)
    default_world = (args.users, args.items) == (LogSpec.num_users, LogSpec.num_items)
    world = "" if default_world else f"-{args.users}u-{args.items}i"
    work = os.path.join(args.work, f"{args.events}{world}")
    os.makedirs(work, exist_ok=True)
    if args.run_one:
        paths = json.load(open(os.path.join(work, "paths.json")))
        print(json.dumps(run_variant(args.run_one, args.seeds, args.events, paths)))
        return 0
    paths = prepare(work, spec)
    results = {name: _run_in_subprocess(name, args, work) for name in args.variants}
    text = table(results, args.seeds, spec, paths["limits"])
    with open(args.output, "w") as f:
        f.write("# Model zoo x loss balancing\n\n" + text + "\n")
    with open(args.output.replace(".md", ".json"), "w") as f:
        json.dump(results, f, indent=1)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
