"""Reading an Evaluator's output back: which models it judged and the candidate's overall key metric per head,
for the run reports (``pipeline.reports``) and the version ledger a push writes (``components.atomic_pusher``)."""

import json
import os

import tensorflow as tf
import tensorflow_model_analysis as tfma

from models.tasks import Task


def model_names(evaluation_uri: str) -> tuple[str | None, str | None]:
    """(candidate, baseline) model names in an evaluation, from the eval_config.json TFMA wrote beside it; the
    baseline is None on a run without one (the first blessing), and then the candidate has no name."""
    with tf.io.gfile.GFile(os.path.join(evaluation_uri, "eval_config.json")) as f:
        specs = json.load(f)["evalConfig"].get("modelSpecs", [])
    candidate = next((s.get("name") for s in specs if not s.get("isBaseline")), None)
    baseline = next((s.get("name") for s in specs if s.get("isBaseline")), None)
    return candidate or None, baseline


def metric_value(value: dict) -> float | None:
    """A number in TFMA's JSON form of a metric: ``doubleValue``, or with confidence intervals on, the
    ``boundedValue``'s value (on every event, not the intervals' mean); None for a metric that is not a number.
    float() reads the "NaN" that TFMA writes for, e.g., AUC on a slice of one class."""
    number = value.get("doubleValue", value.get("boundedValue", {}).get("value"))
    return None if number is None else float(number)


def metric_interval(value: dict) -> tuple[float, float] | None:
    """(lower, upper) of the 95% interval TFMA gave a metric (``boundedValue``), None when it gave none; NaN
    for a bound it could not compute."""
    bounded = value.get("boundedValue")
    if bounded is None:
        return None
    return float(bounded.get("lowerBound", "NaN")), float(bounded.get("upperBound", "NaN"))


def overall_metrics(evaluation_uri: str) -> dict[str, dict[str, dict]]:
    """{head: {metric: TFMA's JSON form of its value}} of the candidate on the overall slice; with a baseline, a
    metric's change against it is the metric ``<name>_diff``."""
    result = tfma.load_eval_result(evaluation_uri, model_name=model_names(evaluation_uri)[0])
    overall = next((by_output for key, by_output in result.slicing_metrics if not key), {})
    return {head: by_sub_key.get("", {}) for head, by_sub_key in overall.items()}


def overall_key_metrics(evaluation_uri: str, tasks: list[Task]) -> dict[str, dict]:
    """{head: {"metric": its key metric's name, "value": the candidate's value on the overall slice}} for the
    heads the evaluation holds."""
    overall = overall_metrics(evaluation_uri)
    metrics = {}
    for task in tasks:
        value = metric_value(overall.get(task.name, {}).get(task.key_metric_name, {}))
        if value is not None:
            metrics[task.name] = {"metric": task.key_metric_name, "value": value}
    return metrics
