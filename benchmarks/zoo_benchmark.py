"""Model zoo x loss balancing on generated logs: each head's score next to its Bayes limit, speed and memory.

Generates logs (default 200,000 events), runs the real pipeline once (pipeline.runners.run_local), then trains
every variant with the Trainer's own code (models.builder.build_model, models.training.fit) and the default
config's schedule (whole passes over the training split, early stopping on the validation loss) for each seed, one
subprocess per variant so that peak memory is the variant's own. Each model is scored by its tasks' own
``Task.score`` on the raw eval examples through the Transform graph. The Bayes limits come from the report's
``head_limits`` on exactly the same eval split; the learnable limits of click and conversion from
``learnable_limits.limit_aucs``, fitted on the same training split. For each variant and head a second table
gives what serving the head from the epoch of its best validation metric would add over the epoch that scored it.

    .venv/bin/python benchmarks/zoo_benchmark.py [--events 200000] [--seeds 0 1 2] [--work /tmp/mtl-zoo-bench]
        [--users 5000 --items 2000]   # the generated world; fewer users and items: each is seen more often

Writes benchmarks/results/zoo.md and prints it.
"""

import argparse
import dataclasses
import functools
import glob
import json
import os
import resource
import subprocess
import sys
import time

import raw_split  # noqa: E402  (benchmarks/, beside this script)
from provenance import write_results  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from config import DEFAULT_CONFIG, PipelineConfig, TaskConfig, TaskType  # noqa: E402
from data.world import LogSpec  # noqa: E402

SINGLE_TASK = "single-task (one model per task)"
SINGLE_TASK_DOT = "single-task, 0 shared layers + user.item dot"
SINGLE_TASK_MF = "single-task, 0 shared layers + factorisation"
# What the default config was before the factorisation round; every variant starts from it.
BASE = {"learning_rate": 0.002, "embedding_l2": 0.0, "factorization": [], "per_head_selection": False,
        "loss_normalization": "per_label", "task_embeddings": {}, "task_embedding_l2": 0.0,
        "early_stopping_patience": 3, "batch_size": 256, "id_updates": "whole_table", "head_copies": "whole_model"}
TWO_SHARED = {**BASE, "architecture": "shared_bottom", "shared_layers": [64, 32]}
DOT = {**TWO_SHARED, "shared_layers": [], "dot_interaction": ["user_id", "item_id"]}
MF = {**TWO_SHARED, "shared_layers": [], "factorization": ["user_id", "item_id"], "factor_dim": 16,
      "factor_l2": 1e-4, "embedding_l2": 1e-4}
PER_HEAD = {"per_head_selection": True}
PER_EXAMPLE = {"loss_normalization": "per_example"}
OWN_INTEREST_EMBEDDING = {**MF, **PER_HEAD, **PER_EXAMPLE, "learning_rate": 0.003, "embedding_l2": 1e-3,
                          "task_embeddings": {"interest": ["user_id"]}, "task_embedding_l2": 1e-4}
# The default config's model before row updates (benchmarks/results/id-updates.md).
WHOLE_TABLE = {**OWN_INTEREST_EMBEDDING, "early_stopping_patience": 5, "batch_size": 512, "learning_rate": 0.004}
ROWS = {**WHOLE_TABLE, "id_updates": "rows"}

# Each variant spells out its model, so a change of the default config does not change what it measures;
# "tasks" (optional) names the heads it trains, from TASKS (default: the default config's tasks),
# "task_changes" (optional) changes some of their settings ({task: {field: value}}), and "features" (optional)
# changes some features' settings ({feature: {field: value}}): such a variant trains on a Transform output of its
# own, from the pipeline run on the same logs with those features (the same split: it hashes event ids).
VARIANTS = {
    "shared-bottom, 2 shared layers": TWO_SHARED,
    "shared-bottom, 1 shared layer": {**TWO_SHARED, "shared_layers": [64]},
    "shared-bottom, 0 shared layers": {**TWO_SHARED, "shared_layers": []},
    "shared-bottom, 0 shared layers, batch 512, lr 0.0028": {**TWO_SHARED, "shared_layers": [], "batch_size": 512,
                                                             "learning_rate": 0.0028},
    "shared-bottom, 0 shared layers + reactions head": {**TWO_SHARED, "shared_layers": [],
                                                        "tasks": ["click", "conversion", "watch_time", "interest",
                                                                  "reactions"]},
    "shared-bottom, 0 shared layers + user.item dot": DOT,
    "shared-bottom, 0 shared + dot, per-example loss": {**DOT, "loss_normalization": "per_example"},
    "click + conversion only, 0 shared + dot": {**DOT, "tasks": ["click", "conversion"]},
    "click + conversion only, 0 shared + dot, per-example loss": {**DOT, "loss_normalization": "per_example",
                                                                  "tasks": ["click", "conversion"]},
    "MMoE (4 experts)": {**BASE, "architecture": "mmoe", "experts": 4, "expert_layers": [64, 32]},
    "CGC (PLE, 1 level)": {**BASE, "architecture": "ple", "levels": 1, "experts": 2, "task_experts": 1,
                           "expert_layers": [64, 32]},
    "PLE (2 levels)": {**BASE, "architecture": "ple", "levels": 2, "experts": 2, "task_experts": 1,
                       "expert_layers": [64, 32]},
    "ESMM (shared-bottom)": {**TWO_SHARED, "esmm_tasks": ["click", "conversion"]},
    "shared-bottom + uncertainty": {**TWO_SHARED, "balancing": "uncertainty"},
    "shared-bottom + GradNorm": {**TWO_SHARED, "balancing": "gradnorm"},
    "shared-bottom + PCGrad": {**TWO_SHARED, "balancing": "pcgrad"},
    "MMoE + uncertainty": {**BASE, "architecture": "mmoe", "experts": 4, "expert_layers": [64, 32],
                           "balancing": "uncertainty"},
    "shared-bottom, 0 shared layers + factorisation": MF,
    "shared-bottom, 0 shared layers, per-head selection": {**TWO_SHARED, "shared_layers": [], **PER_HEAD},
    "shared-bottom, 0 shared layers + factorisation, per-head selection": {**MF, **PER_HEAD},
    "shared-bottom, 0 shared layers + factorisation, per-head selection, lr 0.005": {**MF, **PER_HEAD,
                                                                                    "learning_rate": 0.005},
    "... + factorisation read by click, conversion, watch_time; per-head selection, lr 0.005": {
        **MF, **PER_HEAD, "learning_rate": 0.005, "factor_tasks": ["click", "conversion", "watch_time"]},
    "... + factorisation, per-head selection, lr 0.005, per-example loss": {**MF, **PER_HEAD, **PER_EXAMPLE,
                                                                          "learning_rate": 0.005},
    "... + factorisation, per-head selection, per-example loss, lr 0.003, embedding L2 1e-3": {
        **MF, **PER_HEAD, **PER_EXAMPLE, "learning_rate": 0.003, "embedding_l2": 1e-3},
    "... + factorisation, per-head selection, per-example loss, lr 0.003, embedding L2 1e-3, interest's own user_id "
    "embedding (L2 1e-4)": OWN_INTEREST_EMBEDDING,
    "... + factorisation, per-head selection, per-example loss, lr 0.003, embedding L2 1e-3, interest's own user_id "
    "embedding (L2 1e-4), patience 5": {**OWN_INTEREST_EMBEDDING, "early_stopping_patience": 5},
    "... + factorisation, per-head selection, per-example loss, embedding L2 1e-3, interest's own user_id embedding "
    "(L2 1e-4), patience 5, batch 512, lr 0.004": {**OWN_INTEREST_EMBEDDING, "early_stopping_patience": 5,
                                                   "batch_size": 512, "learning_rate": 0.004},
    "id tables: whole-table updates (Adam, whole-table L2)": WHOLE_TABLE,
    "id tables: row updates (RowAdam, rows caught up)": ROWS,
    "id tables: row updates (RowAdam, rows caught up), dense-weight head copies": {**ROWS,
                                                                                  "head_copies": "dense_weights"},
    # user_id and item_id hashed (`kind: hash`) into buckets 4x, 1x and 0.25x the ids the world has, instead of
    # a vocabulary of every id: what collisions cost (benchmarks/results/hash-collisions.md)
    **{f"id tables: row updates, user_id and item_id hashed into {users:,} and {items:,} buckets": {
        **ROWS, "features": {"user_id": {"kind": "hash", "hash_buckets": users, "top_k": None, "oov_buckets": 0},
                             "item_id": {"kind": "hash", "hash_buckets": items, "top_k": None, "oov_buckets": 0}}}
       for users, items in ((20_000, 8_000), (5_000, 2_000), (1_250, 500))},
    SINGLE_TASK: TWO_SHARED,  # each task alone in the 2-shared-layer network
    SINGLE_TASK_DOT: DOT,  # each task alone in the network of the dot-interaction variants
    SINGLE_TASK_MF: {**MF, **PER_HEAD},  # each task alone in the network of the factorisation variants
}


# The heads a variant may train: the default config's, and the multilabel reactions head the logs also carry.
TASKS = (*PipelineConfig.from_yaml(DEFAULT_CONFIG).tasks,
         TaskConfig(name="reactions", type=TaskType.MULTILABEL, label_key="reactions", num_classes=4, tower=(32,),
                    dropout=0.1))


def prepare(work: str, spec, features: dict | None = None) -> dict:
    """Logs, one run of the real pipeline (its Transform output is what every variant trains on) and each head's
    Bayes limit on that run's eval split; cached in the work folder. With ``features`` (a variant's feature
    changes), the pipeline runs with them in a folder of its own, on the logs of the plain run."""
    from data.writer import generate_logs
    from pipeline.reports.head_limits import head_limits
    from pipeline.reports.run_report import load_run_report
    from pipeline.runners import run_local

    if features:
        plain = prepare(work, spec)
        work = os.path.join(work, "features-" + _slug(features))
        os.makedirs(work, exist_ok=True)
    paths_file = os.path.join(work, "paths.json")
    if os.path.exists(paths_file):
        paths = json.load(open(paths_file))
        if "learnable_limits" not in paths:  # a work folder of an earlier version of this script
            paths["learnable_limits"] = _learnable_limits(spec, paths["raw_eval"])
            json.dump(paths, open(paths_file, "w"))
        return paths
    log_root = os.path.join(os.path.dirname(work) if features else work, "logs")
    if not features:
        generate_logs(spec, log_root, [1])
    base = _with_features(PipelineConfig.from_yaml(DEFAULT_CONFIG), features)
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
    paths["learnable_limits"] = plain["learnable_limits"] if features else _learnable_limits(spec, paths["raw_eval"])
    json.dump(paths, open(paths_file, "w"))
    return paths


def _slug(features: dict) -> str:
    return "-".join(f"{name}-{'-'.join(f'{k}{v}' for k, v in sorted(changes.items()))}"
                    for name, changes in sorted(features.items()))


def _with_features(config: PipelineConfig, features: dict | None) -> PipelineConfig:
    """``config`` with ``features``' changes ({feature: {field: value}}) made to its features."""
    features = features or {}
    return config.replace(features=tuple(dataclasses.replace(f, **features.get(f.name, {}))
                                         for f in config.features))


def variant_configs(name: str, events: int) -> list[PipelineConfig]:
    """The configs one variant trains: one, or one per task for the single-task baseline."""
    base = PipelineConfig.from_yaml(DEFAULT_CONFIG)
    variant = dict(VARIANTS[name])
    names = variant.pop("tasks", [t.name for t in base.tasks])
    task_changes = variant.pop("task_changes", {})
    base = _with_features(base, variant.pop("features", None))
    model_changes = {key: tuple(value) if isinstance(value, list) else value for key, value in variant.items()}
    model = dataclasses.replace(base.model, **model_changes)
    config = base.replace(model=model, tasks=tuple(dataclasses.replace(t, **task_changes.get(t.name, {}))
                                                   for t in TASKS if t.name in names))
    if name in (SINGLE_TASK, SINGLE_TASK_DOT, SINGLE_TASK_MF):
        return [config.replace(tasks=(t,)) for t in config.tasks]
    return [config]


def run_variant(name: str, seeds: list[int], events: int, paths: dict) -> dict:
    """Trains the variant for every seed; returns per-seed head scores, throughput and this process's peak RSS."""
    import tensorflow as tf
    import tensorflow_transform as tft
    import tf_keras

    from models.builder import build_model
    from models.features import cardinalities
    from models.head_selection import head_models
    from models.tasks import make_tasks
    from models.training import fit, head_copy_layers_from

    tft_output = tft.TFTransformOutput(paths["transform_graph"])
    spec = tft_output.transformed_feature_spec()

    def transformed(files, shuffle, batch_size):  # parsed once, then served from memory, as the Trainer does here
        data = tf.data.TFRecordDataset(files, compression_type="GZIP").batch(batch_size)
        data = data.map(lambda s: tf.io.parse_example(s, spec)).cache()
        return (data.shuffle(1024, seed=0, reshuffle_each_iteration=True) if shuffle else data).prefetch(4)

    eval_features = raw_split.transformed(paths["raw_eval"], tft_output)
    runs = []
    for seed in seeds:
        scores, own_best_gain, epochs, speeds, seconds = {}, {}, [], [], 0.0
        for config in variant_configs(name, events):
            config = config.replace(model=dataclasses.replace(config.model, seed=seed))
            tf_keras.utils.set_random_seed(seed)
            sizes = cardinalities(config.features, tft_output)
            model = build_model(config, sizes)
            start = time.perf_counter()
            batch_size = config.model.batch_size
            history, selection = fit(model, config.model, transformed(paths["train"], True, batch_size),
                                     transformed(paths["eval"], False, batch_size), train_steps=None, eval_steps=None,
                                     verbose=0)
            history = history.history
            seconds += time.perf_counter() - start
            epochs.append(len(history["loss"]))
            speeds.append(float(np.median(history["examples_per_second"])))
            predictions = model.predict(eval_features, batch_size=4096, verbose=0)
            by_head = head_models(functools.partial(build_model, config, sizes,
                                                    id_layers_from=head_copy_layers_from(config.model, model)),
                                  selection.head_weights if selection else {},
                                  {name: values[:1] for name, values in eval_features.items()})
            for head, copy in by_head.items():  # served from its own best epoch, as in the exported model
                predictions[head] = copy.predict(eval_features, batch_size=4096, verbose=0)[head]
            for task in make_tasks(config.tasks):
                kept = selection.best_epochs.get(task.name, selection.kept_epoch) if selection \
                    else int(np.argmin(history["val_loss"]))  # the epoch whose weights score this head
                scores[task.name] = task.score(eval_features[task.label_feature], eval_features[task.weight_feature],
                                               np.asarray(predictions[task.name]))
                per_epoch = np.array(history[f"val_{model.task_metrics[task.name][0].name}"])
                best = per_epoch.max() if task.higher_is_better else per_epoch.min()
                own_best_gain[task.name] = float(abs(best - per_epoch[kept]))
        runs.append({"seed": seed, "scores": scores, "own_best_epoch_gain": own_best_gain, "epochs": epochs,
                     "train_seconds": seconds, "examples_per_second": float(np.mean(speeds))})
    return {"runs": runs, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _learnable_limits(spec, raw_eval_files) -> dict:
    """{click|conversion: {"auc": learnable limit}}: learnable_limits' learner fitted on the events of the training
    split (span 1 minus the eval examples) and scored on the eval split."""
    from learnable_limits import LEARNABLE_LIMIT, limit_aucs

    from data.world import generate_span

    eval_ids = raw_split.event_ids(raw_eval_files)
    events = generate_span(spec, 1)
    aucs = limit_aucs(spec, events, ~np.isin(events.features["event_id"], eval_ids))
    return {head: {"auc": by_column[LEARNABLE_LIMIT]} for head, by_column in aucs.items()}


def table(results: dict, seeds: list[int], spec, limits: dict, learnable: dict) -> str:
    """Markdown: per head mean ± std over seeds under the Bayes limit row (``limits``: head_limits) and the
    learnable limit row (``learnable``: click and conversion), epochs, speed and memory; then, per variant and
    head, what serving the head from the epoch of its best validation metric would have added."""
    from models.tasks import make_tasks

    trained = {head for result in results.values() for run in result["runs"] for head in run["scores"]}
    tasks = [t for t in make_tasks(TASKS) if t.name in trained]
    header = [f"{t.name} {t.key_metric_name}" for t in tasks]

    def limit_row(title, by_head):
        cells = [f"**{by_head[t.name][t.key_metric_name]:.4f}**" if t.name in by_head else "" for t in tasks]
        return f"| **{title}** | " + " | ".join(cells) + " | | | | |"

    lines = [f"{spec.num_events:,} generated events ({spec.num_users:,} users, {spec.num_items:,} items; "
             f"80/20 hash split), seeds {seeds}; mean ± std over seeds. "
             "AUC/accuracy: higher is better; RMSE: lower is better.", "",
             "| variant | " + " | ".join(header) + " | epochs (mean) | train s (mean) | train ex/s | peak RSS MB |",
             "|---" * (len(header) + 5) + "|",
             limit_row("Bayes limit / noise floor", limits), limit_row("learnable limit", learnable)]
    gain_lines = ["", "What serving each head from the epoch of its best validation metric would add over the epoch "
                  "that scored it (mean over seeds; the metric's own units; the eval split is the one scored above):",
                  "",
                  "| variant | " + " | ".join(t.name for t in tasks) + " |", "|---" * (len(tasks) + 1) + "|"]
    for name, result in results.items():
        cells = []
        for t in tasks:
            values = np.array([run["scores"][t.name] for run in result["runs"] if t.name in run["scores"]])
            if len(values):
                std = values.std(ddof=1) if len(values) > 1 else 0.0
                cells.append(f"{values.mean():.4f} ± {std:.4f}")
            else:
                cells.append("n/a")
        epochs = np.mean([np.mean(run.get("epochs", [np.nan])) for run in result["runs"]])
        seconds = np.mean([run["train_seconds"] for run in result["runs"]])
        speed = np.median([run["examples_per_second"] for run in result["runs"]])
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {epochs:.1f} | {seconds:.0f} | {speed:,.0f} | "
                     f"{result['peak_rss_mb']:,.0f} |")
        gains = [[run["own_best_epoch_gain"][t.name] for run in result["runs"]
                  if t.name in run.get("own_best_epoch_gain", {})] for t in tasks]
        gain_lines.append(f"| {name} | " + " | ".join(f"{np.mean(g):.4f}" if g else "n/a" for g in gains) + " |")
    return "\n".join(lines + gain_lines)


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
    parser.add_argument("--title", default="Model zoo x loss balancing", help="the results file's heading")
    parser.add_argument("--run-one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    spec = LogSpec(num_events=args.events, num_users=args.users, num_items=args.items)
    default_world = (args.users, args.items) == (LogSpec.num_users, LogSpec.num_items)
    world = "" if default_world else f"-{args.users}u-{args.items}i"
    work = os.path.join(args.work, f"{args.events}{world}")
    os.makedirs(work, exist_ok=True)
    if args.run_one:
        paths = prepare(work, spec, VARIANTS[args.run_one].get("features"))  # prepared already: read back
        print(json.dumps(run_variant(args.run_one, args.seeds, args.events, paths)))
        return 0
    paths = prepare(work, spec)
    results = {}
    for name in args.variants:
        prepare(work, spec, VARIANTS[name].get("features"))
        results[name] = _run_in_subprocess(name, args, work)
    text = table(results, args.seeds, spec, paths["limits"], paths["learnable_limits"])
    write_results(args.output, args.title, text, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
