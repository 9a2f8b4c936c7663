"""Every fault a user can cause, tried on a blessed baseline as a hostile but realistic user would: the exit code,
the message on the console, seconds to fail, whether anything was pushed and whether the served model still loads
and answers.

One baseline `mtl run` on small generated logs (blessed and pushed), then each fault runs `mtl run` (or
`mtl predict` on the served model, or `mtl submit-kubeflow` against the tests' fake KFP server) as a subprocess on
the same output and serving folders; the environment's faults (a damaged or locked metadata store, a full disk: a
3 MB tmpfs, root only) are made for their case and undone after it. Last, the next good span must run as usual.
Writes benchmarks/results/fault-cases.md and prints it.

    .venv/bin/python benchmarks/fault_cases.py [--events 10000] [--work /tmp/mtl-faults]
"""

import argparse
import contextlib
import dataclasses
import gzip
import json
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
# The cases run in a user's environment: without this script's own TF_CPP_MIN_LOG_LEVEL.
USER_ENV = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The end-to-end test's world: 300 users and 150 items, so that 10,000 events are enough to be blessed.
GOOD_WORLD = LogSpec(num_events=10_000, num_users=300, num_items=150, seed=7)


@dataclasses.dataclass
class Case:
    name: str
    logs: str | None = None  # a log root; None: the good one
    config: dict | None = None  # changes to the default config's YAML data; None: the default config
    args: tuple[str, ...] = ()
    command: tuple[str, ...] = ()  # another mtl command line than `mtl run` on the logs (its own arguments)
    around: object = None  # around(work): a context manager the command runs inside, yielding more arguments
    expect_ok: bool = False  # a span the gate must let through (exit 0)


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
    _write(os.path.join(root, "span-1", "test"), evaluation[len(evaluation) // 2:])
    for example in evaluation:
        example.features.feature.pop("conversion", None)
    _write(os.path.join(root, "span-1", "eval"), evaluation[:len(evaluation) // 2])
    return root


MARKUP = (b"<script>alert(1)</script>", b"<img src=x onerror=alert(1)>")


def _markup(example):
    """HTML that a viewer would run if it came through raw, as the event's device and item_category."""
    example.features.feature["device"].bytes_list.value[:] = [MARKUP[0]]
    example.features.feature["item_category"].bytes_list.value[:] = [MARKUP[1]]


def _good_row(good) -> dict:
    """Span 1's first event as the JSON object of raw features `mtl predict --jsonl` takes."""
    example = _examples(os.path.join(good, "span-1"))[0]
    row = {}
    for name in ("user_id", "item_id", "item_category", "device", "country", "hour", "user_activity",
                 "item_popularity", "price"):
        feature = example.features.feature[name]
        value = getattr(feature, feature.WhichOneof("kind")).value[0]
        row[name] = value.decode() if isinstance(value, bytes) else value
    return row


def _same_world_span(work, good, events):
    """A log root with the good span 1 and a new span 2 of ``events`` events from the same world."""
    root = os.path.join(work, "cases", f"same_world_{events}")
    shutil.copytree(good, root)
    generate_logs(dataclasses.replace(GOOD_WORLD, num_events=events), root, [2])
    return root


def _jsonl(work, name, lines):
    path = os.path.join(work, "cases", f"{name}.jsonl")
    with open(path, "w") as f:
        f.write("".join(line + "\n" for line in lines))
    return path


def _records(work, good, name, change):
    """A TFRecord file of span 1's first event changed by ``change`` (bytes -> list of records)."""
    import tensorflow as tf

    path = os.path.join(work, "cases", f"{name}.tfrecord")
    first = _examples(os.path.join(good, "span-1"))[0]
    with tf.io.TFRecordWriter(path) as writer:
        for record in change(first):
            writer.write(record)
    return path


def _without_price(example):
    example.features.feature.pop("price")
    return [example.SerializeToString()]


@contextlib.contextmanager
def _locked_store(work):
    """The output folder's metadata store held in an exclusive sqlite transaction by another process."""
    holder = subprocess.Popen([sys.executable, "-c", "import sqlite3, sys, time; c = sqlite3.connect(sys.argv[1]); "
                               "c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); time.sleep(600)",
                               os.path.join(work, "outputs", "metadata.db")], stdout=subprocess.PIPE, text=True)
    holder.stdout.readline()
    try:
        yield []
    finally:
        holder.kill()


@contextlib.contextmanager
def _damaged_store(work):
    """The metadata store overwritten with random bytes for the case, restored after it."""
    path = os.path.join(work, "outputs", "metadata.db")
    shutil.copy(path, path + ".kept")
    with open(path, "wb") as f:
        f.write(os.urandom(8192))
    try:
        yield []
    finally:
        os.replace(path + ".kept", path)


@contextlib.contextmanager
def _full_disk(work):
    """A 3 MB tmpfs as the output folder (root only; the case is skipped where mounting is not allowed)."""
    folder = os.path.join(work, "cases", "full")
    os.makedirs(folder, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3M", "tmpfs", folder], capture_output=True)
    if mounted.returncode:
        raise Skipped(f"cannot mount a small tmpfs here ({mounted.stderr.decode().strip()})")
    try:
        yield []
    finally:
        subprocess.run(["umount", folder], capture_output=True)


class Skipped(Exception):
    """A case this machine cannot set up."""


def _kubeflow(status, path, message):
    """The tests' fake KFP API server, answering ``path`` with ``status``; yields submit-kubeflow's arguments."""
    @contextlib.contextmanager
    def server(work):
        sys.path.insert(0, os.path.join(ROOT, "tests"))
        from fake_kfp_server import API, FakeKfpServer

        with FakeKfpServer() as fake:
            fake.fail[("GET" if path == "/healthz" else "POST", f"{API}{path}")] = (status, message)
            yield ["--host", fake.url, "--output", os.path.join(work, "cases", "kubeflow_pipeline.json")]
    return server


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
        Case("every conversion label the missing value -1",
             _span2(work, good, "conversion_missing", _set("conversion", "int64_list", -1))),
        Case("the same span again", good),
        Case("same world, new span of 3,000 events", _same_world_span(work, good, 3_000), expect_ok=True),
        Case("markup in device and item_category values (a new output folder: its first span)",
             _span2(work, good, "markup", _markup, every=50), expect_ok=True,
             args=("--output-dir", os.path.join(work, "cases", "markup-outputs"),
                   "--serving-dir", os.path.join(work, "cases", "markup-serving"))),
        Case("task named ../../../../escape",
             config=config(lambda d: d["tasks"][0].update(name="../../../../escape"))),
        Case("predict: a list where a number belongs", command=(
            "predict", "--jsonl", _jsonl(work, "list", [json.dumps({**_good_row(good), "price": [19.9, 5.0]})]))),
        Case("predict: extra keys, a label among them", command=(
            "predict", "--jsonl", _jsonl(work, "extra", [json.dumps({**_good_row(good), "click": 1})])),
             expect_ok=True),
        Case("predict: a line that is 5", command=("predict", "--jsonl", _jsonl(work, "five", ["5"]))),
        Case("predict: a line that is null", command=("predict", "--jsonl", _jsonl(work, "null", ["null"]))),
        Case("predict: a line that is an array", command=("predict", "--jsonl", _jsonl(work, "array", ["[1, 2]"]))),
        Case("predict: an example lacking price", command=(
            "predict", "--tfrecord", _records(work, good, "no_price", _without_price))),
        Case("predict: garbage bytes", command=(
            "predict", "--tfrecord", _records(work, good, "garbage", lambda e: [b"\xff\xfe garbage"]))),
        Case("Kubeflow: HTTP 500 from the server", command=("submit-kubeflow",),
             around=_kubeflow(500, "/runs", "internal error: database unavailable")),
        Case("Kubeflow: HTTP 401 on /healthz", command=("submit-kubeflow",), around=_kubeflow(401, "/healthz", "no")),
        Case("metadata store damaged", around=_damaged_store),
        Case("metadata store locked by another process", _span2(work, good, "locked", _set("hour", "int64_list", 3),
                                                                 every=1000), around=_locked_store),
        Case("disk full", args=("--output-dir", os.path.join(work, "cases", "full", "outputs")), around=_full_disk),
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
    serving = os.path.join(work, "serving", "recs-multitask")
    if case.command:
        command = [MTL, *case.command]
        if case.command[0] == "predict":
            command += ["--model", os.path.join(serving, max(os.listdir(serving), key=int))]
    else:
        command = [MTL, "run", "--log-root", case.logs or good, "--output-dir", os.path.join(work, "outputs"),
                   "--serving-dir", os.path.join(work, "serving"), *case.args]
    if case.config is not None:
        path = os.path.join(work, "cases", f"{abs(hash(case.name))}.yaml")
        with open(path, "w") as f:
            f.write(case.config if isinstance(case.config, str) else yaml.safe_dump(case.config))
        command += ["--config", path]
    before = sorted(os.listdir(serving))
    start = time.perf_counter()
    try:
        with case.around(work) if case.around else contextlib.nullcontext([]) as more:
            child = subprocess.run(command + more, capture_output=True, text=True, env=USER_ENV)
    except Skipped as e:
        return {"case": case.name, "skipped": str(e)}
    seconds = time.perf_counter() - start
    lines = [line for line in child.stderr.strip().splitlines() if line.startswith("mtl ")]
    output_dir = case.args[case.args.index("--output-dir") + 1] if "--output-dir" in case.args else None
    raw_markup = any(m.decode() in text for m in MARKUP
                     for text in (child.stdout, _report_md(output_dir or os.path.join(work, "outputs"))))
    return {"case": case.name, "exit": child.returncode, "message": lines[-1] if lines else child.stderr[-300:],
            "console_lines": len(lines), "stderr_lines": len(child.stderr.strip().splitlines()),
            "seconds": seconds, "pushed": sorted(os.listdir(serving)) != before,
            "served": _served_answers(serving, good), "expected": (child.returncode == 0) == case.expect_ok,
            "raw_markup": raw_markup}


def _report_md(output_dir) -> str:
    path = os.path.join(output_dir, "report.md")
    return open(path).read() if os.path.exists(path) else ""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--work", default="/tmp/mtl-faults")
    parser.add_argument("--output", default=os.path.join(os.path.dirname(__file__), "results", "fault-cases.md"))
    args = parser.parse_args(argv)
    shutil.rmtree(args.work, ignore_errors=True)
    good = os.path.join(args.work, "logs")
    generate_logs(dataclasses.replace(GOOD_WORLD, num_events=args.events), good, [1])
    os.makedirs(os.path.join(args.work, "cases"))
    open(os.path.join(args.work, "cases", "a_file"), "w").close()
    start = time.perf_counter()
    baseline = subprocess.run([MTL, "run", "--log-root", good, "--output-dir", os.path.join(args.work, "outputs"),
                               "--serving-dir", os.path.join(args.work, "serving")], capture_output=True, text=True)
    if baseline.returncode or "Blessing: BLESSED" not in baseline.stdout:
        raise SystemExit(f"the baseline run was not blessed:\n{baseline.stdout[-2000:]}\n{baseline.stderr[-2000:]}")
    baseline_seconds = time.perf_counter() - start
    rows = [run_case(case, args.work, good) for case in cases(args.work, good)]
    # After every fault: the next good span runs as usual (blessed against the last blessed model and pushed).
    after = os.path.join(args.work, "cases", "after")
    shutil.copytree(good, after)
    generate_logs(dataclasses.replace(GOOD_WORLD, num_events=args.events), after, [2])
    final = subprocess.run([MTL, "run", "--log-root", after, "--output-dir", os.path.join(args.work, "outputs"),
                            "--serving-dir", os.path.join(args.work, "serving")], capture_output=True, text=True)
    next_fine = final.returncode == 0 and "Pushed model: " in final.stdout and "nothing pushed" not in final.stdout
    lines = [f"Baseline: `mtl run` on {args.events:,} generated events (300 users, 150 items), blessed and pushed in "
             f"{baseline_seconds:.0f} s; then each fault on the same output and serving folders (2-core machine; "
             "seconds include the start-up of Python and TensorFlow, about 5 s). *As required*: exit 0 for the "
             "cases that must pass (a same-world span, extra keys), exit 2 for every other. *Raw markup*: the "
             "case's console output or report.md holds a log value's HTML unescaped.", "",
             "| case | exit | as required? | lines from mtl (all stderr lines) | message | seconds | pushed? | "
             "served model answers? | raw markup? |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        if "skipped" in row:
            lines.append(f"| {row['case']} | skipped: {row['skipped']} | | | | | | | |")
            continue
        message = row["message"].replace("|", "\\|").replace(args.work, "<work>")
        required = "yes" if row["expected"] and (row["exit"] in (0, 2)) else "NO"
        lines.append(f"| {row['case']} | {row['exit']} | {required} | {row['console_lines']} ({row['stderr_lines']}) "
                     f"| {message} | {row['seconds']:.1f} | {'yes' if row['pushed'] else 'no'} | "
                     f"{'yes' if row['served'] else 'NO'} | {'YES' if row['raw_markup'] else 'no'} |")
    lines += ["", f"After every case, the next good span (span 2, {args.events:,} events of the same world) "
              + ("ran, was blessed and pushed." if next_fine else f"did NOT run as usual: {final.stderr[-500:]}")]
    text = "\n".join(lines)
    with open(args.output, "w") as f:
        f.write("# Fault cases\n\n" + text + "\n\n" + measured_line() + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
