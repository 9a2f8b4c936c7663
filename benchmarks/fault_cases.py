"""Every fault a user can cause, tried on a blessed baseline as a hostile but realistic user would: the exit code,
the message on the console, seconds to fail, whether anything was pushed and whether the served model still loads
and answers.

One baseline `mtl run` on small generated logs (blessed and pushed), then each fault runs `mtl run` (or
`mtl schema accept`) as a subprocess on the same output and serving folders. Writes
benchmarks/results/fault-cases.md and prints it.

    .venv/bin/python benchmarks/fault_cases.py [--events 10000] [--work /tmp/mtl-faults]
"""

import argparse
import dataclasses
import gzip
import os
import shutil
import subprocess
import sys
import time

from provenance import measured_line  # noqa: E402  (benchmarks/, beside this script)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import yaml  # noqa: E402

from config import DEFAULT_CONFIG  # noqa: E402
from data.world import LogSpec  # noqa: E402
from data.writer import EVENTS_FILE, generate_logs  # noqa: E402

MTL = os.path.join(os.path.dirname(sys.executable), "mtl")


@dataclasses.dataclass
class Case:
    name: str
    logs: str | None = None  # a log root; None: the good one
    config: dict | None = None  # changes to the default config's YAML data; None: the default config
    args: tuple[str, ...] = ()


def _examples(span_dir):
    import tensorflow as tf

    return [tf.train.Example.FromString(r.numpy()) for r in
            tf.data.TFRecordDataset(os.path.join(span_dir, EVENTS_FILE), compression_type="GZIP")]


def _write(span_dir, examples):
    import tensorflow as tf

    os.makedirs(span_dir, exist_ok=True)
    with tf.io.TFRecordWriter(os.path.join(span_dir, EVENTS_FILE), "GZIP") as writer:
        for example in examples:
            writer.write(example.SerializeToString())


def _span2(work, good, name, mutate=None, every=1):
    """A log root with the good span 1 and a span 2 whose events are span 1's with ``mutate`` applied to every
    ``every``-th one (no span-2 files at all when ``mutate`` is None)."""
    root = os.path.join(work, "cases", name)
    shutil.copytree(good, root)
    os.makedirs(os.path.join(root, "span-2"))
    if mutate:
        examples = _examples(os.path.join(good, "span-1"))
        for example in examples[::every]:
            mutate(example)
        _write(os.path.join(root, "span-2"), examples)
    return root


def _damaged(work, good, name, damage):
    root = os.path.join(work, "cases", name)
    shutil.copytree(good, root)
    path = os.path.join(root, "span-1", EVENTS_FILE)
    data = open(path, "rb").read()
    open(path, "wb").write(damage(data))
    return root


def _set(name, kind, value):
    def mutate(example):
        getattr(example.features.feature[name], kind).value[:] = [value]
    return mutate


def _drop(name):
    def mutate(example):
        example.features.feature.pop(name, None)
    return mutate


def _price_as_text(example):
    value = example.features.feature["price"].float_list.value[0]
    example.features.feature["price"].bytes_list.value[:] = [str(value).encode()]


def _nan_watch_time(example):
    if "watch_time" in example.features.feature:
        example.features.feature["watch_time"].float_list.value[:] = [float("nan")]


def _presplit_without_eval_conversions(work, good):
    root = os.path.join(work, "cases", "presplit")
    examples = _examples(os.path.join(good, "span-1"))
    _write(os.path.join(root, "span-1", "train"), examples[: len(examples) * 4 // 5])
    evaluation = examples[len(examples) * 4 // 5:]
    for example in evaluation:
        example.features.feature.pop("conversion", None)
    _write(os.path.join(root, "span-1", "eval"), evaluation)
    return root


def cases(work, good) -> list[Case]:
    default = yaml.safe_load(open(DEFAULT_CONFIG))

    def config(change):
        data = yaml.safe_load(yaml.safe_dump(default))
        change(data)
        return data

    return [
        Case("empty latest span", _span2(work, good, "empty")),
        Case("binary click of 2", _span2(work, good, "click2", _set("click", "int64_list", 2), every=10)),
        Case("missing column user_activity", _span2(work, good, "no_activity", _drop("user_activity"))),
        Case("float column price written as text", _span2(work, good, "price_text", _price_as_text)),
        Case("NaN watch_time labels", _span2(work, good, "nan_watch", _nan_watch_time, every=15)),
        Case("inf in price", _span2(work, good, "inf_price", _set("price", "float_list", float("inf")), every=50)),
        Case("multiclass interest of 7", _span2(work, good, "interest7", _set("interest", "int64_list", 7), every=40)),
        Case("drift: every event on mobile", _span2(work, good, "drift", _set("device", "bytes_list", b"mobile"))),
        Case("truncated .tfrecord.gz", _damaged(work, good, "truncated", lambda d: d[: len(d) // 2])),
        Case("file that is not gzip", _damaged(work, good, "not_gzip", gzip.decompress)),
        Case("missing log root", os.path.join(work, "cases", "nowhere")),
        Case("eval split without any conversion label", _presplit_without_eval_conversions(work, good),
             config(lambda d: d["data"].update(presplit=True))),
        Case("label_key absent from the logs", config=config(lambda d: d["tasks"][1].update(label_key="purchase"))),
        Case("slice feature absent from the logs",
             config=config(lambda d: (d["features"].append({"name": "os", "kind": "vocabulary"}),
                                      d["evaluation"].update(slices=["os"])))),
        Case('batch_size: "big"', config=config(lambda d: d["model"].update(batch_size="big"))),
        Case('learning_rate: "fast"', config=config(lambda d: d["model"].update(learning_rate="fast"))),
        Case('bound: "high"', config=config(lambda d: d["tasks"][0]["blessing"].update(bound="high"))),
        Case("batch_size: 0", config=config(lambda d: d["model"].update(batch_size=0))),
        Case("malformed YAML", config="name: [unclosed\n"),
        Case("serving dir is a file", args=("--serving-dir", os.path.join(work, "cases", "a_file"))),
    ]


def _served_answers(serving, good) -> bool:
    """The newest served version loads and scores one request with finite numbers."""
    import numpy as np
    import tensorflow as tf

    newest = max(os.listdir(serving), key=int)
    serve = tf.saved_model.load(os.path.join(serving, newest)).signatures["serving_default"]
    example = _examples(os.path.join(good, "span-1"))[0]
    outputs = serve(examples=tf.constant([example.SerializeToString()]))
    return all(np.all(np.isfinite(v.numpy())) for v in outputs.values())


def run_case(case: Case, work: str, good: str) -> dict:
    command = [MTL, "run", "--log-root", case.logs or good, "--output-dir", os.path.join(work, "outputs"),
               "--serving-dir", os.path.join(work, "serving"), *case.args]
    if case.config is not None:
        path = os.path.join(work, "cases", f"{abs(hash(case.name))}.yaml")
        with open(path, "w") as f:
            f.write(case.config if isinstance(case.config, str) else yaml.safe_dump(case.config))
        command += ["--config", path]
    serving = os.path.join(work, "serving", "recs-multitask")
    before = sorted(os.listdir(serving))
    start = time.perf_counter()
    child = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    lines = [line for line in child.stderr.strip().splitlines() if line.startswith("mtl ")]
    return {"case": case.name, "exit": child.returncode, "message": lines[-1] if lines else child.stderr[-300:],
            "console_lines": len(lines), "stderr_lines": len(child.stderr.strip().splitlines()),
            "seconds": seconds, "pushed": sorted(os.listdir(serving)) != before,
            "served": _served_answers(serving, good)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--work", default="/tmp/mtl-faults")
    parser.add_argument("--output", default=os.path.join(os.path.dirname(__file__), "results", "fault-cases.md"))
    args = parser.parse_args(argv)
    shutil.rmtree(args.work, ignore_errors=True)
    good = os.path.join(args.work, "logs")
    # The end-to-end test's world: 300 users and 150 items, so that 10,000 events are enough to be blessed.
    generate_logs(LogSpec(num_events=args.events, num_users=300, num_items=150, seed=7), good, [1])
    os.makedirs(os.path.join(args.work, "cases"))
    open(os.path.join(args.work, "cases", "a_file"), "w").close()
    start = time.perf_counter()
    baseline = subprocess.run([MTL, "run", "--log-root", good, "--output-dir", os.path.join(args.work, "outputs"),
                               "--serving-dir", os.path.join(args.work, "serving")], capture_output=True, text=True)
    if baseline.returncode or "Blessing: BLESSED" not in baseline.stdout:
        raise SystemExit(f"the baseline run was not blessed:\n{baseline.stdout[-2000:]}\n{baseline.stderr[-2000:]}")
    baseline_seconds = time.perf_counter() - start
    rows = [run_case(case, args.work, good) for case in cases(args.work, good)]
    lines = [f"Baseline: `mtl run` on {args.events:,} generated events (300 users, 150 items), blessed and pushed in "
             f"{baseline_seconds:.0f} s; then each fault on the same output and serving folders (2-core machine; "
             "seconds include the start-up of Python and TensorFlow, about 5 s).", "",
             "| case | exit | lines from mtl (all stderr lines) | message | seconds to fail | pushed? | "
             "served model answers? |",
             "|---|---|---|---|---|---|---|"]
    for row in rows:
        message = row["message"].replace("|", "\\|").replace(args.work, "<work>")
        lines.append(f"| {row['case']} | {row['exit']} | {row['console_lines']} ({row['stderr_lines']}) | {message} | "
                     f"{row['seconds']:.1f} | "
                     f"{'yes' if row['pushed'] else 'no'} | {'yes' if row['served'] else 'NO'} |")
    text = "\n".join(lines)
    with open(args.output, "w") as f:
        f.write("# Fault cases\n\n" + text + "\n\n" + measured_line() + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
