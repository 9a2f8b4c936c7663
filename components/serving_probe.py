"""The serving check's child process (``components.serving_check``): loads a SavedModel from its folder, as a
model server does, and answers requests through its signatures. It imports TensorFlow and NumPy only, so it
starts in the time TensorFlow takes to import.

``python -m components.serving_probe MODEL_DIR REQUESTS ANSWERS LATENCY_REQUESTS``: answers the serialized events
in the TFRecord file REQUESTS through ``serving_default`` and ``serving_raw`` in batches, reads their labels through
``transform_features``, then times LATENCY_REQUESTS batch-1 requests through each signature; writes it all to the
.npz file ANSWERS. On any failure it prints one line to stderr and exits with 3.
"""

import sys
import time

import numpy as np
import tensorflow as tf

SIGNATURES = {"default": "serving_default", "raw": "serving_raw", "labels": "transform_features"}
_BATCH = 256
_UNTIMED = 5  # the first requests pay tracing and allocation


def raw_inputs(events: list[bytes], dtypes: dict[str, tf.DType]) -> dict[str, np.ndarray]:
    """``serving_raw``'s inputs for ``events``: one [batch] array per feature; an event without the feature
    gets "" or 0, which Transform reads as missing, as ``serving_default`` does for the absent feature."""
    spec = {name: tf.io.FixedLenFeature([], dtype, default_value="" if dtype == tf.string else 0)
            for name, dtype in dtypes.items()}
    return {name: values.numpy() for name, values in tf.io.parse_example(events, spec).items()}


def batched(function, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``function``'s outputs for every row of ``inputs``, called on _BATCH rows at a time."""
    size = len(next(iter(inputs.values())))
    parts = [function(**{k: tf.constant(v[i:i + _BATCH]) for k, v in inputs.items()}) for i in range(0, size, _BATCH)]
    return {key: np.concatenate([part[key].numpy() for part in parts]) for key in parts[0]}


def latencies_ms(function, inputs: dict[str, np.ndarray], requests: int) -> np.ndarray:
    """Milliseconds of each of ``requests`` batch-1 calls of ``function`` (numpy inputs, as a server receives
    them), after _UNTIMED that are not counted."""
    size = len(next(iter(inputs.values())))
    times = []
    for i in range(requests + _UNTIMED):
        one = {k: v[i % size:i % size + 1] for k, v in inputs.items()}
        started = time.perf_counter()
        function(**one)
        times.append((time.perf_counter() - started) * 1000)
    return np.array(times[_UNTIMED:])


def answer(model_dir: str, requests_path: str, answers_path: str, latency_requests: int) -> None:
    """The child process's job: load the SavedModel in ``model_dir`` and answer the events in ``requests_path``
    (a TFRecord file) through both signatures, batched and one at a time; writes the outputs, the labels
    (``transform_features``) and the latencies to ``answers_path`` (.npz)."""
    model = tf.saved_model.load(model_dir)
    events = np.array([r.numpy() for r in tf.data.TFRecordDataset(requests_path)], dtype=object)
    serving, raw, labels = (model.signatures[SIGNATURES[key]] for key in ("default", "raw", "labels"))
    raw_dtypes = {name: spec.dtype for name, spec in raw.structured_input_signature[1].items()}
    by_raw = raw_inputs(list(events), raw_dtypes)
    results = {f"default/{k}": v for k, v in batched(serving, {"examples": events}).items()}
    results.update({f"raw/{k}": v for k, v in batched(raw, by_raw).items()})
    results.update({f"inputs/{k}": v for k, v in by_raw.items()})
    results.update({f"labels/{k}": v for k, v in batched(labels, {"examples": events}).items()})
    results["latency/default"] = latencies_ms(serving, {"examples": events}, latency_requests)
    results["latency/raw"] = latencies_ms(raw, by_raw, latency_requests)
    np.savez(answers_path, **{k: v.astype(bytes) if v.dtype == object else v for k, v in results.items()})


if __name__ == "__main__":
    try:
        answer(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
    except Exception as error:  # the parent reports the last line: what failed, in one line
        print(f"{type(error).__name__}: {' '.join(str(error).split())}", file=sys.stderr)
        sys.exit(3)
