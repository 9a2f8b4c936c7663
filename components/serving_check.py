"""ServingCheck: loads a blessed candidate in a fresh process and sends it requests built from test events before
the Pusher may ship it; builds the TF Serving warm-up records and judges the TFLite files' parity on the way.

TFX's InfraValidator does this with a TF Serving binary in Docker or Kubernetes; this check needs neither. A child
Python process loads the SavedModel as a model server does, from its folder and nothing else, and answers
``serving.check_events`` test events (the Evaluator's) through ``serving_default`` (serialized tf.Examples) and
``serving_raw`` (one named tensor per raw feature), then ``serving.latency_requests`` batch-1 requests through
each. The check passes only when the child loads the model and answers every request within ``serving.timeout_s``,
every score is finite, the two signatures agree within ``serving.tolerance`` (max absolute difference, every
output), and each signature's batch-1 p99 latency is within ``serving.latency_slo_ms``. A candidate that fails is
not pushed; the artifact's ``reason`` says which check and by how much.

The TFLite files the Trainer wrote (``models.lite``) are run on the same events: a file ships only when each
head's key metric is within ``serving.tflite_tolerance`` (float32) or ``serving.quantized_tolerance``
(quantized) of the SavedModel's. A TFLite file that fails, or a model that did not convert, does not stop the
push of the SavedModel.

Output: an InfraBlessing artifact (custom property ``blessed``, as TFX's Pusher reads it, and ``reason``) holding
``check.json`` (what was measured), ``tf_serving_warmup_requests`` (PredictionLog records for both signatures,
which the Pusher puts into ``assets.extra/``) and ``tflite/`` (the files that passed parity).
"""

import json
import logging
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2
from tfx import v1 as tfx

from components.serving_probe import latencies_ms
from config import TEST, PipelineConfig, ServingConfig, from_custom_config
from models import lite
from models.signatures import RAW_SIGNATURE, SERVING_SIGNATURE
from models.tasks import make_tasks

SERVING_MODEL_DIR = "Format-Serving"  # where the Trainer writes the SavedModel inside its Model artifact
CHECK_FILE = "check.json"
WARMUP_FILE = "tf_serving_warmup_requests"  # the name TF Serving reads in a version's assets.extra/
LITE_DIR = "tflite"
NO_SELECT_OPS = "Select TensorFlow op(s), included in the given model, is(are) not supported by this interpreter"
NO_SELECT_OPS_REASON = "this TensorFlow's TFLite interpreter cannot run Select TF ops"  # TF 2.21 links no Flex
WARMUP_BATCHES = (1, 16)  # one warm-up request per signature and batch size: each size TF Serving compiles for
PROGRESS = logging.getLogger("mtl.progress")


class CheckFailed(Exception):
    """The candidate fails a check; the message is the one line that says which and by how much."""


def test_events(examples_uri: str, limit: int) -> list[bytes]:
    """The first ``limit`` serialized events of an Examples artifact's test split (the Evaluator's)."""
    files = sorted(tf.io.gfile.glob(os.path.join(examples_uri, f"Split-{TEST}", "*")))
    dataset = tf.data.TFRecordDataset(files, compression_type="GZIP").take(limit)
    return [record.numpy() for record in dataset]


def _ask_child(model_dir: str, events: list[bytes], serving: ServingConfig, work: str) -> dict[str, np.ndarray]:
    requests_path = os.path.join(work, "requests.tfrecord")
    with tf.io.TFRecordWriter(requests_path) as writer:
        for event in events:
            writer.write(event)
    answers_path = os.path.join(work, "answers.npz")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "components.serving_probe", model_dir, requests_path, answers_path,
               str(serving.latency_requests)]
    try:
        child = subprocess.run(command, capture_output=True, text=True, timeout=serving.timeout_s, env=env)
    except subprocess.TimeoutExpired:
        raise CheckFailed(f"the model did not load and answer {len(events)} events within serving.timeout_s = "
                          f"{serving.timeout_s:g} s") from None
    if child.returncode != 0:
        lines = [line for line in child.stderr.splitlines() if line.strip()]
        last = lines[-1] if lines else f"exit code {child.returncode}"
        raise CheckFailed(f"a fresh process could not load the model or answer a request: {last[:300]}")
    with np.load(answers_path) as answers:
        return dict(answers)


def judge_answers(answers: dict[str, np.ndarray], serving: ServingConfig, measured: dict) -> None:
    """Raises CheckFailed unless the child's answers (``components.serving_probe``: ``default/<output>``,
    ``raw/<output>``, ``latency/<signature>``) are finite, agree between the signatures and keep the latency SLO;
    adds the differences and latencies to ``measured``."""
    outputs = sorted(key.split("/", 1)[1] for key in answers if key.startswith("default/"))
    for signature in ("default", "raw"):
        for name in outputs:
            values = answers[f"{signature}/{name}"]
            if values.dtype.kind == "f" and not np.isfinite(values).all():
                bad = int((~np.isfinite(values.reshape(len(values), -1))).any(axis=1).sum())
                raise CheckFailed(f"serving_{signature} gives a non-finite '{name}' for {bad} of {len(values)} "
                                  "test events")
    differences = {}
    for name in outputs:
        a, b = answers[f"default/{name}"], answers[f"raw/{name}"]
        if a.dtype.kind == "f":
            differences[name] = float(np.max(np.abs(a - b))) if a.size else 0.0
        elif not np.array_equal(a, b):
            raise CheckFailed(f"serving_default and serving_raw give different '{name}' for the same test events")
    measured["max_signature_difference"] = differences
    worst = max(differences, key=differences.get, default=None)
    if worst is not None and differences[worst] > serving.tolerance:
        raise CheckFailed(f"serving_default and serving_raw differ by {differences[worst]:.3g} on '{worst}' "
                          f"(serving.tolerance = {serving.tolerance:g})")
    for signature in ("default", "raw"):
        times = answers[f"latency/{signature}"]
        p50, p99 = float(np.percentile(times, 50)), float(np.percentile(times, 99))
        measured[f"serving_{signature}_ms"] = {"p50": p50, "p99": p99}
        if p99 > serving.latency_slo_ms:
            raise CheckFailed(f"serving_{signature}'s batch-1 p99 latency is {p99:.1f} ms, over serving.latency_slo_ms "
                              f"= {serving.latency_slo_ms:g} ms ({len(times)} requests)")


def write_warmup_records(events: list[bytes], raw: dict[str, np.ndarray], model_name: str, path: str) -> int:
    """Writes PredictionLog records (one PredictRequest per signature and WARMUP_BATCHES size) to ``path``."""
    count = 0
    with tf.io.TFRecordWriter(path) as writer:
        for size in WARMUP_BATCHES:
            for signature, inputs in ((SERVING_SIGNATURE, {"examples": np.array(events[:size], dtype=object)}),
                                      (RAW_SIGNATURE, {k: v[:size] for k, v in raw.items()})):
                request = predict_pb2.PredictRequest(
                    model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature))
                for key, values in inputs.items():
                    request.inputs[key].CopyFrom(tf.make_tensor_proto(values))
                log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
                writer.write(log.SerializeToString())
                count += 1
    return count


def _lite_parity(config: PipelineConfig, lite_dir: str, raw: dict[str, np.ndarray], answers: dict, out_dir: str,
                 measured: dict) -> None:
    """Runs each TFLite file on the events, compares each head with the SavedModel and copies the files that pass
    to ``out_dir``; records why a file does not ship."""
    error_path = os.path.join(lite_dir, lite.ERROR_FILE)
    if tf.io.gfile.exists(error_path):
        with tf.io.gfile.GFile(error_path) as f:
            measured["tflite"] = {"shipped": [], "reason": f.read().strip()}
        return
    tasks = make_tasks(config.tasks)
    labels = {t.name: (answers[f"labels/{t.label_feature}"], answers[f"labels/{t.weight_feature}"]) for t in tasks}
    saved_model = {t.name: t.score(*labels[t.name], answers[f"raw/{t.name}"]) for t in tasks}
    report = {"shipped": []}
    for name, tolerance in ((lite.FLOAT_FILE, config.serving.tflite_tolerance),
                            (lite.QUANTIZED_FILE, config.serving.quantized_tolerance)):
        path = os.path.join(lite_dir, name)
        if not tf.io.gfile.exists(path):
            continue
        try:  # a fresh interpreter's first call of batch 1 (as an app makes it), then the whole batch
            runner = lite.LiteRunner(path)
            runner({k: v[:1] for k, v in raw.items()})
            outputs = runner(raw)
        except (RuntimeError, ValueError) as error:
            reason = " ".join(str(error).split())
            if NO_SELECT_OPS in reason:
                reason = f"{NO_SELECT_OPS_REASON}, so its parity cannot be checked here"
            report[name] = {"reason": f"{name} not shipped: the interpreter fails on it: {reason}"}
            PROGRESS.info(f"ServingCheck: {report[name]['reason']}")
            continue
        times = latencies_ms(lambda **one: runner(one), raw, config.serving.latency_requests)  # noqa: B023
        heads, failures = {}, []
        for task in tasks:
            served, on_device = answers[f"raw/{task.name}"], outputs[task.name]
            metric = saved_model[task.name], task.score(*labels[task.name], on_device)
            change = abs(metric[1] - metric[0])
            heads[task.name] = {"metric": task.key_metric_name, "saved_model": metric[0], "tflite": metric[1],
                                "max_score_difference": float(np.max(np.abs(served - on_device)))}
            if not change <= tolerance:  # a NaN change fails too
                failures.append(f"{task.name} {task.key_metric_name} {metric[1]:.4f} vs {metric[0]:.4f} "
                                f"(tolerance {tolerance:g})")
        report[name] = {"heads": heads, "bytes": tf.io.gfile.stat(path).length,
                        "batch1_ms": {"p50": float(np.percentile(times, 50)), "p99": float(np.percentile(times, 99))}}
        if failures:
            report[name]["reason"] = f"{name} not shipped: parity fails on " + "; ".join(failures)
            PROGRESS.info(f"ServingCheck: {report[name]['reason']}")
            continue
        tf.io.gfile.makedirs(out_dir)
        tf.io.gfile.copy(path, os.path.join(out_dir, name), overwrite=True)
        report["shipped"].append(name)
    measured["tflite"] = report


def check(config: PipelineConfig, model_uri: str, examples_uri: str, out_dir: str) -> dict:
    """Runs every check of the candidate in the Model artifact at ``model_uri`` on the test events of the
    Examples artifact at ``examples_uri``; writes the warm-up records and the TFLite files that pass to
    ``out_dir``; returns what it measured. Raises CheckFailed (one line) when the candidate must not be pushed."""
    events = test_events(examples_uri, config.serving.check_events)
    if not events:
        raise CheckFailed(f"the test split of {examples_uri} has no events to send")
    measured = {"events": len(events)}
    with tempfile.TemporaryDirectory(prefix="serving-check-") as work:
        started = time.time()
        answers = _ask_child(os.path.join(model_uri, SERVING_MODEL_DIR), events, config.serving, work)
        measured["child_seconds"] = time.time() - started
    judge_answers(answers, config.serving, measured)
    raw = {key.split("/", 1)[1]: value.astype(object) if value.dtype.kind == "S" else value
           for key, value in answers.items() if key.startswith("inputs/")}
    measured["warmup_records"] = write_warmup_records(events, raw, config.name, os.path.join(out_dir, WARMUP_FILE))
    lite_dir = os.path.join(model_uri, lite.MODEL_DIR)
    if config.serving.tflite and tf.io.gfile.isdir(lite_dir):
        _lite_parity(config, lite_dir, raw, answers, os.path.join(out_dir, LITE_DIR), measured)
    return measured


@tfx.dsl.components.component
def ServingCheck(
    model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model],
    model_blessing: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ModelBlessing],
    examples: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Examples],
    infra_blessing: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.InfraBlessing],
    pipeline_config: tfx.dsl.components.Parameter[str],
):
    """Checks a blessed model (see the module docstring); a model the blessing gate did not bless is not checked
    and not blessed here either."""
    if not model_blessing.get_int_custom_property("blessed"):
        infra_blessing.set_int_custom_property("blessed", 0)
        infra_blessing.set_string_custom_property("reason", "not checked: the model was not blessed")
        return
    config = from_custom_config(json.loads(pipeline_config))
    try:
        measured = check(config, model.uri, examples.uri, infra_blessing.uri)
    except CheckFailed as failure:
        infra_blessing.set_int_custom_property("blessed", 0)
        infra_blessing.set_string_custom_property("reason", str(failure))
        PROGRESS.info(f"ServingCheck: FAILED: {failure}")
        return
    with tf.io.gfile.GFile(os.path.join(infra_blessing.uri, CHECK_FILE), "w") as f:
        json.dump(measured, f, indent=1)
    infra_blessing.set_int_custom_property("blessed", 1)
    p99 = max(measured["serving_default_ms"]["p99"], measured["serving_raw_ms"]["p99"])
    infra_blessing.set_string_custom_property("reason", f"passed: {measured['events']} events, batch-1 p99 "
                                                        f"{p99:.1f} ms")
