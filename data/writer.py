"""Writes spans of synthetic events as gzip TFRecord logs, with their truth side file.

Span N is written as ``<out_dir>/span-<N>/events-00000-of-00001.tfrecord.gz`` (gzip TFRecord of
``tf.train.Example``, one per event, labels that are absent left out) plus ``truth.npz`` (see ``data.truth``). Both
worlds go through it: the recommendation world's impressions (``data.world``, columns of numbers, NaN where
absent) and the assistant's utterances (``data.assistant``, object columns of bytes or tuples of bytes, None where
absent); each column is written by its dtype in ``Events.dtypes``. Examples are serialized by hand exactly as
protobuf does with deterministic=True, and the truth file has fixed zip timestamps, so the same spec and span
always give byte-identical files. ``mtl generate-logs``, the zoo benchmark and the end-to-end test call
``generate_logs``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf

from data.assistant import AssistantSpec, generate_assistant_span
from data.truth import save_truth
from data.world import Events, LogSpec, generate_span

EVENTS_FILE = "events-00000-of-00001.tfrecord.gz"
_FIELD_1, _FIELD_2 = b"\x0a", b"\x12"  # protobuf keys of length-delimited fields 1 and 2


def _feature(dtype: str, values: list) -> tf.train.Feature:
    if dtype == "bytes":
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))
    if dtype == "int":
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))
    return tf.train.Feature(float_list=tf.train.FloatList(value=values))


def write_examples(columns: dict[str, np.ndarray], path: str | Path, rows: Iterable[int] | None = None) -> None:
    """Writes one tf.Example per row of ``columns`` (arrays of one int, float or bytes value per example;
    ``rows``: which rows, default all) to the gzip TFRecord file ``path``. The tests and benchmarks write
    transformed-example fixtures with it."""
    dtypes = {name: "bytes" if v.dtype.kind in "SO" else "int" if v.dtype.kind in "iub" else "float"
              for name, v in columns.items()}
    with tf.io.TFRecordWriter(str(path), options="GZIP") as writer:
        for row in range(len(next(iter(columns.values())))) if rows is None else rows:
            features = {name: _feature(dtypes[name], [values[row].item()]) for name, values in columns.items()}
            writer.write(tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString())


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited protobuf field (``tag`` is its one-byte key)."""
    return tag + _varint(len(payload)) + payload


def _present(values: np.ndarray) -> np.ndarray:
    """Per event, whether the column has a value: not NaN (numbers), not None (objects)."""
    if values.dtype.kind == "f":
        return ~np.isnan(values).reshape(len(values), -1).any(axis=1)
    if values.dtype.kind == "O":
        return np.array([value is not None for value in values], bool)
    return np.ones(len(values), bool)


def _distinct(values: np.ndarray) -> tuple[list, np.ndarray]:
    """The distinct values (rows, or tuples of an object column) of ``values``, and the index of each among them."""
    if values.dtype.kind == "O":
        index: dict = {}
        inverse = np.array([index.setdefault(value, len(index)) for value in values], np.int64)
        return list(index), inverse
    distinct, inverse = np.unique(values, return_inverse=True, axis=0 if values.ndim > 1 else None)
    return list(distinct), inverse.reshape(-1)


def _map_entries(name: str, dtype: str, values: np.ndarray) -> np.ndarray:
    """Per event, the serialized ``Features.feature`` map entry for this column (b"" where absent).

    ``values`` holds one value per event, or one row of values per event ([events, k]), or (an object column)
    one value or tuple of values per event. Each distinct value (row, tuple) is turned into a tf.train.Feature
    only once.
    """
    present = _present(values)
    distinct, inverse = _distinct(values[present])
    key = _field(_FIELD_1, name.encode())
    encoded = [
        _field(_FIELD_1, key + _field(_FIELD_2, _feature(dtype, np.atleast_1d(value).tolist()).SerializeToString()))
        for value in distinct
    ]
    entries = np.full(len(values), b"", dtype=object)
    entries[present] = np.array(encoded, dtype=object)[inverse]
    return entries


def _serialized_examples(events: Events) -> Iterator[bytes]:
    """tf.train.Examples serialized as protobuf does with deterministic=True (map keys sorted).

    Labels that are absent are left out of the Example.
    """
    columns = {**events.features, **events.labels}
    entries = [_map_entries(name, events.dtypes[name], columns[name]) for name in sorted(events.dtypes)]
    for row in np.stack(entries, axis=1):
        yield _field(_FIELD_1, b"".join(row))


def write_span(events: Events, out_dir: str | Path, span: int) -> Path:
    """Write events and truth of one span under ``out_dir/span-<span>``; return that directory."""
    span_dir = Path(out_dir) / f"span-{span}"
    span_dir.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(span_dir / EVENTS_FILE), options="GZIP") as writer:
        for record in _serialized_examples(events):
            writer.write(record)
    save_truth(span_dir, events.truth)
    return span_dir


def generate_logs(spec: LogSpec | AssistantSpec, out_dir: str | Path, spans: Sequence[int]) -> list[Path]:
    """Generate and write every span in ``spans`` of the spec's world; return the span directories."""
    generate = generate_assistant_span if isinstance(spec, AssistantSpec) else generate_span
    return [write_span(generate(spec, span), out_dir, span) for span in spans]
