"""The assistant config at the edges of what real assistant logs bring: many intents with a long tail, many slot
types, a vocabulary of hundreds of thousands of distinct tokens, utterances up to 64 tokens. The bundled generator
(data/assistant.py) has 43 intents, 8 slot types and a few thousand words; this script writes logs of the same
features (text, channel, intent, keywords, sentiment, slots) at the sizes it is given and runs the whole pipeline
on them with `config/assistant.yaml`, its text vocabulary's ``top_k`` and ``frequency_threshold`` set from the
command line, to show that every component runs there and what it costs.

Each utterance: one of ``--intents`` intents (Zipf frequencies) said with one of its own three cue words; 0 to 3
slot values of ``--slot-types`` types (Zipf; a value is 1 or 2 words of its type's 50, tagged B-/I-); a sentiment
cue for 30% of them; filler words drawn from ``--vocabulary`` words (Zipf, exponent ``--zipf``), so that most of
the vocabulary is seen once or never; about 9 tokens in all at the median, a few cut at ``--max-tokens``. Labels
are missing as in the bundled logs: intent on 97% of the events, keywords (the intent's two topics of 32) 40%,
sentiment on the 30% with a cue, slots 60%.

    .venv/bin/python benchmarks/assistant_surface.py [--events 200000] [--intents 500] [--slot-types 200]
        [--vocabulary 1000000] [--zipf 1.0] [--top-k 1000000] [--frequency-threshold 1] [--max-tokens 64]
        [--config config/assistant.yaml] [--work /tmp/mtl-assistant-surface] [--output PATH]

runs `mtl run --config <work>/assistant.yaml` (``--config`` with those vocabulary settings) on one span in a fresh
output folder and writes benchmarks/results/assistant-surface.md: the logs' shape (distinct tokens, the vocabulary
Transform kept), each component's seconds and peak memory, the run's peak memory, the verdict and each head's
metrics on the test split.

    .venv/bin/python benchmarks/assistant_surface.py --trainer [--batches 300] [--repeats 3] [--work ...]

instead times the Trainer's model on that finished run (its config and Transform output in ``--work``): examples/s
of training steps and CPU time per step with the text feature's character n-grams and without them (the token ids
alone), on the same first ``--batches`` training batches held in memory, one-pass epochs alternating, medians of
``--repeats``; writes benchmarks/results/assistant-surface-trainer.md (and .json).

    .venv/bin/python benchmarks/assistant_surface.py --evaluator [--work ...]

runs TFMA alone on that finished run's model and test split, as its Evaluator ran it (no baseline; the blessing
thresholds left out), once per setting of ``EVALUATIONS``, each in a process of its own: seconds, peak memory and
each head's key metric on the overall slice; writes benchmarks/results/assistant-surface-evaluator.md (and .json).
"""

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from pipeline_scaling import component_costs  # noqa: E402  (benchmarks/, beside this script)
from provenance import measured_line, write_results  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
CONFIG = ROOT / "config" / "assistant.yaml"
CHANNELS = (b"app", b"web", b"voice")
SENTIMENTS = {b"negative": b"awful", b"neutral": b"okay", b"positive": b"great"}
TOPICS = 32
VALUES_PER_TYPE = 50


def _zipf(rng, n: int, size: int, exponent: float = 1.0) -> np.ndarray:
    """``size`` draws of 0..n-1 with P(k) proportional to 1 / (k + 1) ** exponent."""
    p = 1.0 / np.arange(1, n + 1) ** exponent
    return rng.choice(n, size=size, p=p / p.sum())


def write_logs(path: Path, events: int, intents: int, slot_types: int, vocabulary: int, max_tokens: int,
               exponent: float, seed: int = 0) -> dict:
    """Writes one span of ``events`` utterances to ``path`` (a gzip TFRecord file); returns the logs' shape."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    intent_of = _zipf(rng, intents, events)
    fillers = iter(_zipf(rng, vocabulary, events * max_tokens, exponent))
    seen, tags_seen = set(), set()
    with tf.io.TFRecordWriter(str(path), options="GZIP") as writer:
        for i, intent in enumerate(intent_of):
            words, tags = [f"cue{intent}x{rng.integers(3)}".encode()], [b"O"]
            for slot in _zipf(rng, slot_types, rng.integers(0, 4)):
                value = rng.integers(VALUES_PER_TYPE)
                span = [f"type{slot}v{value}w{k}".encode() for k in range(1 + value % 2)]
                words += span
                tags += [f"B-type{slot}".encode()] + [f"I-type{slot}".encode()] * (len(span) - 1)
                tags_seen.add(slot)
            sentiment = list(SENTIMENTS)[rng.integers(3)] if rng.random() < 0.3 else None
            if sentiment:
                words, tags = words + [SENTIMENTS[sentiment]], tags + [b"O"]
            target = min(max_tokens, max(len(words), int(rng.lognormal(2.2, 0.7))))
            while len(words) < target:
                at = int(rng.integers(len(words) + 1))
                words.insert(at, f"w{next(fillers)}".encode())
                tags.insert(at, b"O")
            seen.update(words)
            feature = {
                "event_id": [f"e{i:07d}".encode()], "text": [b" ".join(words)],
                "channel": [CHANNELS[rng.integers(3)]],
            }
            if rng.random() < 0.97:
                feature["intent"] = [f"intent{intent}".encode()]
            if rng.random() < 0.4:
                feature["keywords"] = [f"topic{(intent + k) % TOPICS}".encode() for k in (0, 7)]
            if sentiment:
                feature["sentiment"] = [sentiment]
            if rng.random() < 0.6:
                feature["slots"] = tags
            example = tf.train.Example(features=tf.train.Features(feature={
                name: tf.train.Feature(bytes_list=tf.train.BytesList(value=values))
                for name, values in feature.items()}))
            writer.write(example.SerializeToString())
    return {"events": events, "intents": intents, "slot_types": slot_types, "slot_types_seen": len(tags_seen),
            "vocabulary": vocabulary, "distinct_tokens": len(seen), "max_tokens": max_tokens}


def write_config(work: Path, base: Path, top_k: int, frequency_threshold: int) -> Path:
    """The config ``base`` (an assistant config) with its text vocabulary's ``top_k`` and ``frequency_threshold``
    set."""
    import yaml

    config = yaml.safe_load(base.read_text())
    text = next(feature for feature in config["features"] if feature["kind"] == "text")
    text.update(top_k=top_k, frequency_threshold=frequency_threshold)
    path = work / "assistant.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def run_timed(command: list[str], what: str) -> tuple[subprocess.CompletedProcess, float]:
    """``command`` run from the repository under GNU time: (its completed process, its peak resident GiB). Raises
    RuntimeError naming ``what`` with the ends of its output when it fails."""
    child = subprocess.run(["/usr/bin/time", "-f", "peak_kib %M", *command], capture_output=True, text=True,
                           cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if child.returncode:
        raise RuntimeError(f"{what} failed ({child.returncode}):\n{child.stdout[-2000:]}\n{child.stderr[-3000:]}")
    return child, int(re.search(r"peak_kib (\d+)", child.stderr).group(1)) / 2 ** 20


def run_pipeline(work: Path, config: Path) -> dict:
    """`mtl run --config <config>` on ``work/logs`` in a fresh output folder, under GNU time."""
    for name in ("out", "serving"):
        shutil.rmtree(work / name, ignore_errors=True)
    command = [sys.executable, "-m", "pipeline.cli.main", "run", "--config", str(config), "--log-root",
               str(work / "logs"), "--output-dir", str(work / "out"), "--serving-dir", str(work / "serving")]
    started = time.perf_counter()
    child, peak = run_timed(command, "mtl run")
    wall = time.perf_counter() - started
    out = child.stdout
    seconds = dict(re.findall(r"(\w+) ([\d.]+)", re.search(r"Component seconds: (.*)", out).group(1)))
    # Each component's own peak (this process and Beam's workers, resident), from its console line.
    peaks = {name: cost["peak_gib"] for name, cost in component_costs(out).items()}
    overall = {}
    for head, header, row in re.findall(r"### (\w+)\n(\|.*\|)\n\|[-|]+\|\n(\| overall .*\|)", out):
        names, values = [c.strip() for c in header.split("|")[2:-1]], [c.strip() for c in row.split("|")[2:-1]]
        overall[head] = dict(zip(names, values, strict=True))
    return {"wall_seconds": wall, "components": {k: float(v) for k, v in seconds.items()}, "peak_gib": peak,
            "component_peak_gib": peaks,
            "blessing": re.search(r"Blessing: (.*)", out).group(1),
            "serving_check": re.search(r"Serving check: (.*)", out).group(1), "overall": overall}


def vocabulary_kept(work: Path) -> int:
    (path,) = (work / "out").rglob("transform_fn/assets/text")
    return sum(1 for _ in open(path, "rb"))


def _shown(path: str) -> str:
    """``path`` relative to the repository when it is inside it."""
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def table(shape: dict, run: dict, kept: int, args) -> str:
    lines = [f"One span of {shape['events']:,} generated utterances: {shape['intents']} intents (Zipf), "
             f"{shape['slot_types']} slot types ({shape['slot_types_seen']} of them tagged), filler words from "
             f"{shape['vocabulary']:,} (Zipf {args.zipf}): {shape['distinct_tokens']:,} distinct tokens, of which "
             f"Transform's vocabulary keeps {kept:,} (`top_k` {args.top_k:,}, seen at least "
             f"{args.frequency_threshold}x); 1 to {shape['max_tokens']} tokens per utterance. `mtl run` with "
             f"`{_shown(args.config)}` and these two vocabulary settings, fresh output folder.", "",
             "| component | seconds | peak memory |", "|---|---|---|"]
    peaks = run["component_peak_gib"]
    lines += [f"| {name} | {seconds:.1f} | {peaks[name]:.2f} GiB |" if name in peaks else
              f"| {name} | {seconds:.1f} | |" for name, seconds in run["components"].items() if seconds >= 0.1]
    lines += [f"| whole run | {run['wall_seconds']:.0f} | {run['peak_gib']:.2f} GiB |", "",
              f"Peak memory {run['peak_gib']:.2f} GiB. Blessing: {run['blessing']}. "
              f"Serving check: {run['serving_check']}.", "",
              "| head | test split, overall |", "|---|---|"]
    for head, values in run["overall"].items():
        shown = {k: v for k, v in values.items() if k not in ("weighted_example_count",) and "interval" not in k}
        lines.append(f"| {head} | " + ", ".join(f"{k} {v}" for k, v in shown.items()) + " |")
    return "\n".join(lines)


def trainer_speeds(work: Path, batches: int, repeats: int) -> dict:
    """Examples/s of training steps of the finished run's model (``work/assistant.yaml``) with its text feature's
    character n-grams and without them (char_ngram_buckets 0, fed the token ids of the same batches), on the first
    ``batches`` training batches of the run's Transform output held in memory."""
    import dataclasses
    import statistics

    from trainer_input import dataset_factory, examples_per_second, in_memory, pipeline_source

    # trainer_input sets up the repository's imports and Keras' environment first
    # isort: split
    import tensorflow_transform as tft

    from config import PipelineConfig
    from models.builder import build_model
    from models.tasks import with_class_counts
    from models.training import example_datasets

    root = work / "out" / "pipeline_root"
    config = PipelineConfig.from_yaml(work / "assistant.yaml")
    config = config.replace(model=dataclasses.replace(config.model, train_steps=None, eval_steps=None))
    # the heads sized by the classes Transform's label vocabularies name, as the Trainer sizes them
    graph = sorted((root / "Transform" / "transform_graph").glob("*"))[-1]
    config = with_class_counts(config, tft.TFTransformOutput(str(graph)))
    files, schema, cardinalities = pipeline_source(config, str(root))
    data, _ = example_datasets(dataset_factory, files, files, schema, config.model)
    with_ngrams, examples = in_memory(data.take(batches))
    text = next(f for f in config.features if f.kind == "text")
    without_ngrams = with_ngrams.map(lambda batch: {**batch, text.name: batch[text.name][:, :text.max_tokens]})
    plain = config.replace(features=tuple(dataclasses.replace(f, char_ngram_buckets=0) if f is text else f
                                          for f in config.features))
    runs = {"with n-grams": (build_model(config, cardinalities), with_ngrams),
            "without n-grams": (build_model(plain, cardinalities), without_ngrams)}
    for model, dataset in runs.values():
        examples_per_second(model, dataset, examples)  # warm-up: tracing
    speeds, cpu_ms = {name: [] for name in runs}, {name: [] for name in runs}
    for _ in range(repeats):
        for name, (model, dataset) in runs.items():
            cpu = time.process_time()
            speeds[name].append(examples_per_second(model, dataset, examples))
            cpu_ms[name].append((time.process_time() - cpu) * 1000 * config.model.batch_size / examples)
    used = [int((batch[text.name].numpy()[:, :text.max_tokens] > 0).sum(axis=1).max()) for batch in with_ngrams]
    return {"examples": examples, "batch_size": config.model.batch_size, "token_rows": cardinalities[text.name],
            "ngram_rows": text.char_ngram_buckets + 1, "ngrams_per_token": text.char_ngrams_per_token,
            "median_longest_tokens": statistics.median(used),
            "speeds": {name: statistics.median(values) for name, values in speeds.items()}, "runs": speeds,
            "cpu_ms_per_step": {name: statistics.median(values) for name, values in cpu_ms.items()},
            "cpu_ms_runs": cpu_ms}


def trainer_table(result: dict, repeats: int) -> str:
    speeds, cpu = result["speeds"], result["cpu_ms_per_step"]
    return "\n".join([
        f"`benchmarks/assistant_surface.py --trainer`: the finished surface run's model trained on the first "
        f"{result['examples']:,} examples of its own Transform output (batch {result['batch_size']}, held in "
        f"memory; a batch's longest utterance has {result['median_longest_tokens']:.0f} tokens at the median), "
        f"with the text feature's character n-grams ({result['ngrams_per_token']} per token, a table of "
        f"{result['ngram_rows']:,} rows beside the {result['token_rows']:,} token rows) and without them; "
        f"examples/s of training steps and the process's CPU time (both cores) per step, medians of {repeats} "
        "one-pass epochs, the two models alternating. This machine's epochs take whole multiples of a period "
        "(examples/s of one model snap between values such as 1,875, 3,750 and 5,500); CPU time per step does "
        "not.", "",
        "| model | examples/s | x without n-grams | CPU ms per step | x without n-grams |", "|---|---|---|---|---|",
        *(f"| {name} | {speed:,.0f} | {speed / speeds['without n-grams']:.2f} | {cpu[name]:.1f} | "
          f"{cpu[name] / cpu['without n-grams']:.2f} |" for name, speed in speeds.items())])


# What each TFMA-alone run changes in the config's evaluation section.
EVALUATIONS = {
    "as configured (jackknife intervals, every slice)": {},
    "overall slice only": {"slices": ()},
    "no confidence intervals": {"confidence_intervals": False},
}


def evaluate_alone(work: Path, setting: str) -> dict:
    """TFMA on the finished run's model and test split with the config's EvalConfig, the evaluation section changed
    as ``EVALUATIONS[setting]`` says: seconds, and each head's key metric on the overall slice."""
    import dataclasses
    import tempfile

    from config import PipelineConfig  # first: it sets up Keras' environment before TensorFlow loads

    # isort: split
    import tensorflow_model_analysis as tfma

    from models.evaluation.eval_config import make_eval_config
    from models.tasks import make_tasks

    root = work / "out" / "pipeline_root"
    config = PipelineConfig.from_yaml(work / "assistant.yaml")
    config = config.replace(evaluation=dataclasses.replace(config.evaluation, **EVALUATIONS[setting]))
    eval_config = make_eval_config(config)
    for spec in eval_config.metrics_specs:  # a first run has no baseline to judge a change against
        for metric in spec.metrics:
            metric.ClearField("per_slice_thresholds")
    (model,) = root.glob("Trainer/model/*/Format-Serving")
    (examples,) = root.glob("ImportExampleGen/examples/*")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="surface-evaluator-") as output:
        result = tfma.run_model_analysis(
            eval_shared_model=tfma.default_eval_shared_model(str(model), eval_config=eval_config),
            eval_config=eval_config, data_location=str(examples / "Split-test" / "*"), output_path=output)
    seconds = time.perf_counter() - started
    overall = next(metrics for key, metrics in result.slicing_metrics if key == ())
    scores = {}
    for task in make_tasks(config.tasks):
        values = overall[task.name][""]
        name = next(k for k in values if k.lower().replace("_", "") == task.key_metric.lower())
        value = values[name]  # with intervals, the value and its bounds
        scores[task.name] = {name: value["boundedValue"]["value"] if "boundedValue" in value else value["doubleValue"]}
    return {"setting": setting, "seconds": seconds, "overall": scores}


def evaluator_costs(work: Path) -> list[dict]:
    """evaluate_alone for every setting, each in a child process under GNU time (its peak resident memory)."""
    rows = []
    for setting in EVALUATIONS:
        child, peak = run_timed([sys.executable, __file__, "--work", str(work), "--evaluate-one", setting],
                                f"TFMA ({setting})")
        row = {**json.loads(child.stdout.strip().splitlines()[-1]), "peak_gib": peak}
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def evaluator_table(rows: list[dict]) -> str:
    heads = list(rows[0]["overall"])
    lines = ["`benchmarks/assistant_surface.py --evaluator`: TFMA alone on the finished surface run's model and test "
             "split, with the config's EvalConfig as its first Evaluator ran it (no baseline; the blessing "
             "thresholds left out), each setting in a process of its own.", "",
             "| setting | seconds | peak memory | " + " | ".join(
                 f"{head}: {next(iter(rows[0]['overall'][head]))}" for head in heads) + " |",
             "|---|---|---|" + "---|" * len(heads)]
    for row in rows:
        values = " | ".join(f"{next(iter(row['overall'][head].values())):.4f}" for head in heads)
        lines.append(f"| {row['setting']} | {row['seconds']:.1f} | {row['peak_gib']:.2f} GiB | {values} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--intents", type=int, default=500)
    parser.add_argument("--slot-types", type=int, default=200)
    parser.add_argument("--vocabulary", type=int, default=1_000_000)
    parser.add_argument("--zipf", type=float, default=1.0)
    parser.add_argument("--top-k", type=int, default=1_000_000)
    parser.add_argument("--frequency-threshold", type=int, default=1)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--config", default=str(CONFIG), help="the assistant config to start from")
    parser.add_argument("--work", default="/tmp/mtl-assistant-surface")
    parser.add_argument("--output", default=str(RESULTS / "assistant-surface.md"))
    parser.add_argument("--trainer", action="store_true", help="time the finished run's model instead")
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--evaluator", action="store_true", help="TFMA alone on the finished run instead")
    parser.add_argument("--evaluate-one", choices=list(EVALUATIONS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    work = Path(args.work)
    if args.evaluate_one:
        print(json.dumps(evaluate_alone(work, args.evaluate_one)))
        return 0
    if args.evaluator:
        rows = evaluator_costs(work)
        write_results(str(RESULTS / "assistant-surface-evaluator.md"),
                      f"The assistant's Evaluator at the edges of its surface ({platform.machine()}, "
                      f"{os.cpu_count()} cores)", evaluator_table(rows), rows)
        return 0
    if args.trainer:
        result = trainer_speeds(work, args.batches, args.repeats)
        write_results(str(RESULTS / "assistant-surface-trainer.md"),
                      f"The assistant's Trainer at the edges of its surface ({platform.machine()}, "
                      f"{os.cpu_count()} cores)", trainer_table(result, args.repeats), result)
        return 0
    (work / "logs" / "span-1").mkdir(parents=True, exist_ok=True)
    shape = write_logs(work / "logs" / "span-1" / "events-00000-of-00001.tfrecord.gz", args.events, args.intents,
                       args.slot_types, args.vocabulary, args.max_tokens, args.zipf)
    run = run_pipeline(work, write_config(work, Path(args.config), args.top_k, args.frequency_threshold))
    kept = vocabulary_kept(work)
    (work / "result.json").write_text(json.dumps({"shape": shape, "run": run, "kept": kept}, indent=1))
    text = (f"# The assistant at the edges of its surface ({platform.machine()}, {os.cpu_count()} cores)\n\n"
            + table(shape, run, kept, args) + "\n\n" + measured_line() + "\n")
    Path(args.output).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
