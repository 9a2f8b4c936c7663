"""A split of raw events as a benchmark scores a model on it: its event ids, and its examples through the model's
Transform graph (what the Evaluator does with the test split, which Transform itself does not transform)."""

import numpy as np


def event_ids(files) -> np.ndarray:
    """[events] bytes: the ``event_id`` of every raw example in the gzipped TFRecord ``files``."""
    import tensorflow as tf

    spec = {"event_id": tf.io.FixedLenFeature([], tf.string)}
    return np.concatenate([tf.io.parse_example(serialized, spec)["event_id"].numpy()
                           for serialized in tf.data.TFRecordDataset(files, compression_type="GZIP").batch(65_536)])


def transformed(files, tft_output) -> dict[str, np.ndarray]:
    """{transformed feature, label or weight: array over every raw example in ``files``}, by ``tft_output``'s
    graph."""
    import tensorflow as tf

    raw_spec = tft_output.raw_feature_spec()
    layer = tft_output.transform_features_layer()
    batches = []
    for serialized in tf.data.TFRecordDataset(files, compression_type="GZIP").batch(4096):
        batches.append({k: v.numpy() for k, v in layer(tf.io.parse_example(serialized, raw_spec)).items()})
    return {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}
