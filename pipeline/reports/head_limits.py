"""Each head's best achievable score on a run's test split, for logs written by data.writer (``truth.npz``
beside each span holds the true probability or mean behind every label): the head's task scores the truth as it
scores a model, and the report shows it next to the model's.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from config import TEST, PipelineConfig
from data.truth import ASSISTANT_TRUTH_OF_LABEL, TRUTH_FILE, TRUTH_OF_LABEL, load_truth
from data.world import LABEL_DTYPES
from models.tasks import make_tasks
from pipeline.reports.assistant_limits import SCORE_OF_LABEL, best_achievable
from pipeline.reports.run_report import RunReport

_DTYPES = {"int": tf.int64, "float": tf.float32}


def head_limits(report: RunReport, config: PipelineConfig) -> dict[str, dict[str, float]]:
    """{head: {its key metric's TFMA name: Bayes limit or noise floor}} on the test events of ``report``'s run;
    empty when the logs have no truth file. Heads whose label the generator does not write are left out.
    Called by `mtl run` for its report, and by the benchmarks for the limit rows."""
    if report.examples_uri is None:
        return {}
    span_dir = os.path.join(report.input_base, f"span-{report.span}")
    if not tf.io.gfile.exists(os.path.join(span_dir, TRUTH_FILE)):
        return {}
    with np.load(os.path.join(span_dir, TRUTH_FILE)) as archive:  # the column names only, no array read
        columns = set(archive.files)
    if set(ASSISTANT_TRUTH_OF_LABEL.values()) <= columns:
        return _assistant_limits(report, config, span_dir)
    tasks = [t for t in make_tasks(config.tasks) if t.config.label_key in TRUTH_OF_LABEL]
    if not tasks:
        return {}
    event_ids, labels = _test_labels(report.examples_uri, [t.config.label_key for t in tasks])
    truth = load_truth(span_dir, event_ids.tolist())
    limits = {}
    for task in tasks:
        label = labels[task.config.label_key]
        present = task.present(label)
        truth_of_label = truth[TRUTH_OF_LABEL[task.config.label_key]]
        limits[task.name] = {task.key_metric_name: task.score(label, present.astype(float), truth_of_label)}
    return limits


def _assistant_limits(report: RunReport, config: PipelineConfig, span_dir: str) -> dict[str, dict[str, float]]:
    """The assistant's heads: the truth scored on the test split's events (``assistant_limits``)."""
    event_ids, _ = _test_labels(report.examples_uri, [])
    scores = best_achievable(span_dir, set(event_ids.tolist()))
    return {t.name: {t.key_metric_name: scores[SCORE_OF_LABEL[t.config.label_key]]}
            for t in make_tasks(config.tasks) if t.config.label_key in SCORE_OF_LABEL}


def _test_labels(examples_uri: str, label_keys: list[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Event ids and label columns of the test split (the Evaluator's), as the generator holds them (NaN where
    absent)."""
    spec = {"event_id": tf.io.FixedLenFeature([], tf.string)}
    spec.update({key: tf.io.VarLenFeature(_DTYPES[LABEL_DTYPES[key]]) for key in label_keys})
    files = tf.io.gfile.glob(os.path.join(examples_uri, f"Split-{TEST}", "*"))
    batches = [tf.io.parse_example(serialized, spec)
               for serialized in tf.data.TFRecordDataset(files, compression_type="GZIP").batch(65_536)]
    event_ids = np.concatenate([b["event_id"].numpy() for b in batches])
    labels = {}
    for key in label_keys:
        rows = [tf.sparse.to_dense(tf.cast(b[key], tf.float64), default_value=np.nan).numpy() for b in batches]
        width = max(r.shape[1] for r in rows)
        column = np.concatenate([np.pad(r, ((0, 0), (0, width - r.shape[1])), constant_values=np.nan) for r in rows])
        labels[key] = column[:, 0] if width == 1 else column
    return event_ids, labels
