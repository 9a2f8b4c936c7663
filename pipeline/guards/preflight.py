"""Checks that stop a local run in seconds, before any component starts, with one line that names the path,
span, file, feature or value to fix. run_local calls ``check_run``; the CLI prints a PreflightError as one line
and exits with code 2.

What is checked: the log folder and the span to ingest exist and hold files; every file is a complete gzip
TFRecord with at least one event; in each file's first events (10,000 in all, at least 1,000 a file), every
declared feature, label and slice is present with the type its kind needs, numbers are finite, labels are in
their task type's domain and not all the missing value, a label logged as class names is text, and a
sequence_labeling head's tags are BIO tags, one per token of its text feature; the serving folder is writable.
Remote logs (gs://...) are checked for their files only: the data components read them where they are. Before the
logs, the rules of the task types and feature kinds (``check_model_config``).
"""

from __future__ import annotations

import gzip
import os
import re
import struct
import zlib
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from config import SPLITS, FeatureConfig, FeatureKind, PipelineConfig, UserError
from models import text
from models.builder import check_model_config
from models.features import KINDS
from models.tasks import Task, make_tasks

_RECORD_HEADER, _RECORD_FOOTER = 12, 4  # a TFRecord: length (8 bytes) and its CRC (4), data, the data's CRC (4)
SAMPLE_EVENTS = 10_000  # events of a span whose values are checked, spread over its files (at least 1,000 each)


class PreflightError(UserError):
    """Logs, paths or settings that a run cannot start from; the message says what to fix."""


@dataclass(frozen=True)
class Ingestion:
    """What a run will ingest: the span number, its folder and its files with their event counts."""

    span: int
    span_dir: str
    events: dict[str, int | None]  # None: a remote file, not read here

    @property
    def total_events(self) -> int | None:
        """The span's events, or None when a file was not counted (remote logs)."""
        counts = list(self.events.values())
        return None if None in counts else sum(counts)


def check_run(config: PipelineConfig, serving_dir: str) -> Ingestion:
    """Raises ConfigError for a rule of the task types and feature kinds, PreflightError for the first problem
    found in the logs or paths; returns what the run will ingest."""
    check_model_config(config)
    ingestion = check_logs(config)
    _check_writable(serving_dir)
    return ingestion


def check_logs(config: PipelineConfig) -> Ingestion:
    """The span that ``config.data`` selects, its files readable and their sampled values as the config needs."""
    root = config.data.log_root
    if not tf.io.gfile.isdir(root):
        raise PreflightError(f"data.log_root {root}: no such folder; pass --log-root DIR, or write sample logs "
                             f"with `mtl generate-logs --out {root}`")
    spans = sorted(int(m.group(1)) for name in tf.io.gfile.listdir(root)
                   if (m := re.fullmatch(r"span-(\d+)/?", name)))
    if not spans:
        raise PreflightError(f"data.log_root {root}: no span-N folders; lay the logs out as "
                             f"{root}/span-N/*.tfrecord.gz")
    span = spans[-1] if config.data.span == "latest" else int(config.data.span)
    span_dir = os.path.join(root, f"span-{span}")
    if span not in spans:
        raise PreflightError(f"data.span {span}: {span_dir} does not exist (spans there: "
                             f"{', '.join(map(str, spans))})")
    patterns = [f"{split}/*" for split in SPLITS] if config.data.presplit else ["*.tfrecord*"]
    events = {}
    for pattern in patterns:
        files = sorted(tf.io.gfile.glob(os.path.join(span_dir, pattern)))
        if not files and config.data.presplit:
            raise PreflightError(f"{span_dir}: no files match '{pattern}'; presplit logs need train/, eval/ (the "
                                 "Trainer's validation) and test/ (the Evaluator's) folders: move part of eval/ into "
                                 "test/, or set data.presplit: false to split every span by hash")
        if not files:
            latest = " (the latest span)" if config.data.span == "latest" else ""
            raise PreflightError(f"{span_dir}{latest}: no files match '{pattern}'; write that span's logs, or run an "
                                 "earlier span with --span N")
        if "://" in root:  # remote logs (gs://...): the data components read them where they are
            events.update(dict.fromkeys(files))
            continue
        for path in files:
            events[path] = _count_events(path)
            _check_sample(path, config, max(1_000, SAMPLE_EVENTS // len(files)))
    return Ingestion(span=span, span_dir=span_dir, events=events)


def _count_events(path: str) -> int:
    """The number of records in a gzip TFRecord file; PreflightError if it is not one, is cut short or holds
    none. The gzip stream is read to its end (its length and CRC checked): TensorFlow's reader takes a file cut at
    its trailer for a complete one. Records are counted from their length fields as the stream goes by."""
    count, pending = 0, b""
    try:
        with tf.io.gfile.GFile(path, "rb") as raw, gzip.GzipFile(fileobj=raw) as stream:
            while chunk := stream.read(1 << 20):
                pending += chunk
                offset = 0
                while len(pending) - offset >= _RECORD_HEADER:
                    (length,) = struct.unpack_from("<Q", pending, offset)
                    if offset + _RECORD_HEADER + length + _RECORD_FOOTER > len(pending):
                        break
                    offset += _RECORD_HEADER + length + _RECORD_FOOTER
                    count += 1
                pending = pending[offset:]
    except gzip.BadGzipFile:
        raise PreflightError(f"{path}: not a readable gzip TFRecord file (not gzip-compressed); "
                             "replace or remove it") from None
    except (EOFError, zlib.error) as e:
        raise PreflightError(f"{path}: not a readable gzip TFRecord file (truncated or corrupt: {e}); "
                             "replace or remove it") from None
    if pending:
        raise PreflightError(f"{path}: not a readable gzip TFRecord file (its last record is cut short); "
                             "replace or remove it")
    if count == 0:
        raise PreflightError(f"{path}: holds no events; replace or remove it")
    return count


def _check_sample(path: str, config: PipelineConfig, limit: int) -> None:
    """Every declared feature, label and slice present in the first ``limit`` events of ``path``, with the value
    type its kind needs, finite numbers and labels inside their task's domain."""
    events = _sample_events(path, limit)
    columns = _sample_columns(events)
    where = f"{path} (first {columns.pop(''):,} events)"
    for feature in config.features:
        values = _column(columns, feature.name, f"feature '{feature.name}'", where)
        if KINDS[feature.kind].numbers:
            _require_numbers(values, f"feature '{feature.name}' (kind {feature.kind})", where)
    for name in config.evaluation.slices:
        _column(columns, name, f"slice feature '{name}'", where)
    for feature in config.features:
        if feature.kind == FeatureKind.TEXT:
            _require_text(columns[feature.name], f"text feature '{feature.name}'", where, "")
    for task in make_tasks(config.tasks):
        label_key = task.config.label_key
        what = f"label '{label_key}' of task '{task.name}' ({task.config.type})"
        values = _column(columns, label_key, what, where)
        if task.config.text_labels:
            _require_text(values, what, where, "; or drop classes / label_vocabulary from the task for class numbers")
            if task.per_token:
                _check_tags(path, events, task, next(f for f in config.features if f.name == task.config.text_feature))
            continue
        _require_numbers(values, what, where)
        _check_label_domain(np.asarray(values, np.float64), task, what, where)
        if task.config.missing_value is not None and all(v == task.config.missing_value for v in values):
            raise PreflightError(f"{where}: {what} is the missing value {task.config.missing_value:g} in every event; "
                                 "its head could neither train nor be judged: fix the logs, or remove the task")


def _require_text(values: list, what: str, where: str, otherwise: str) -> None:
    if values and not isinstance(values[0], bytes):
        raise PreflightError(f"{where}: {what} is logged as numbers (e.g. {values[0]!r}) but must be text{otherwise}")


_TAG = re.compile(rb"O|[BI]-.+")


def _check_tags(path: str, events: list, task: Task, feature: FeatureConfig) -> None:
    """Each of the sampled ``events``' tags are O, B-<type> or I-<type>, one per token of the task's text feature
    under its tokenizer; the first event that breaks this is named, with both lengths."""
    texts, tags, ids = [], [], []
    for example in events:
        texts.append(example[feature.name].bytes_list.value[:1] if feature.name in example else [])
        tags.append(list(example[task.config.label_key].bytes_list.value) if task.config.label_key in example else [])
        ids.append(example["event_id"].bytes_list.value[0] if "event_id" in example else None)
    counts = text.tokens(tf.ragged.constant(texts, dtype=tf.string, ragged_rank=1), feature).row_lengths().numpy()
    for event, (event_tags, count) in enumerate(zip(tags, counts, strict=True)):
        name = f"event {event + 1}" + (f" (event_id {ids[event].decode(errors='replace')})" if ids[event] else "")
        bad = next((tag for tag in event_tags if not _TAG.fullmatch(tag)), None)
        if bad is not None:
            raise PreflightError(f"{path}: {name}: task '{task.name}' has the tag {bad[:40]!r}; tags are O, B-<type> "
                                 "or I-<type> (BIO)")
        if event_tags and len(event_tags) != count:
            raise PreflightError(
                f"{path}: {name}: task '{task.name}' has {len(event_tags)} tags for the {count} tokens of "
                f"'{feature.name}' (tokenizer {feature.tokenizer}); log one tag per token, or set the feature's "
                "tokenizer to the one the tags were made with")


def _sample_events(path: str, limit: int) -> list:
    """The feature maps of the first ``limit`` events of ``path``."""
    return [tf.train.Example.FromString(record.numpy()).features.feature
            for record in tf.data.TFRecordDataset(path, compression_type="GZIP").take(limit)]


def _sample_columns(events: list) -> dict:
    """{feature name: list of its values, as bytes or numbers} over the sampled ``events``; key '' holds their
    number."""
    columns: dict = {}
    for example in events:
        for name, feature in example.items():
            kind = feature.WhichOneof("kind")
            values = list(getattr(feature, kind).value) if kind else []
            columns.setdefault(name, []).extend(values)
    columns[""] = len(events)
    return columns


def _column(columns: dict, name: str, what: str, where: str) -> list:
    """The sampled values of column ``name`` (``what`` names it for the message); PreflightError if absent."""
    if name not in columns:
        raise PreflightError(f"{where}: no event has the {what}; fix the logs or the config")
    return columns[name]


def _require_numbers(values: list, what: str, where: str) -> None:
    if values and isinstance(values[0], bytes):
        raise PreflightError(f"{where}: {what} is logged as text (e.g. {values[0][:20]!r}) but must be a number")
    bad = int(np.sum(~np.isfinite(np.asarray(values, np.float64))))
    if bad:
        raise PreflightError(f"{where}: {what} has {bad} non-finite value(s) (NaN or ±inf); fix or drop those events")


def _check_label_domain(values: np.ndarray, task: Task, what: str, where: str) -> None:
    """Present labels are integers inside the task's label domain (binary and multilabel [0, 1], multiclass
    [0, num_classes - 1]); the task's missing_value is allowed everywhere."""
    missing_value = task.config.missing_value
    if missing_value is not None:
        values = values[values != missing_value]
    if task.label_domain is None or not len(values):
        return
    low, high = task.label_domain
    bad = values[(values < low) | (values > high) | (values != np.round(values))]
    if len(bad):
        missing = f" or the missing value {missing_value:g}" if missing_value is not None else ""
        raise PreflightError(f"{where}: {what} has value {bad[0]:g} ({len(bad)} such); it must be an integer in "
                             f"[{low}, {high}]{missing}")


def _check_writable(serving_dir: str) -> None:
    """The serving folder (or the nearest existing folder above it) must be writable."""
    folder = os.path.abspath(serving_dir)
    while not os.path.exists(folder):
        folder = os.path.dirname(folder)
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
        raise PreflightError(f"serving dir {serving_dir}: {folder} is not a writable folder; pass --serving-dir DIR")
