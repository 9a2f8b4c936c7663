"""The assistant's model: each sequence encoder, character n-grams, hard and soft sharing, and one single-task model
per head, on the bundled assistant logs, next to the truth's best achievable score on the same test split.

Runs the real pipeline (``config/assistant.yaml`` on span 1 by default, pipeline.runners.run_local) once, and once
more for each variant that changes Transform's output (char n-grams): its Transform output is what the variants
train on, with the Trainer's own code (models.builder.build_model, models.training.fit,
per-head selection as the config sets it: early stopping and each head's epoch chosen on the eval split) for each
seed. Each head is scored by its task's ``Task.score`` on the test split, which no choice saw, through the Transform
graph (intent and sentiment accuracy, keywords micro ROC AUC, slots span micro-F1 by the CoNLL rules). The best
achievable scores are the generator's truth scored the same way on the same test events
(``pipeline.reports.assistant_limits``). Per variant also: training examples/s (median epoch), the exported
SavedModel's size, and the batch-1 latency of its ``serving_raw`` signature, loaded in this process, for a
30-token utterance (median and p99 of SERVING_CALLS calls; the single-task row calls its models one after the
other, as serving every head would).

    .venv/bin/python benchmarks/assistant.py [--seeds 0 1 2] [--work /tmp/mtl-assistant-bench] [--variants ...]
        [--span 1] [--train-spans 1] [--output assistant]

Writes benchmarks/results/<output>.md and <output>.json and prints the table. With ``--train-spans N`` the pipeline
first runs on the N - 1 spans before ``--span`` in the same output folder, so that Transform and the variants
train on N spans; the heads and the truth are scored on ``--span``'s test split either way.
"""

import argparse
import dataclasses
import functools
import glob
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import raw_split  # noqa: E402  (benchmarks/, beside this script)
from provenance import measured_line  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from config import PipelineConfig  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
CONFIG = ROOT / "config" / "assistant.yaml"
SPAN = 1
SERVING_CALLS = 300
UTTERANCE = ("hi um i ordered the blue running shoes last friday and they still have not arrived , can you check "
             "order 48213 and send them to new york please ?")  # 30 whitespace tokens
DEFAULT = "multi-task, cnn, by-level sharing (default)"
SINGLE_TASK = "single-task, cnn (one model per head)"
HARD = {"sharing": "hard"}
NO_CHARS = {"char_ngram_buckets": 0, "token_dropout": 0.0}  # neither character n-grams nor token dropout
BY_TEXT = {**NO_CHARS, "oov_buckets": 8, "oov_by_shape": False}  # OOV tokens hashed by their text into 8 buckets
TOWERS_UNDROPPED = {"tasks": {"dropout": 0.0}}
NO_TOWER_DROPOUT = "multi-task, cnn, by-level sharing, no char n-grams or token dropout, no tower dropout"
PREVIOUS_DEFAULT = "multi-task, cnn, by-level sharing, no char n-grams or token dropout (the previous default)"
VARIANTS = {  # changes to the text feature's settings (under "model", to the model's; under "tasks", to every task's)
    DEFAULT: {},
    "multi-task, cnn, by-level sharing, head copies share the text encoders": {"model": {"head_copies":
                                                                                     "dense_weights"}},
    "multi-task, cnn, by-level sharing, no token dropout": {"token_dropout": 0.0},
    "multi-task, cnn, by-level sharing, no char n-grams": {"char_ngram_buckets": 0},
    PREVIOUS_DEFAULT: NO_CHARS,
    NO_TOWER_DROPOUT: {**NO_CHARS, **TOWERS_UNDROPPED},
    "multi-task, cnn, by-level sharing, 32 OOV buckets by text, no tower dropout": {**NO_CHARS, "oov_by_shape": False,
                                                                                   **TOWERS_UNDROPPED},
    "multi-task, cnn, by-level sharing, 8 OOV buckets by text": BY_TEXT,
    "multi-task, cnn, by-level sharing, 8 OOV buckets by text, no tower dropout": {**BY_TEXT, **TOWERS_UNDROPPED},
    "multi-task, cnn, by-level sharing, 8 OOV buckets by text, no tower dropout, encoder dropout 0.3": {
        **BY_TEXT, **TOWERS_UNDROPPED, "encoder_dropout": 0.3},
    "multi-task, cnn, by-level sharing, embeddings of 64": {"embedding_dim": 64},
    "multi-task, cnn, by-level sharing, 64 cnn filters": {"encoder_units": 64},
    "multi-task, cnn, by-level sharing, a tower of 128 per head": {"tasks": {"tower": [128]}},
    "multi-task, cnn, by-level sharing, learning rate 0.001, up to 40 epochs": {"model": {"learning_rate": 0.001,
                                                                                          "epochs": 40}},
    "multi-task, cnn, by-level sharing, batch 32": {"model": {"batch_size": 32}},
    "multi-task, cnn, by-level sharing, early stopping patience 5": {"model": {"early_stopping_patience": 5}},
    "multi-task, cnn, hard sharing": HARD,
    "multi-task, cnn, soft sharing": {"sharing": "soft"},
    "multi-task, mean": {**HARD, "encoder": "mean"},
    "multi-task, max": {**HARD, "encoder": "max"},
    "multi-task, gru": {**HARD, "encoder": "gru"},
    "multi-task, lstm": {**HARD, "encoder": "lstm"},
    "multi-task, transformer": {**HARD, "encoder": "transformer"},
    "multi-task, gru, every head from one epoch": {**HARD, "encoder": "gru", "model": {"per_head_selection": False}},
    "multi-task, cnn, 2 layers": {**HARD, "encoder_layers": 2},
    "multi-task, cnn, no char n-grams": {**HARD, "char_ngram_buckets": 0},
    "multi-task, gru, no char n-grams": {**HARD, "encoder": "gru", "char_ngram_buckets": 0},
    SINGLE_TASK: HARD,  # one head per model: an utterance head has no token-tagging head beside it
}
HEADS = {"intent": "accuracy", "keywords": "micro AUC", "sentiment": "accuracy", "slots": "span F1"}
LIMIT_KEYS = {"intent": "intent_accuracy", "keywords": "keyword_auc", "sentiment": "sentiment_accuracy",
              "slots": "slot_f1"}


# The text feature's settings that change Transform's output: a variant that sets one trains on a pipeline run of its
# own (the same span and split).
TRANSFORM_SETTINGS = ("char_ngram_buckets", "char_ngram_sizes", "char_ngrams_per_token", "oov_buckets", "oov_by_shape")


def _newest(pattern: str) -> str:
    """The folder of the newest execution among ``pattern``'s matches (TFX names them by execution id)."""
    return max(glob.glob(pattern), key=lambda path: int(os.path.basename(path)))


def prepare(work: str, text_settings: dict | None = None, span: int = SPAN, train_spans: int = 1) -> dict:
    """The real pipeline run on the bundled span ``span`` (its text feature changed by ``text_settings``), after
    runs on the ``train_spans - 1`` spans before it in the same output folder, as a daily schedule ingests them, so
    that its Transform and Trainer read ``train_spans`` spans; and the truth's best on its test split. Cached in
    ``work``."""

    from pipeline.reports.assistant_limits import best_achievable
    from pipeline.reports.run_report import OVERALL, load_run_report
    from pipeline.runners import run_local

    paths_file = os.path.join(work, "paths.json")
    base = PipelineConfig.from_yaml(CONFIG)
    text = dataclasses.replace(base.features[0], **(text_settings or {}))
    settings = json.loads(json.dumps({key: getattr(text, key) for key in TRANSFORM_SETTINGS}))
    if os.path.exists(paths_file):
        paths = json.load(open(paths_file))
        if paths.get("transform_settings") != settings:
            raise SystemExit(f"{work} holds a pipeline run with the text settings {paths.get('transform_settings')}, "
                             f"not {settings} (config/assistant.yaml changed since): give another --work")
        if paths.get("spans") != [span, train_spans]:  # its results.json scored that split too
            raise SystemExit(f"{work} holds a pipeline run of --span and --train-spans {paths.get('spans')}, not "
                             f"{[span, train_spans]}: give another --work")
        return paths
    started = time.perf_counter()
    for run_span in range(span - train_spans + 1, span + 1):
        config = base.replace(
            data=dataclasses.replace(base.data, log_root=str(ROOT / base.data.log_root), span=run_span,
                                     train_spans=run_span - (span - train_spans)),
            features=(text, *base.features[1:]))
        report = load_run_report(*run_local(config, output_dir=work, serving_dir=os.path.join(work, "serving")))
    root = os.path.join(work, "pipeline_root")
    raw_test = glob.glob(f"{report.examples_uri}/Split-test/*")
    transformed = glob.glob(f"{root}/Transform/transformed_examples/*")
    newest = max(int(os.path.basename(path).split("-")[0]) for path in transformed)
    transformed = [path for path in transformed if int(os.path.basename(path).split("-")[0]) == newest]
    paths = {
        "transform_settings": settings,
        "spans": [span, train_spans],
        "transform_graph": _newest(f"{root}/Transform/transform_graph/*"),
        "train": [f for path in transformed for f in glob.glob(f"{path}/**/Split-train/*", recursive=True)],
        "eval": [f for path in transformed for f in glob.glob(f"{path}/**/Split-eval/*", recursive=True)],
        "raw_test": raw_test,
        "limits": best_achievable(ROOT / base.data.log_root / f"span-{span}", set(raw_split.event_ids(raw_test))),
        "pipeline": {"blessed": report.blessed, "seconds": report.seconds,
                     "wall_seconds": time.perf_counter() - started,
                     "metrics": {head: values for (slice_name, head), values in report.metrics.items()
                                 if slice_name == OVERALL}},
    }
    json.dump(paths, open(paths_file, "w"), default=str)
    return paths


def variant_configs(name: str) -> list[PipelineConfig]:
    """The configs one variant trains: one, or one per head for the single-task row."""
    base = PipelineConfig.from_yaml(CONFIG)
    changes = dict(VARIANTS[name])
    model = dataclasses.replace(base.model, **changes.pop("model", {}))
    tasks = changes.pop("tasks", {})
    config = base.replace(features=(dataclasses.replace(base.features[0], **changes), *base.features[1:]), model=model,
                          tasks=tuple(dataclasses.replace(task, **tasks) for task in base.tasks))
    if name == SINGLE_TASK:
        return [config.replace(tasks=(task,)) for task in config.tasks]
    return [config]


def _transformed(files, spec, batch_size: int, shuffle: bool):
    import tensorflow as tf

    data = tf.data.TFRecordDataset(files, compression_type="GZIP").batch(batch_size)
    data = data.map(lambda s: tf.io.parse_example(s, spec)).cache()
    return (data.shuffle(256, seed=0, reshuffle_each_iteration=True) if shuffle else data).prefetch(4)


def _latency(export_dirs: list[str]) -> tuple[float, float]:
    """Median and p99 ms of one batch-1 ``serving_raw`` call of every model in ``export_dirs``, one after another."""
    import tensorflow as tf

    signatures = [tf.saved_model.load(path).signatures["serving_raw"] for path in export_dirs]
    request = {"text": tf.constant([UTTERANCE]), "channel": tf.constant(["app"])}
    for signature in signatures:
        for _ in range(20):
            signature(**request)
    times = []
    for _ in range(SERVING_CALLS):
        started = time.perf_counter()
        for signature in signatures:
            signature(**request)
        times.append((time.perf_counter() - started) * 1e3)
    return float(np.median(times)), float(np.percentile(times, 99))


def latency_table(paths: dict) -> str:
    """Batch-1 serving_raw latency of each encoder with one forward pass and with three more head copies (what
    per-head selection serves when four heads pick four epochs), untrained weights (latency does not depend on
    them), measured alone: run with nothing else on the machine."""
    import tensorflow as tf
    import tensorflow_transform as tft

    from models import signatures
    from models.builder import build_model
    from models.features import cardinalities
    from models.tasks import with_class_counts

    tft_output = tft.TFTransformOutput(paths["transform_graph"])
    placeholder = {name: tf.zeros([1, *spec.shape], spec.dtype)
                   for name, spec in tft_output.transformed_feature_spec().items()}
    lines = ["| encoder | one pass: p50 / p99 | with 3 head copies: p50 / p99 |", "|---|---|---|"]
    for kind in ("mean", "max", "cnn", "gru", "lstm", "transformer"):
        base = PipelineConfig.from_yaml(CONFIG)
        config = with_class_counts(base.replace(features=(dataclasses.replace(base.features[0], encoder=kind),
                                                          *base.features[1:])), tft_output)
        sizes = cardinalities(config.features, tft_output)
        cells = []
        for copies in (0, 3):
            models = [build_model(config, sizes) for _ in range(copies + 1)]
            for model in models:
                model(placeholder)
            work = tempfile.mkdtemp(prefix="assistant-latency-")
            heads = {task.name: copy for task, copy in zip(config.tasks, models[1:], strict=False)}
            signatures.export(models[0], tft_output, list(config.features), work, head_models=heads)
            p50, p99 = _latency([work])
            shutil.rmtree(work, ignore_errors=True)
            cells.append(f"{p50:.2f} / {p99:.2f} ms")
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    return "\n".join(lines)


def variant_paths(name: str, work: str, span: int = SPAN, train_spans: int = 1) -> dict:
    """The prepared pipeline run that variant ``name`` trains on: the default one, or one of its Transform
    settings (``prepare``'s span and train_spans)."""
    settings = {key: value for key, value in VARIANTS[name].items() if key in TRANSFORM_SETTINGS}
    if not settings:
        return prepare(work, span=span, train_spans=train_spans)
    folder = "-".join(f"{key}-{value}" for key, value in sorted(settings.items()))
    return prepare(os.path.join(work, folder), settings, span, train_spans)


def run_variant(name: str, seeds: list[int], work: str, span: int = SPAN, train_spans: int = 1) -> dict:
    """Trains the variant for every seed: per-seed head scores, examples/s, SavedModel size and latency."""
    import tensorflow as tf
    import tensorflow_transform as tft
    import tf_keras

    from models import signatures
    from models.builder import build_model
    from models.features import cardinalities
    from models.head_selection import head_models
    from models.tasks import make_tasks, with_class_counts
    from models.training import fit, head_copy_layers_from

    paths = variant_paths(name, work, span, train_spans)
    tft_output = tft.TFTransformOutput(paths["transform_graph"])
    spec = tft_output.transformed_feature_spec()
    test_features = raw_split.transformed(paths["raw_test"], tft_output)
    runs = []
    for seed in seeds:
        scores, speeds, exports = {}, [], []
        work = tempfile.mkdtemp(prefix="assistant-export-")
        for config in variant_configs(name):
            config = with_class_counts(config.replace(model=dataclasses.replace(config.model, seed=seed)), tft_output)
            tf_keras.utils.set_random_seed(seed)
            sizes = cardinalities(config.features, tft_output)
            model = build_model(config, sizes)
            batch_size = config.model.batch_size
            history, selection = fit(model, config.model, _transformed(paths["train"], spec, batch_size, True),
                                     _transformed(paths["eval"], spec, batch_size, False), train_steps=None,
                                     eval_steps=None, verbose=0)
            speeds.append(float(np.median(history.history["examples_per_second"][1:])))
            by_head = head_models(functools.partial(build_model, config, sizes,
                                                    id_layers_from=head_copy_layers_from(config.model, model)),
                                  selection.head_weights if selection else {},
                                  {key: values[:1] for key, values in test_features.items()})
            predictions = model.predict(test_features, batch_size=1024, verbose=0)
            for head, copy in by_head.items():  # served from its own best epoch, as in the exported model
                predictions[head] = copy.predict(test_features, batch_size=1024, verbose=0)[head]
            for task in make_tasks(config.tasks):
                labels = task.targets(tf.constant(test_features[task.label_feature])).numpy()
                scores[task.name] = task.score(labels, test_features[task.weight_feature],
                                               np.asarray(predictions[task.name]))
            exports.append(os.path.join(work, config.tasks[0].name if name == SINGLE_TASK else "model"))
            signatures.export(model, tft_output, list(config.features), exports[-1], head_models=by_head)
            tf_keras.backend.clear_session()
        p50, p99 = _latency(exports)
        size = sum(f.stat().st_size for path in exports for f in Path(path).rglob("*") if f.is_file())
        shutil.rmtree(work, ignore_errors=True)
        runs.append({"seed": seed, "scores": scores, "examples_per_second": float(np.mean(speeds)),
                     "serving_p50_ms": p50, "serving_p99_ms": p99, "savedmodel_mb": size / 2 ** 20})
        print(f"{name}, seed {seed}: {json.dumps(runs[-1])}", flush=True)
    return {"runs": runs}


def _count(files: list[str]) -> int:
    """The records in gzipped TFRecord ``files``."""
    import tensorflow as tf

    return sum(1 for _ in tf.data.TFRecordDataset(files, compression_type="GZIP"))


def _cell(values: list[float], digits: int = 4) -> str:
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{np.mean(values):.{digits}f} ± {np.std(values):.{digits}f}"


def table(results: dict, limits: dict, seeds: list[int]) -> str:
    lines = ["| variant | " + " | ".join(f"{head} {metric}" for head, metric in HEADS.items())
             + " | train examples/s | batch-1 p50 / p99, 30 tokens | SavedModel |",
             "|---|" + "---|" * (len(HEADS) + 3),
             "| truth's best achievable (same test split) | "
             + " | ".join(f"{limits[LIMIT_KEYS[h]]:.4f}" for h in HEADS) + " | | | |"]
    for name, result in results.items():
        runs = result["runs"]
        cells = [_cell([r["scores"][head] for r in runs]) for head in HEADS]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {np.mean([r['examples_per_second'] for r in runs]):,.0f}"
                     f" | {np.median([r['serving_p50_ms'] for r in runs]):.2f} / "
                     f"{np.median([r['serving_p99_ms'] for r in runs]):.2f} ms"
                     f" | {np.mean([r['savedmodel_mb'] for r in runs]):.1f} MB |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--work", default="/tmp/mtl-assistant-bench")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--latency", action="store_true",
                        help="only the latency of each encoder, alone on the machine (assistant-latency.md)")
    parser.add_argument("--span", type=int, default=SPAN, help="the bundled span whose test split scores the heads")
    parser.add_argument("--train-spans", type=int, default=1,
                        help="train on the newest N spans up to --span (config's data.train_spans)")
    parser.add_argument("--output", default="assistant", help="the tables' file name in benchmarks/results/")
    args = parser.parse_args(argv)
    os.makedirs(args.work, exist_ok=True)
    paths = prepare(args.work, span=args.span, train_spans=args.train_spans)
    if args.latency:
        text = (f"# The assistant's batch-1 latency per encoder ({platform.machine()}, {os.cpu_count()} cores)\n\n"
                "`benchmarks/assistant.py --latency`: the exported model's serving_raw, one 30-token utterance, "
                f"median and p99 of {SERVING_CALLS} calls after 20, nothing else running; untrained weights, "
                "config/assistant.yaml with the encoder changed.\n\n" + latency_table(paths) + "\n\n"
                + measured_line() + "\n")
        (RESULTS / "assistant-latency.md").write_text(text)
        print(text)
        return 0
    cache = os.path.join(args.work, "results.json")
    results = json.load(open(cache)) if os.path.exists(cache) else {}
    for name in args.variants:
        if name not in results or len(results[name]["runs"]) != len(args.seeds):
            results[name] = run_variant(name, args.seeds, args.work, args.span, args.train_spans)
            json.dump(results, open(cache, "w"))
    results = {name: results[name] for name in args.variants}
    pipeline = paths["pipeline"]
    spans = (f"span {args.span}" if args.train_spans == 1
             else f"spans {args.span - args.train_spans + 1} to {args.span} (its test split: span {args.span}'s)")
    text = (f"# The assistant's model: encoders, sharing and single-task models ({platform.machine()}, "
            f"{os.cpu_count()} cores)\n\n`benchmarks/assistant.py --span {args.span} --train-spans "
            f"{args.train_spans}`: `config/assistant.yaml` on {spans} of the bundled assistant logs "
            f"({_count(paths['train']):,} training, {_count(paths['eval']):,} eval and {_count(paths['raw_test']):,} "
            f"test events, hash split), seeds {args.seeds} (mean ± std); epochs chosen on the eval split, each head "
            "scored on the test split by its task's exact metric, the single-task row by one model per head. Rows "
            "that name no sharing read the text with hard sharing (one encoder for every head). `char "
            "n-grams`: `char_ngram_buckets: 20000` (3- to 5-grams, 16 per token), with `token_dropout: 0.2` in "
            "the default. Latency: the exported model's "
            f"serving_raw, batch 1, {SERVING_CALLS} calls.\n\n"
            + table(results, paths["limits"], args.seeds)
            + f"\n\nThe pipeline run it trains on (`mtl run --config config/assistant.yaml --span {args.span}`): "
            f"{'BLESSED' if pipeline['blessed'] else 'NOT BLESSED'} in {pipeline['wall_seconds']:.0f} s; "
            + ", ".join(f"{component} {seconds:.1f} s" for component, seconds in pipeline["seconds"].items())
            + ".\n\n" + measured_line() + "\n")
    (RESULTS / f"{args.output}.md").write_text(text)
    (RESULTS / f"{args.output}.json").write_text(json.dumps({"paths": paths, "results": results}, indent=1,
                                                           default=str))
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
