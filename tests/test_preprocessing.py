"""preprocessing_fn run by tf.Transform on Beam over a tiny dataset, with exact expected outputs."""

import math

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

from config import PipelineConfig, to_custom_config
from models.preprocessing import preprocessing_fn

CONFIG = PipelineConfig.from_dict({
    "name": "tiny",
    "features": [
        {"name": "device", "kind": "vocabulary"},
        {"name": "country", "kind": "vocabulary", "frequency_threshold": 2},
        {"name": "user_id", "kind": "hash", "hash_buckets": 7},
        {"name": "hour", "kind": "bucketized", "boundaries": [6, 12, 18]},
        {"name": "price", "kind": "zscore"},
        {"name": "user_activity", "kind": "log"},
    ],
    "tasks": [
        {"name": "click", "type": "binary", "label_key": "click"},
        {"name": "watch_time", "type": "regression", "label_key": "watch_time"},
        {"name": "interest", "type": "multiclass", "label_key": "interest", "num_classes": 3},
    ],
})
FEATURE_SPEC = {
    "device": tf.io.FixedLenFeature([], tf.string),
    "country": tf.io.FixedLenFeature([], tf.string),
    "user_id": tf.io.FixedLenFeature([], tf.string),
    "hour": tf.io.FixedLenFeature([], tf.int64),
    "price": tf.io.FixedLenFeature([], tf.float32),
    "user_activity": tf.io.FixedLenFeature([], tf.float32),
    "click": tf.io.FixedLenFeature([], tf.int64),
    "watch_time": tf.io.VarLenFeature(tf.float32),  # absent unless clicked; -1 counts as missing too
    "interest": tf.io.VarLenFeature(tf.int64),
}
COUNTRIES = ["us", "us", "us", "us", "de", "fr"]  # de and fr are seen once
ROWS = [  # device, hour, price, activity, click, watch_time, interest
    ("mobile", 0, 1.0, 0.0, 1, [2.5], [2]),
    ("mobile", 6, 2.0, 1.0, 0, [], [0]),
    ("mobile", 7, 3.0, 3.0, 1, [-1.0], []),
    ("desktop", 12, 4.0, 7.0, 0, [], [1]),
    ("desktop", 23, 5.0, 0.0, 1, [0.5], [-1]),
    ("tablet", 18, 6.0, 1.0, 1, [3.0], [2]),
]


@pytest.fixture(scope="module")
def transformed(tmp_path_factory):
    raw = [{"device": d, "country": COUNTRIES[i], "user_id": f"u{i}", "hour": h, "price": p, "user_activity": a,
            "click": c, "watch_time": w, "interest": k} for i, (d, h, p, a, c, w, k) in enumerate(ROWS)]
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(FEATURE_SPEC))
    with tft_beam.Context(temp_dir=str(tmp_path_factory.mktemp("tft")), force_tf_compat_v1=False):
        (rows, _), _ = (raw, metadata) | tft_beam.AnalyzeAndTransformDataset(
            lambda inputs: preprocessing_fn(inputs, to_custom_config(CONFIG)))
    return {key: np.array([row[key] for row in rows]) for key in rows[0]}


def _zscore(values):
    values = np.asarray(values, np.float64)
    return (values - values.mean()) / values.std()


def test_vocabulary_ids_by_frequency(transformed):
    assert transformed["device"].tolist() == [0, 0, 0, 1, 1, 2]


def test_a_frequency_threshold_sends_rare_tokens_to_the_oov_bucket(transformed):
    assert transformed["country"].tolist() == [0, 0, 0, 0, 1, 1]


def test_hash_ids_in_range(transformed):
    assert transformed["user_id"].min() >= 0 and transformed["user_id"].max() < 7


def test_hour_buckets(transformed):
    assert transformed["hour"].tolist() == [0, 1, 1, 2, 3, 3]


def test_zscore_and_log_zscore(transformed):
    np.testing.assert_allclose(transformed["price"], _zscore([1, 2, 3, 4, 5, 6]), rtol=1e-5)
    np.testing.assert_allclose(transformed["user_activity"], _zscore([math.log1p(a) for a in [0, 1, 3, 7, 0, 1]]),
                               rtol=1e-5)


def test_labels_and_weights(transformed):
    assert transformed["click_label"].tolist() == [1, 0, 1, 0, 1, 1]
    assert transformed["click_weight"].tolist() == [1, 1, 1, 1, 1, 1]
    np.testing.assert_allclose(transformed["watch_time_label"], [2.5, 0, 0, 0, 0.5, 3.0])
    assert transformed["watch_time_weight"].tolist() == [1, 0, 0, 0, 1, 1]
    assert transformed["interest_label"].tolist() == [2, 0, 0, 1, 0, 2]
    assert transformed["interest_weight"].tolist() == [1, 1, 0, 1, 0, 1]
