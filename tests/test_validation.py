"""What a span is judged by: the curated schema (label domains and presence, finite numbers, environments, drift
comparators from the config) and the drift gate against the previous span's statistics."""

import os

import numpy as np
import pandas as pd
import pytest
import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import schema_pb2

from components import drift
from components.anomaly_gate import STATISTICS_FILE, drift_messages, missing_label_messages
from components.schema_curation import SERVING, curate_schema
from config import ConfigError, PipelineConfig

CONFIG = PipelineConfig.from_dict({
    "name": "tiny",
    "features": [{"name": "device", "kind": "vocabulary"}, {"name": "price", "kind": "log"}],
    "tasks": [{"name": "click", "type": "binary", "label_key": "click"},
              {"name": "interest", "type": "multiclass", "label_key": "interest", "num_classes": 5},
              {"name": "watch_time", "type": "regression", "label_key": "watch_time"}],
    "validation": {"drift": {"device": 0.1, "price": 0.2}},
})
GOOD = pd.DataFrame({"device": ["mobile", "desktop"] * 50, "price": [1.0, 3.0] * 50, "click": [0, 1] * 50,
                     "interest": [0, 4] * 50, "watch_time": [0.5, 2.0] * 50})


@pytest.fixture(scope="module")
def curated():
    return curate_schema(tfdv.infer_schema(tfdv.generate_statistics_from_dataframe(GOOD)), CONFIG)


def _feature(schema, name) -> schema_pb2.Feature:
    return tfdv.get_feature(schema, name)


def test_labels_get_their_task_domains_presence_and_no_serving(curated):
    click, interest = _feature(curated, "click"), _feature(curated, "interest")
    assert (click.int_domain.min, click.int_domain.max) == (-1, 1)  # -1: the default missing_value
    assert (interest.int_domain.min, interest.int_domain.max) == (-1, 4)
    assert click.presence.min_count == 1 and list(click.not_in_environment) == [SERVING]
    assert list(curated.default_environment) == ["TRAINING", SERVING]
    assert not _feature(curated, "device").not_in_environment


def test_floats_must_be_finite_and_drift_comparators_follow_the_feature_type(curated):
    for name in ("price", "watch_time"):
        assert _feature(curated, name).float_domain.disallow_nan and _feature(curated, name).float_domain.disallow_inf
    assert _feature(curated, "device").drift_comparator.infinity_norm.threshold == 0.1
    assert _feature(curated, "price").drift_comparator.jensen_shannon_divergence.threshold == 0.2


@pytest.mark.parametrize("column, values, reason", [
    ("click", [0, 2] * 50, "Unexpectedly large value: 2"),
    ("interest", [0, 7] * 50, "Unexpectedly large value: 7"),
    ("price", [1.0, float("inf")] * 50, "Float feature has Inf values"),
])
def test_the_curated_schema_catches_out_of_domain_labels_and_infinities(curated, column, values, reason):
    anomalies = tfdv.validate_statistics(tfdv.generate_statistics_from_dataframe(GOOD.assign(**{column: values})),
                                         curated)
    assert reason in anomalies.anomaly_info[column].description


def test_a_config_name_missing_from_the_schema_is_a_config_error():
    schema = tfdv.infer_schema(tfdv.generate_statistics_from_dataframe(GOOD.drop(columns=["interest"])))
    with pytest.raises(ConfigError, match="the schema has no feature 'interest'"):
        curate_schema(schema, CONFIG)


def _statistics_folder(root, frame):
    (root / "Split-train").mkdir(parents=True)
    path = root / "Split-train" / STATISTICS_FILE
    path.write_bytes(tfdv.generate_statistics_from_dataframe(frame).SerializeToString())
    return str(root)


def test_drift_beyond_the_threshold_is_named_and_small_drift_passes(curated, tmp_path):
    schema_path = str(tmp_path / "schema.pbtxt")
    tfdv.write_schema_text(curated, schema_path)
    previous = _statistics_folder(tmp_path / "previous", GOOD)
    same = _statistics_folder(tmp_path / "same", GOOD.iloc[:98])
    moved = _statistics_folder(tmp_path / "moved", GOOD.assign(device=["mobile"] * 80 + ["desktop"] * 20))
    assert drift_messages(same, previous, schema_path, ["train"]) == []
    (message,) = drift_messages(moved, previous, schema_path, ["train"])
    assert message == ("split 'train', feature 'device': moved 0.3 (L_INFTY) from the last validated span, "
                       "above validation.drift 0.1 and above the 0.18 that sampling alone reaches 1 time in 100 at 100 "
                       "and 100 values")
    assert drift_messages(moved, previous, schema_path, ["eval"]) == []  # no baseline for that split
    assert os.path.exists(schema_path)


def test_a_label_with_nothing_but_its_missing_value_is_named(tmp_path):
    frame = GOOD.assign(click=[-1] * 100, watch_time=[0.5] * 100)
    statistics = _statistics_folder(tmp_path / "span", frame.drop(columns=["interest"]))
    labels = {"click": -1, "interest": -1, "watch_time": None}
    assert missing_label_messages(statistics, ["train"], labels) == [
        "split 'train', label 'click': no event holds a label (every value is absent or the missing value -1); "
        "its head could neither train nor be judged: fix the logs, or remove the task",
        "split 'train', label 'interest': no event holds a label (every value is absent or the missing value -1); "
        "its head could neither train nor be judged: fix the logs, or remove the task"]
    good = _statistics_folder(tmp_path / "good", GOOD)
    assert missing_label_messages(good, ["train"], labels) == []


def test_a_move_within_sampling_noise_is_not_drift_however_small_the_threshold(curated, tmp_path):
    """Two samples of one distribution, 60 and 100 events: their device shares differ by 0.1, above a threshold of
    0.05 but well within what 60 and 100 draws of a 50/50 mix give by chance."""
    schema = schema_pb2.Schema()
    schema.CopyFrom(curated)
    _feature(schema, "device").drift_comparator.infinity_norm.threshold = 0.05
    schema_path = str(tmp_path / "schema.pbtxt")
    tfdv.write_schema_text(schema, schema_path)
    previous = _statistics_folder(tmp_path / "previous", GOOD)
    sample = _statistics_folder(tmp_path / "sample", GOOD.iloc[:60].assign(device=["mobile"] * 36 + ["desktop"] * 24))
    assert drift_messages(sample, previous, schema_path, ["train"]) == []


def test_distances_are_tfdvs_and_the_noise_shrinks_with_the_sample():
    two = np.array([50.0, 50.0])
    assert drift._distance(drift.L_INFTY, np.array([[80.0, 20.0]]), two[None])[0] == pytest.approx(0.3)
    # JS (base 2) of [0.8, 0.2] against [0.5, 0.5]: m = [0.65, 0.35]
    p, q, m = np.array([0.8, 0.2]), np.array([0.5, 0.5]), np.array([0.65, 0.35])
    expected = 0.5 * np.sum(p * np.log2(p / m)) + 0.5 * np.sum(q * np.log2(q / m))
    assert drift._distance(drift.JENSEN_SHANNON, np.array([[80.0, 20.0]]), two[None])[0] == pytest.approx(expected)
    noise = [drift.sampling_noise(drift.L_INFTY, two / 100, (n, n)) for n in (100, 10_000)]
    # the difference of two shares of n draws has std 0.5 * sqrt(2 / n); its 99th percentile is about 2.6 of those
    assert noise[0] == pytest.approx(2.58 * 0.5 * np.sqrt(2 / 100), rel=0.2)
    assert noise[1] == pytest.approx(noise[0] / 10, rel=0.25)
    buckets = np.array([[0.0, 2.0, 10.0], [2.0, 2.0, 4.0]])  # a zero-width bucket holds its value's count
    np.testing.assert_allclose(drift._rebin(buckets, np.array([0.0, 1.0, 2.0, 3.0])), [5.0, 5.0, 4.0])
