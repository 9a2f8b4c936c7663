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


def overall_key_metrics(evaluation_uri: str, tasks: list[Task]) -> dict[str, dict]:
    """{head: {"metric": its key metric's name, "value": the candidate's value on the overall slice}} for the
    heads the evaluation holds."""
    result = tfma.load_eval_result(evaluation_uri, model_name=model_names(evaluation_uri)[0])
    overall = next((by_output for key, by_output in result.slicing_metrics if not key), {})
    metrics = {}
    for task in tasks:
        metric = overall.get(task.name, {}).get("", {}).get(task.key_metric_name, {})
        value = metric.get("doubleValue", metric.get("boundedValue", {}).get("value"))  # bounded: intervals on
        if value is not None:
            metrics[task.name] = {"metric": task.key_metric_name, "value": float(value)}
    return metrics
