"""The serving check's judgement of a candidate's answers, the raw requests it builds from events and its warm-up
records, on tiny hand-made inputs (the e2e tests check real candidates in a fresh process)."""

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from components import serving_check, serving_probe
from config import ServingConfig
from models import signatures


def _event(**features) -> bytes:
    example = tf.train.Example()
    for name, value in features.items():
        feature = example.features.feature[name]
        if isinstance(value, str):
            feature.bytes_list.value.append(value.encode())
        else:
            feature.float_list.value.append(value)
    return example.SerializeToString()


def _answers(**changes) -> dict[str, np.ndarray]:
    answers = {"default/click": np.array([0.25, 0.5], np.float32), "raw/click": np.array([0.25, 0.5], np.float32),
               "default/intent_classes": np.array([b"a", b"b"]), "raw/intent_classes": np.array([b"a", b"b"]),
               "latency/default": np.full(100, 2.0), "latency/raw": np.full(100, 3.0)}
    return {**answers, **changes}


def test_the_probe_calls_the_signatures_the_model_exports():
    assert serving_probe.SIGNATURES == {"default": signatures.SERVING_SIGNATURE, "raw": signatures.RAW_SIGNATURE,
                                        "labels": signatures.TRANSFORM_SIGNATURE}


def test_raw_requests_give_an_absent_feature_the_value_transform_reads_as_missing():
    events = [_event(user_id="u1", price=2.5), _event(price=1.0), _event(user_id="u3")]
    raw = serving_probe.raw_inputs(events, {"user_id": tf.string, "price": tf.float32})
    assert raw["user_id"].tolist() == [b"u1", b"", b"u3"]
    np.testing.assert_array_equal(raw["price"], np.array([2.5, 1.0, 0.0], np.float32))


def test_answers_that_are_finite_agree_and_keep_the_slo_pass_and_are_measured():
    measured = {}
    serving_check.judge_answers(_answers(), ServingConfig(latency_slo_ms=3.0), measured)
    assert measured == {"max_signature_difference": {"click": 0.0},
                        "serving_default_ms": {"p50": 2.0, "p99": 2.0}, "serving_raw_ms": {"p50": 3.0, "p99": 3.0}}


@pytest.mark.parametrize("changes, message", [
    ({"raw/click": np.array([0.25, np.nan], np.float32)},
     "serving_raw gives a non-finite 'click' for 1 of 2 test events"),
    ({"raw/click": np.array([0.25, 0.5005], np.float32)},
     "serving_default and serving_raw differ by 0.0005 on 'click' (serving.tolerance = 0.0001)"),
    ({"raw/intent_classes": np.array([b"a", b"c"])},
     "serving_default and serving_raw give different 'intent_classes' for the same test events"),
    ({"latency/raw": np.concatenate([np.full(98, 3.0), [60.0, 80.0]])},
     "serving_raw's batch-1 p99 latency is 60.2 ms, over serving.latency_slo_ms = 50 ms (100 requests)"),
])
def test_answers_that_fail_a_check_say_which_and_by_how_much(changes, message):
    with pytest.raises(serving_check.CheckFailed) as failure:
        serving_check.judge_answers(_answers(**changes), ServingConfig(), {})
    assert str(failure.value) == message


def test_warmup_records_are_prediction_logs_for_both_signatures_and_each_batch_size(tmp_path):
    events = [_event(user_id=f"u{i}", price=float(i)) for i in range(20)]
    raw = serving_probe.raw_inputs(events, {"user_id": tf.string, "price": tf.float32})
    path = str(tmp_path / serving_check.WARMUP_FILE)
    assert serving_check.write_warmup_records(events, raw, "recs", path) == 4
    logs = [prediction_log_pb2.PredictionLog.FromString(r.numpy()) for r in tf.data.TFRecordDataset(path)]
    requests = [log.predict_log.request for log in logs]
    assert [(r.model_spec.name, r.model_spec.signature_name, sorted(r.inputs)) for r in requests] == [
        ("recs", "serving_default", ["examples"]), ("recs", "serving_raw", ["price", "user_id"]),
        ("recs", "serving_default", ["examples"]), ("recs", "serving_raw", ["price", "user_id"])]
    assert tf.make_ndarray(requests[0].inputs["examples"]).tolist() == events[:1]
    assert tf.make_ndarray(requests[3].inputs["user_id"]).tolist() == [f"u{i}".encode() for i in range(16)]
    np.testing.assert_array_equal(tf.make_ndarray(requests[3].inputs["price"]), np.arange(16, dtype=np.float32))
