"""`mtl predict`: scores events with a pushed SavedModel, as a client of TF Serving would: JSON objects of raw
features through ``serving_raw`` (the REST API's "instances"), or tf.Examples through ``serving_default``.
Returns one {output: value} per event: each head's scores, the class names of heads whose labels are text, and a
tagging head's tags, tokens and spans."""

from __future__ import annotations

import json
import os
import re
import sys

import numpy as np
import tensorflow as tf

from config import UserError
from models.evaluation import spans


def load_model(model_dir: str):
    """The SavedModel in ``model_dir`` (a pushed version folder); UserError if there is none."""
    if not tf.io.gfile.exists(os.path.join(model_dir, "saved_model.pb")):
        raise UserError(f"{model_dir}: no saved_model.pb; pass a pushed version folder, e.g. "
                        "serving_model/recs-multitask/<version>")
    return tf.saved_model.load(model_dir)


def predict_jsonl(model_dir: str, path: str, batch_size: int = 1024) -> list[dict]:
    """Scores each line of ``path`` (a JSON object of raw feature values) through ``serving_raw``. Every line is
    checked before the model sees it: a JSON object with one value of the right type per feature (UserError naming
    the line, the feature and the value); keys the model does not read are named once on stderr."""
    serve = load_model(model_dir).signatures["serving_raw"]
    inputs = serve.structured_input_signature[1]
    rows, ignored = [], {}
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise UserError(f"{where}: not a JSON object ({e.msg})") from None
            if not isinstance(row, dict):
                raise UserError(f"{where}: expected a JSON object of raw features ({{\"feature\": value, ...}}), got "
                                f"{_shown(row)}")
            missing = sorted(set(inputs) - set(row))
            if missing:
                raise UserError(f"{where}: missing feature(s) {missing}; every line needs {sorted(inputs)}")
            for name, spec in inputs.items():
                _check_value(row[name], spec.dtype, f"{where}: feature '{name}'")
            for key in sorted(set(row) - set(inputs)):
                ignored.setdefault(key, number)
            rows.append(row)
    if ignored:
        print(f"mtl predict: ignored key(s) the model does not read: {sorted(ignored)} (first on line "
              f"{min(ignored.values())} of {path})", file=sys.stderr)
    scores = []
    for start in range(0, len(rows), batch_size):
        batch = rows[start:start + batch_size]
        tensors = {name: tf.constant([row[name] for row in batch], spec.dtype) for name, spec in inputs.items()}
        scores += _rows(serve(**tensors))
    return scores


def _check_value(value, dtype: tf.DType, what: str) -> None:
    """One JSON value of the type ``dtype`` needs: text for a string feature, a number for a numeric one."""
    if dtype == tf.string:
        ok = isinstance(value, str)
    elif dtype.is_integer:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok:
        raise UserError(f"{what} must be one value, {_wanted(dtype)}, got {_shown(value)}")


def _wanted(dtype: tf.DType) -> str:
    """What a feature of ``dtype`` takes, for a person: text, an integer or a number (an integer is one too)."""
    return "text" if dtype == tf.string else "an integer" if dtype.is_integer else "a number"


def _shown(value) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def predict_tfrecord(model_dir: str, path: str, batch_size: int = 1024) -> list[dict]:
    """Scores the tf.Examples in ``path`` (a TFRecord file, gzip if it ends in .gz) through ``serving_default``.
    Every record is checked first: a serialized tf.Example holding each feature the model reads, one value of its
    type (UserError naming the record and the feature)."""
    model = load_model(model_dir)
    serve = model.signatures["serving_default"]
    needed = {name: spec.dtype for name, spec in model.signatures["serving_raw"].structured_input_signature[1].items()}
    compression = "GZIP" if path.endswith(".gz") else ""
    records = []
    try:
        for number, record in enumerate(tf.data.TFRecordDataset(path, compression_type=compression).as_numpy_iterator(),
                                        1):
            _check_example(record, needed, f"{path}: record {number}")
            records.append(record)
    except tf.errors.OpError as e:
        reason = re.sub(r"\{\{.*?\}\}\s*|\s*\[Op:.*$", "", e.message.splitlines()[-1])
        raise UserError(f"{path}: not a readable TFRecord file ({reason}); pass a file of tf.Examples, gzip if its "
                        "name ends in .gz") from None
    scores = []
    for start in range(0, len(records), batch_size):
        scores += _rows(serve(examples=tf.constant(records[start:start + batch_size])))
    return scores


_KINDS = {"bytes_list": "text", "int64_list": "an integer", "float_list": "a number"}


def _check_example(record: bytes, needed: dict[str, tf.DType], where: str) -> None:
    try:
        example = tf.train.Example.FromString(record)
    except Exception:  # protobuf's DecodeError: not a serialized tf.Example
        raise UserError(f"{where}: not a serialized tf.Example") from None
    features = example.features.feature
    for name, dtype in needed.items():
        if name not in features:
            raise UserError(f"{where}: lacks feature '{name}'; the model needs {sorted(needed)}")
        kind = features[name].WhichOneof("kind")
        values = getattr(features[name], kind).value if kind else []
        held, wanted = _KINDS.get(kind), _wanted(dtype)
        if len(values) != 1 or held != wanted and not (wanted == "a number" and held == "an integer"):
            got = f"{len(values)} values" if len(values) != 1 else held
            raise UserError(f"{where}: feature '{name}' must hold one value, {wanted}; it holds {got}")


def _rows(outputs: dict[str, tf.Tensor]) -> list[dict]:
    """{output: [batch] or [batch, k] tensor} -> one {output: value} per example: scores rounded to 6 digits, names
    as text; a tagging head's tags and tokens without their padding, and its spans (``tagged_spans``)."""
    arrays = {name: np.asarray(value) for name, value in sorted(outputs.items())}
    count = len(next(iter(arrays.values())))
    rows = []
    for i in range(count):
        row = {}
        for name, values in arrays.items():
            row[name] = _texts(values[i]) if values.dtype.kind in "SO" else np.round(values[i], 6).tolist()
        for name in [n.removesuffix("_tags") for n in row if n.endswith("_tags") and f"{n[:-5]}_tokens" in row]:
            tokens = [token for token in row[f"{name}_tokens"] if token]
            row[f"{name}_tags"], row[f"{name}_tokens"] = row[f"{name}_tags"][:len(tokens)], tokens
            row[f"{name}_spans"] = tagged_spans(tokens, row[f"{name}_tags"])
        rows.append(row)
    return rows


def _texts(value):
    """A served string (bytes) or array of them as text."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else [_texts(v) for v in value]


def tagged_spans(tokens: list[str], tags: list[str]) -> list[dict]:
    """The spans of BIO ``tags`` over ``tokens`` by the CoNLL rules (``models.evaluation.spans``): one
    {"type", "text", "start", "end"} (token positions, end inclusive) per span."""
    types = sorted({tag[2:] for tag in tags if tag[:2] in ("B-", "I-")})
    ids = [0 if tag[:2] not in ("B-", "I-") else 2 * types.index(tag[2:]) + (1 if tag[0] == "B" else 2)
           for tag in tags]
    found = spans.span_starts_ends(np.array([ids], np.int64).reshape(1, -1))
    return [{"type": types[kind], "text": " ".join(tokens[start:end + 1]), "start": int(start), "end": int(end)}
            for _, start, end, kind in found]
