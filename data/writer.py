"""Writes spans of synthetic events as gzip TFRecord logs, with their truth side file.

Span N is written as ``<out_dir>/span-<N>/events-00000-of-00001.tfrecord.gz`` (gzip TFRecord of
``tf.train.Example``, one per event, labels that are NaN left out) plus ``truth.npz`` (see ``data.truth``).
Examples are serialized by hand exactly as protobuf does with deterministic=True, and the truth file has fixed
zip timestamps, so the same spec and span always give byte-identical files. ``mtl generate-logs``, the zoo
benchmark and the end-to-end test call ``generate_logs``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf

from data.truth import save_truth
from data.world import FEATURE_DTYPES, LABEL_DTYPES, Events, LogSpec, generate_span

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


def _map_entries(name: str, dtype: str, values: np.ndarray) -> np.ndarray:
    """Per event, the serialized ``Features.feature`` map entry for this column (b"" where NaN).

    ``values`` holds one value per event, or one row of values per event ([events, k]). Each distinct value
    (row) is turned into a tf.train.Feature only once.
    """
    present = ~np.isnan(values).reshape(len(values), -1).any(axis=1) if values.dtype.kind == "f" else (
        np.ones(len(values), bool))
    distinct, inverse = np.unique(values[present], return_inverse=True, axis=0 if values.ndim > 1 else None)
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

    Labels that are NaN are left out of the Example.
    """
    columns = {**events.features, **events.labels}
    dtypes = {**FEATURE_DTYPES, **LABEL_DTYPES}
    entries = [_map_entries(name, dtypes[name], columns[name]) for name in sorted(dtypes)]
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


def generate_logs(spec: LogSpec, out_dir: str | Path, spans: Sequence[int]) -> list[Path]:
    """Generate and write every span in ``spans``; return the span directories."""
    return [write_span(generate_span(spec, span), out_dir, span) for span in spans]
