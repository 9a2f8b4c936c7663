"""`mtl predict`: scores events with a pushed SavedModel, as a client of TF Serving would: JSON objects of raw
features through ``serving_raw`` (the REST API's "instances"), or tf.Examples through ``serving_default``.
Returns one {head: score} per event."""

from __future__ import annotations

import json
import os

import numpy as np
import tensorflow as tf

from config import UserError


def load_model(model_dir: str):
    """The SavedModel in ``model_dir`` (a pushed version folder); UserError if there is none."""
    if not tf.io.gfile.exists(os.path.join(model_dir, "saved_model.pb")):
        raise UserError(f"{model_dir}: no saved_model.pb; pass a pushed version folder, e.g. "
                        "serving_model/recs-multitask/<version>")
    return tf.saved_model.load(model_dir)


def predict_jsonl(model_dir: str, path: str, batch_size: int = 1024) -> list[dict]:
    """Scores each line of ``path`` (a JSON object of raw feature values) through ``serving_raw``."""
    serve = load_model(model_dir).signatures["serving_raw"]
    inputs = serve.structured_input_signature[1]
    rows = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise UserError(f"{path}:{number}: not a JSON object ({e.msg})") from None
            missing = sorted(set(inputs) - set(row))
            if missing:
                raise UserError(f"{path}:{number}: missing feature(s) {missing}; every line needs "
                                f"{sorted(inputs)}")
            rows.append(row)
    scores = []
    for start in range(0, len(rows), batch_size):
        batch = rows[start:start + batch_size]
        try:
            tensors = {name: tf.constant([row[name] for row in batch], spec.dtype) for name, spec in inputs.items()}
        except (TypeError, ValueError) as e:
            raise UserError(f"{path}: a value of the wrong type in lines {start + 1}-{start + len(batch)} ({e})") \
                from None
        scores += _rows(serve(**tensors))
    return scores


def predict_tfrecord(model_dir: str, path: str, batch_size: int = 1024) -> list[dict]:
    """Scores the tf.Examples in ``path`` (a TFRecord file, gzip if it ends in .gz) through ``serving_default``."""
    serve = load_model(model_dir).signatures["serving_default"]
    compression = "GZIP" if path.endswith(".gz") else ""
    scores = []
    try:
        for batch in tf.data.TFRecordDataset(path, compression_type=compression).batch(batch_size):
            scores += _rows(serve(examples=batch))
    except tf.errors.OpError as e:
        raise UserError(f"{path}: cannot read it as a TFRecord file of tf.Examples ({e.message.splitlines()[-1]})") \
            from None
    return scores


def _rows(outputs: dict[str, tf.Tensor]) -> list[dict]:
    """{head: [batch] or [batch, k] tensor} -> one {head: float or [floats]} per example."""
    arrays = {name: np.asarray(value) for name, value in sorted(outputs.items())}
    count = len(next(iter(arrays.values())))
    return [{name: np.round(values[i], 6).tolist() for name, values in arrays.items()} for i in range(count)]
