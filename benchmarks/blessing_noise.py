"""How often blessing refuses a model no worse than its baseline, and how often it passes a worse one: today's
rule (TFMA's change threshold on the point estimate) against the noise-aware one (``components.blessing_gate``),
judged on the same evaluations.

On span 1 of the bundled logs (data/logs), one run of the real pipeline (pipeline.runners.run_local, cold start)
gives the Transform output and the test split. The Trainer's own ``run_fn`` trains the baseline (the default config,
seed 0, cold start) on its transformed splits, and for each seed 1 to N the candidates:

- *equal*: the same config with that seed: equal to the baseline up to seed noise;
- *worse, shuffled F*: the same, but conversion's training labels are shuffled among a fraction F of its labelled
  events (``--shuffled``, one row each): a real regression of conversion alone.

Each candidate is evaluated against the baseline by TFMA (``run_model_analysis`` with the pipeline's EvalConfig,
jackknife intervals, as the Evaluator runs it) on two test sets, and judged by both rules on each:

- *span 1's test split*: what the pipeline judges on at the bundled size (a tenth of a 20,000-event span);
- *spans 2 and 3*: 40,000 later events of the same world that no model saw: a test split of production size.

Writes benchmarks/results/blessing-noise.md and .json and prints the tables.

    .venv/bin/python benchmarks/blessing_noise.py [--seeds 10] [--shuffled 0.3 0.5]
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
import types

from provenance import write_results  # noqa: E402  (benchmarks/, beside this script)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from config import DEFAULT_CONFIG, PipelineConfig, to_custom_config  # noqa: E402

EQUAL = "equal"
LOGS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "logs")
SPLIT, LATER = "span 1's test split", "spans 2 and 3"


def prepare(work: str, config: PipelineConfig) -> dict:
    """One pipeline run on span 1 of the bundled logs; its Transform output, test split and Trainer model."""
    from pipeline.reports.run_report import load_run_report
    from pipeline.runners import run_local

    paths_file = os.path.join(work, "paths.json")
    if os.path.exists(paths_file):
        return json.load(open(paths_file))
    report = load_run_report(*run_local(config, output_dir=os.path.join(work, "run"),
                                        serving_dir=os.path.join(work, "serving")))
    root = os.path.join(work, "run", "pipeline_root")
    paths = {
        "transform_graph": glob.glob(f"{root}/Transform/transform_graph/*")[0],
        "train": glob.glob(f"{root}/Transform/transformed_examples/*/Split-train/*"),
        "eval": glob.glob(f"{root}/Transform/transformed_examples/*/Split-eval/*"),
        "test": f"{report.examples_uri}/Split-test/*",
    }
    json.dump(paths, open(paths_file, "w"))
    return paths


def shuffled_labels(files: list[str], config: PipelineConfig, task_name: str, fraction: float, seed: int,
                    folder: str) -> list[str]:
    """A copy of the transformed training files in which ``task_name``'s labels are shuffled among a random
    ``fraction`` of its labelled examples (each keeps its weight): labels that no longer follow the features."""
    import numpy as np
    import tensorflow as tf

    from models.tasks import make_tasks

    task = next(t for t in make_tasks(config.tasks) if t.name == task_name)
    examples = [tf.train.Example.FromString(record.numpy())
                for record in tf.data.TFRecordDataset(files, compression_type="GZIP")]
    labelled = [i for i, e in enumerate(examples)
                if e.features.feature[task.weight_feature].float_list.value[0] > 0]
    rng = np.random.default_rng(seed)
    chosen = rng.choice(labelled, size=int(fraction * len(labelled)), replace=False)
    labels = [list(examples[i].features.feature[task.label_feature].float_list.value) for i in chosen]
    for i, label in zip(chosen, rng.permutation(len(labels)), strict=True):
        feature = examples[i].features.feature[task.label_feature].float_list
        del feature.value[:]
        feature.value.extend(labels[label])
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "train.gz")
    with tf.io.TFRecordWriter(path, options="GZIP") as writer:
        for example in examples:
            writer.write(example.SerializeToString())
    return [path]


def train(config: PipelineConfig, paths: dict, train_files: list[str], out: str) -> str:
    """The Trainer's run_fn on the transformed splits, as the TFX Trainer calls it; returns the SavedModel."""
    from tfx_bsl.public import tfxio

    from models.training import run_fn

    def dataset_factory(files, options, schema):  # what the Trainer's data accessor does for tf.Examples
        return tfxio.TFExampleRecord(file_pattern=files, schema=schema).TensorFlowDataset(options)

    serving = os.path.join(out, "Format-Serving")
    run_fn(types.SimpleNamespace(
        custom_config=to_custom_config(config), transform_output=paths["transform_graph"], base_model=None,
        data_accessor=types.SimpleNamespace(tf_dataset_factory=dataset_factory), train_files=train_files,
        eval_files=paths["eval"], train_steps=None, eval_steps=None, model_run_dir=os.path.join(out, "logs"),
        serving_model_dir=serving))
    return serving


def evaluate(config: PipelineConfig, candidate: str, baseline: str, test_files: str, output: str) -> str:
    """TFMA's evaluation of ``candidate`` against ``baseline`` on the test files (a pattern), with the pipeline's
    EvalConfig and both models named as the Evaluator names them; returns the output folder."""
    import tensorflow_model_analysis as tfma

    from models.evaluation.eval_config import make_eval_config

    eval_config = make_eval_config(config)
    (spec,) = eval_config.model_specs
    specs = []
    for name in ("candidate", "baseline"):
        copy = type(spec)()
        copy.CopyFrom(spec)
        copy.name, copy.is_baseline = name, name == "baseline"
        specs.append(copy)
    del eval_config.model_specs[:]
    eval_config.model_specs.extend(specs)
    models = [tfma.default_eval_shared_model(path, eval_config=eval_config, model_name=name)
              for name, path in (("candidate", candidate), ("baseline", baseline))]
    tfma.run_model_analysis(eval_shared_model=models, eval_config=eval_config, data_location=test_files,
                            file_format="tfrecords", output_path=output)
    return output


def judged(config: PipelineConfig, evaluation: str) -> dict:
    """Both rules' verdicts on one evaluation, each head's change with its paired interval, and how many labelled
    conversion events the test split has."""
    import tensorflow_model_analysis as tfma

    from models.evaluation.results import metric_value, overall_metrics
    from models.evaluation.verdict import judge
    from models.tasks import make_tasks

    verdict = judge(evaluation, make_tasks(config.tasks))
    labelled = metric_value(overall_metrics(evaluation)["conversion"]["weighted_example_count"])
    return {"today": bool(tfma.load_validation_result(evaluation).validation_ok), "new": verdict.blessed,
            "conversion_test_labels": int(labelled),
            "changes": {c.head: {"change": c.change, "interval": c.interval, "refused": c.refused}
                        for c in verdict.changes}}


def worse(fraction: float) -> str:
    return f"worse, shuffled {fraction:g}"


def later_spans(work: str) -> str:
    """Spans 2 and 3 of the bundled logs in one file: events of the same world that no model here trained on."""
    import tensorflow as tf

    path = os.path.join(work, "spans-2-3.tfrecord.gz")
    if not os.path.exists(path):
        files = sorted(glob.glob(os.path.join(LOGS, "span-[23]", "*.tfrecord.gz")))
        with tf.io.TFRecordWriter(path + ".partial", options="GZIP") as writer:
            for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
                writer.write(record.numpy())
        os.rename(path + ".partial", path)
    return path


def summary(rows: list[dict], kinds: list[str], test_sets: list[str]) -> str:
    lines = ["| test set | labelled conversion events | candidate | conversion AUC change, median (min to max) | "
             "its 95% interval's half-width, median | blessed by today's rule | blessed by the new rule |",
             "|---|---|---|---|---|---|---|"]
    for test_set in test_sets:
        for kind in kinds:
            runs = [r for r in rows if r["kind"] == kind and r["test_set"] == test_set]
            changes = [r["changes"]["conversion"]["change"] for r in runs]
            widths = [(r["changes"]["conversion"]["interval"][1] - r["changes"]["conversion"]["interval"][0]) / 2
                      for r in runs if r["changes"]["conversion"]["interval"]]
            lines.append(f"| {test_set} | {runs[0]['conversion_test_labels']:,} | {kind} | "
                         f"{statistics.median(changes):+.4f} ({min(changes):+.4f} to {max(changes):+.4f}) | "
                         f"{statistics.median(widths):.4f} | {sum(r['today'] for r in runs)} of {len(runs)} | "
                         f"{sum(r['new'] for r in runs)} of {len(runs)} |")
    return "\n".join(lines)


def table(rows: list[dict], kinds: list[str], test_sets: list[str], config: PipelineConfig) -> str:
    tolerances = ", ".join(f"{t.name} {t.blessing.tolerance:g}" for t in config.tasks)
    lines = ["Trained on span 1 of the bundled logs; baseline: the default config's model (seed 0, cold start); "
             "candidates: seeds 1 to N per row, each judged against the baseline on the same test events by TFMA "
             "with jackknife intervals (20 buckets). Worse, shuffled F: conversion's training labels shuffled "
             f"among a fraction F of its labelled events. Tolerances: {tolerances}. Today's rule: TFMA's change "
             "threshold on the point estimate; the new rule (`blessing.evidence: interval`): the change worse than "
             "the tolerance and its one-sided 95% bound (from the paired 95% interval) on the worse side of 0.", "",
             summary(rows, kinds, test_sets)]
    lines += ["", "Per candidate (change and 95% paired interval per head; * = a head the new rule refuses):", "",
              "| test set | candidate | seed | " + " | ".join(t.name for t in config.tasks) + " | today | new |",
              "|---|---|---|" + "---|" * len(config.tasks) + "---|---|"]
    for r in rows:
        cells = []
        for task in config.tasks:
            change = r["changes"].get(task.name)
            if change is None:
                cells.append("—")
                continue
            interval = change["interval"]
            bounds = f" [{interval[0]:+.4f}, {interval[1]:+.4f}]" if interval else ""
            cells.append(f"{change['change']:+.4f}{bounds}{' *' if change['refused'] else ''}")
        lines.append(f"| {r['test_set']} | {r['kind']} | {r['seed']} | " + " | ".join(cells)
                     + f" | {'blessed' if r['today'] else 'refused'} | {'blessed' if r['new'] else 'refused'} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=10, help="candidates of each kind (seeds 1 to N)")
    parser.add_argument("--shuffled", type=float, nargs="+", default=[0.3, 0.5],
                        help="per row of worse candidates: the fraction of conversion's labelled training events "
                             "whose labels are shuffled")
    parser.add_argument("--work", default="/tmp/mtl-blessing-noise", help="kept between runs: trained models "
                        "and their evaluations are reused")
    parser.add_argument("--train-only", action="store_true", help="train and evaluate; judge in a later run")
    parser.add_argument("--output", default=os.path.join(os.path.dirname(__file__), "results", "blessing-noise.md"))
    args = parser.parse_args(argv)
    base = PipelineConfig.from_yaml(DEFAULT_CONFIG)
    config = base.replace(
        data=dataclasses.replace(base.data, span="1"),
        model=dataclasses.replace(base.model, warm_start=False),
        serving=dataclasses.replace(base.serving, tflite=False))
    os.makedirs(args.work, exist_ok=True)
    paths = prepare(args.work, config)
    baseline = os.path.join(args.work, "baseline", "model", "Format-Serving")
    if not os.path.exists(baseline):
        train(config, paths, paths["train"], os.path.dirname(baseline))
    kinds = {EQUAL: None, **{worse(fraction): fraction for fraction in args.shuffled}}
    test_sets = {SPLIT: ("evaluation", paths["test"]), LATER: ("evaluation-later-spans", later_spans(args.work))}
    evaluations = []
    for seed in range(1, args.seeds + 1):  # the kinds side by side, seed by seed: a first look comes early
        for kind, fraction in kinds.items():
            folder = os.path.join(args.work, f"{kind.replace(', ', '-').replace(' ', '-')}-{seed}")
            model = os.path.join(folder, "model", "Format-Serving")
            if not os.path.exists(os.path.join(folder, "model", "done")):
                started = time.time()
                shutil.rmtree(folder, ignore_errors=True)
                seeded = config.replace(model=dataclasses.replace(config.model, seed=seed))
                files = paths["train"] if fraction is None else shuffled_labels(
                    paths["train"], config, "conversion", fraction, seed, os.path.join(folder, "data"))
                train(seeded, paths, files, os.path.dirname(model))
                open(os.path.join(folder, "model", "done"), "w").close()
                print(f"{kind} seed {seed}: trained in {time.time() - started:.0f} s", flush=True)
            for test_set, (name, data) in test_sets.items():
                evaluation = os.path.join(folder, name)
                evaluations.append((test_set, kind, seed, evaluation))
                if not os.path.exists(os.path.join(evaluation, "validations.tfrecord")):
                    started = time.time()
                    evaluate(config, model, baseline, data, evaluation)
                    print(f"{kind} seed {seed}: {test_set} evaluated in {time.time() - started:.0f} s", flush=True)
    if args.train_only:
        return 0
    rows = [{"test_set": test_set, "kind": kind, "seed": seed, **judged(config, evaluation)}
            for test_set, kind, seed, evaluation in evaluations]
    text = table(rows, list(kinds), list(test_sets), config)
    write_results(args.output, "Blessing and seed noise", text, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
