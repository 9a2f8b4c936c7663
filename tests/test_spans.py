"""Span scoring of BIO tags by conlleval's rules (``models.evaluation.spans``), hand-computed; the head summary's
``Part.SPANS`` and its metrics against the exact functions; and the metrics through a model-less TFMA run."""

import base64
import json
import math

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.proto import config_pb2

from models.evaluation import head_metrics as hm
from models.evaluation import spans
from models.evaluation.summary import Part

# Two slot types, A (0) and B (1): T = 5 tag ids.
O, BA, IA, BB, IB = 0, 1, 2, 3, 4  # noqa: E741
SPANS = (Part.SPANS,)


def _spans(tags, valid=None):
    """The spans of one or more rows as a list of (example, start, end, type) tuples."""
    tags = np.atleast_2d(tags)
    return [tuple(int(v) for v in row) for row in spans.span_starts_ends(tags, valid)]


# --- spans ---------------------------------------------------------------------------------------------------


def test_tag_scheme_helpers():
    assert [spans.type_of(t) for t in range(7)] == [-1, 0, 0, 1, 1, 2, 2]
    assert spans.type_of(np.array([0, 1, 4])).tolist() == [-1, 0, 1]
    assert [spans.is_begin(t) for t in range(5)] == [False, True, False, True, False]
    assert [spans.tag_name(t, ["city", "date"]) for t in range(5)] == ["O", "B-city", "I-city", "B-date", "I-date"]
    assert spans.tag_id("B", 2) == 5 and spans.tag_id("I", 0) == 2
    assert spans.num_types(5) == 2 and spans.num_types(1) == 0
    with pytest.raises(ValueError):
        spans.tag_name(5, ["city", "date"])


def test_begin_inside_is_one_span():
    assert _spans([BA, IA, IA, O]) == [(0, 0, 2, 0)]


def test_inside_without_begin_starts_a_span():
    assert _spans([O, IA, IA, O, IB]) == [(0, 1, 2, 0), (0, 4, 4, 1)]
    assert _spans([IA]) == [(0, 0, 0, 0)]


def test_inside_of_another_type_starts_a_new_span():
    assert _spans([BA, IB, IB]) == [(0, 0, 0, 0), (0, 1, 2, 1)]


def test_begin_after_begin_of_the_same_type_is_two_spans():
    assert _spans([BA, BA, IA]) == [(0, 0, 0, 0), (0, 1, 2, 0)]


def test_an_unlabelled_token_cuts_a_span():
    assert _spans([BA, IA, IA, IA], [[True, True, False, True]]) == [(0, 0, 1, 0), (0, 3, 3, 0)]
    weights = np.array([[1.0, 1.0, 0.0, 0.0]])  # weights work as valid (> 0): padding ends the row
    assert _spans([BA, IA, IA, IA], weights) == [(0, 0, 1, 0)]


def test_all_outside_and_empty_rows_have_no_spans():
    assert _spans([O, O, O]) == []
    assert _spans([BA, IA, BB], [[False, False, False]]) == []
    assert spans.span_starts_ends(np.zeros((0, 4), np.int64), np.zeros((0, 4), bool)).shape == (0, 4)
    assert spans.span_starts_ends(np.zeros((3, 0), np.int64), None).shape == (0, 4)
    correct, gold, predicted = spans.span_counts(np.zeros((2, 3)), np.zeros((2, 3)), None, num_types=2)
    assert correct.tolist() == gold.tolist() == predicted.tolist() == [0, 0]
    assert spans.span_counts(np.zeros((0, 3)), np.zeros((0, 3)), None, 2)[1].tolist() == [0, 0]


def test_spans_of_a_batch_name_their_example():
    tags = np.array([[BA, IA, O], [O, O, O], [IB, BA, IA]])
    assert _spans(tags) == [(0, 0, 1, 0), (2, 0, 0, 1), (2, 1, 2, 0)]


def _counts(gold, predicted, valid=None, num_types=2):
    return tuple(c.tolist() for c in spans.span_counts(np.atleast_2d(gold), np.atleast_2d(predicted), valid,
                                                       num_types))


def test_a_span_one_token_shorter_or_longer_is_wrong():
    gold = [BA, IA, IA, O]
    assert _counts(gold, [BA, IA, O, O]) == ([0, 0], [1, 0], [1, 0])
    assert _counts(gold, [BA, IA, IA, IA]) == ([0, 0], [1, 0], [1, 0])
    assert _counts(gold, [O, IA, IA, O]) == ([0, 0], [1, 0], [1, 0])  # the same end, a later start
    assert _counts(gold, [BA, IA, IA, O]) == ([1, 0], [1, 0], [1, 0])


def test_the_wrong_type_with_the_same_ends_is_wrong():
    assert _counts([BA, IA, O], [BB, IB, O]) == ([0, 0], [1, 0], [0, 1])


def test_the_same_span_in_another_example_is_wrong():
    assert _counts([[BA, O], [O, O]], [[O, O], [BA, O]]) == ([0, 0], [1, 0], [1, 0])


def test_an_unlabelled_token_cuts_gold_and_predicted_spans_alike():
    valid = [[True, True, False, True]]
    # gold B-A I-A | I-A: two spans; the prediction B-A I-A | O finds the first
    assert _counts([BA, IA, IA, IA], [BA, IA, IB, O], valid) == ([1, 0], [2, 0], [1, 0])


def test_counts_grow_to_the_types_the_tags_need_and_refuse_more():
    assert _counts([BA, O], [O, IB], num_types=None) == ([0, 0], [1, 0], [0, 1])
    probabilities = np.eye(7)[[[O, O]]]  # [1, 2, 7]: three types
    assert [c.tolist() for c in spans.span_counts([[BA, O]], probabilities, None)][1] == [1, 0, 0]
    with pytest.raises(ValueError, match="beyond"):
        spans.span_counts([[BB, O]], [[O, O]], None, num_types=1)


# A small batch; valid tokens are each row's prefix. Gold spans: A 3, B 3; predicted: A 3, B 2; correct: A 2, B 1.
BATCH_LABELS = np.array([
    [BA, IA, O, BB, O],  # A(0-1) B(3)
    [O, BB, IB, O, BA],  # B(1-2) A(4)
    [BA, O, O, BB, IB],  # A(0); tokens 3 and 4 are unlabelled
    [BB, IB, IB, O, O],  # B(0-2)
    [BA, IA, IA, IA, IA],  # unlabelled throughout
])
BATCH_TAGS = np.array([
    [BA, IA, O, BB, IB],  # A(0-1) right, B(3-4) wrong
    [O, BB, IB, O, O],  # B(1-2) right
    [BA, O, BA, BA, IA],  # A(0) right, A(2) wrong (tokens 3 and 4 do not count)
    [O, O, O, O, O],
    [BB, IB, O, O, O],
])
BATCH_WEIGHTS = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]],
                         np.float64)
NUM_TAGS = 7  # three types: the third (C) has no gold and no predicted span
TOKEN_HITS, TOKENS = 4 + 4 + 2 + 2, 18


def _probabilities(tags, num_tags=NUM_TAGS):
    """[n, L, T] probabilities whose argmax is ``tags``."""
    return np.eye(num_tags)[tags] * 0.6 + 0.4 / num_tags


def test_batch_counts_precision_recall_and_f1():
    correct, gold, predicted = spans.span_counts(BATCH_LABELS, BATCH_TAGS, BATCH_WEIGHTS > 0)
    assert (correct.tolist(), gold.tolist(), predicted.tolist()) == ([2, 1], [3, 3], [3, 2])
    precision, recall, f1 = spans.span_precision_recall_f1(BATCH_LABELS, _probabilities(BATCH_TAGS), BATCH_WEIGHTS)
    assert (precision, recall) == (pytest.approx(3 / 5), pytest.approx(3 / 6))
    assert f1 == pytest.approx(2 * 3 / (6 + 5)) == spans.span_f1(BATCH_LABELS, BATCH_TAGS, BATCH_WEIGHTS > 0)
    by_type = spans.f1_by_type(*spans.span_counts(BATCH_LABELS, _probabilities(BATCH_TAGS), BATCH_WEIGHTS))
    assert by_type[:2].tolist() == pytest.approx([4 / 6, 2 / 5]) and math.isnan(by_type[2])
    assert spans.token_accuracy(BATCH_LABELS, BATCH_TAGS, BATCH_WEIGHTS) == pytest.approx(TOKEN_HITS / TOKENS)


def test_conventions_with_no_spans():
    assert spans.precision_recall_f1(0, 0, 0) == (0.0, 0.0, 0.0)
    assert spans.span_f1([[O, O]], [[O, O]], None) == 0.0
    assert spans.span_precision_recall_f1([[BA, O]], [[O, O]], None) == (0.0, 0.0, 0.0)  # nothing predicted
    assert spans.span_precision_recall_f1([[O, O]], [[BA, O]], None) == (0.0, 0.0, 0.0)  # nothing to find
    assert spans.span_precision_recall_f1([[BA, O]], [[BA, O]], None) == (1.0, 1.0, 1.0)
    by_type = spans.f1_by_type([0, 0, 1], [1, 0, 1], [0, 0, 1])
    assert by_type[0] == 0.0 and math.isnan(by_type[1]) and by_type[2] == 1.0
    assert math.isnan(spans.token_accuracy([[BA]], [[BA]], [[0.0]]))


# --- the head summary and its metrics ----------------------------------------------------------------------------


def _summary(labels, probabilities, weights, fold_after=()):
    """A SPANS summary fed example by example (label [L], prediction [L * T] flattened as a tf.Example holds it,
    weight [L]), folded after the given example counts too."""
    summary = hm.HeadSummary(SPANS, (0.0, 1.0), 20)
    for i, (label, prediction, weight) in enumerate(zip(labels, probabilities, weights, strict=True)):
        if i in fold_after:
            summary.fold()
        summary.add(label, np.ravel(prediction), weight)
    return summary.fold()


def _value(metric_class, summary):
    return metric_class(parts=summary.parts).value(summary)


def test_metrics_of_a_summary_are_the_hand_computed_ones():
    summary = _summary(BATCH_LABELS, _probabilities(BATCH_TAGS), BATCH_WEIGHTS)
    assert _value(hm.HeadExampleCount, summary) == 4.0  # the last row has no labelled token
    assert _value(hm.HeadTokenAccuracy, summary) == pytest.approx(TOKEN_HITS / TOKENS)
    assert _value(hm.HeadSpanPrecision, summary) == pytest.approx(3 / 5)
    assert _value(hm.HeadSpanRecall, summary) == pytest.approx(3 / 6)
    assert _value(hm.HeadSpanF1, summary) == pytest.approx(6 / 11)
    counts = json.loads(_value(hm.HeadSpanCountsByType, summary))
    by_type = spans.f1_by_type(*(np.array(counts[key]) for key in ("correct", "gold", "predicted")))
    assert by_type[:2].tolist() == pytest.approx([4 / 6, 2 / 5]) and math.isnan(by_type[2])
    assert counts["gold"] == [3, 3, 0]


def test_an_empty_summary():
    summary = hm.HeadSummary(SPANS, (0.0, 1.0), 20).fold()
    assert _value(hm.HeadExampleCount, summary) == 0.0
    assert math.isnan(_value(hm.HeadTokenAccuracy, summary))
    assert _value(hm.HeadSpanF1, summary) == 0.0
    assert json.loads(_value(hm.HeadSpanCountsByType, summary)) == {"correct": [], "gold": [], "predicted": []}
    with pytest.raises(ValueError, match="spans"):
        _value(hm.HeadSpanF1, hm.HeadSummary((Part.CLASSES,), (0.0, 1.0), 20))


def test_a_scalar_weight_weighs_every_token():
    summary = hm.HeadSummary(SPANS, (0.0, 1.0), 20)
    summary.add(np.array([BA, IA]), _probabilities(np.array([BA, O])), 1.0)  # TFMA's weight with no weight key
    summary.fold()
    assert _value(hm.HeadTokenAccuracy, summary) == 0.5 and _value(hm.HeadSpanRecall, summary) == 0.0


def _random_batch(n, seed, length=12, used_tags=NUM_TAGS):
    """Random tags below ``used_tags``, a prefix of each row labelled (some rows not at all), and NUM_TAGS
    probabilities whose argmax copies about 70% of the tags."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, used_tags, (n, length))
    lengths = rng.integers(0, length + 1, n)
    weights = (np.arange(length) < lengths[:, None]).astype(np.float64)
    tags = np.where(rng.random((n, length)) < 0.7, labels, rng.integers(0, used_tags, (n, length)))
    return labels, _probabilities(tags), weights


def _state(summary):
    return (summary.weight, summary.token_hits, summary.token_weight, summary.span_correct.tolist(),
            summary.span_gold.tolist(), summary.span_predicted.tolist())


def test_folding_in_several_buffers_equals_one_and_the_exact_counts():
    labels, probabilities, weights = _random_batch(2500, seed=1)  # crosses FOLD_EVERY twice
    whole = _summary(labels, probabilities, weights)
    pieces = _summary(labels, probabilities, weights, fold_after=(1, 17, 400, 1500))
    assert _state(pieces) == _state(whole)
    counts = spans.span_counts(labels, probabilities, weights)
    assert tuple(c.tolist() for c in counts) == _state(whole)[3:]
    assert whole.weight == (weights > 0).any(axis=1).sum() and whole.token_weight == weights.sum()
    assert _value(hm.HeadSpanF1, whole) == spans.span_f1(labels, probabilities, weights)
    assert _value(hm.HeadTokenAccuracy, whole) == pytest.approx(spans.token_accuracy(labels, probabilities, weights))


def test_merging_summaries_equals_one_summary_over_all_examples():
    labels, probabilities, weights = _random_batch(900, seed=2)
    whole = _summary(labels, probabilities, weights)
    combiner = hm._HeadSummaryCombiner(None, SPANS, (0.0, 1.0), 20)
    empty = hm.HeadSummary(SPANS, (0.0, 1.0), 20)  # a part with no examples: no types yet
    merged = combiner.merge_accumulators([empty, _summary(labels[:300], probabilities[:300], weights[:300]),
                                          _summary(labels[300:], probabilities[300:], weights[300:])])
    assert _state(merged) == _state(whole)
    for metric in (hm.HeadSpanPrecision, hm.HeadSpanRecall, hm.HeadSpanF1, hm.HeadTokenAccuracy):
        assert _value(metric, merged) == _value(metric, whole)
    assert _value(hm.HeadSpanCountsByType, merged) == _value(hm.HeadSpanCountsByType, whole)


# --- through TFMA ----------------------------------------------------------------------------------------------

SPAN_METRICS = ["ExampleCount", "WeightedExampleCount", "TokenAccuracy", "SpanPrecision", "SpanRecall", "SpanF1",
                "SpanCountsByType"]


def _write_examples(path, labels, probabilities, weights, devices):
    with tf.io.TFRecordWriter(str(path)) as writer:
        for label, prediction, weight, device in zip(labels, probabilities, weights, devices, strict=True):
            feature = {
                "device": tf.train.Feature(bytes_list=tf.train.BytesList(value=[device])),
                "slots": tf.train.Feature(int64_list=tf.train.Int64List(value=label.tolist())),
                "slots_p": tf.train.Feature(float_list=tf.train.FloatList(value=prediction.ravel().tolist())),
                "slots_w": tf.train.Feature(float_list=tf.train.FloatList(value=weight.tolist())),
            }
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())


def test_span_metrics_through_tfma(tmp_path):
    labels, probabilities, weights = _random_batch(60, seed=3, length=6, used_tags=5)  # no span of the 3rd type
    devices = np.where(np.arange(60) % 3 == 0, b"phone", b"desktop")
    data = tmp_path / "examples.tfrecord"
    _write_examples(data, labels, probabilities, weights, devices)
    spec = config_pb2.ModelSpec(label_keys={"slots": "slots"}, prediction_keys={"slots": "slots_p"},
                                example_weight_keys={"slots": "slots_w"})
    metrics = [config_pb2.MetricConfig(class_name=f"Head{name}", module="models.evaluation.head_metrics",
                                       config='"parts": ["spans"], "plot_range": [0.0, 1.0], "plot_buckets": 20')
               for name in SPAN_METRICS]
    eval_config = config_pb2.EvalConfig(
        model_specs=[spec], metrics_specs=[config_pb2.MetricsSpec(output_names=["slots"], metrics=metrics)],
        slicing_specs=[config_pb2.SlicingSpec(), config_pb2.SlicingSpec(feature_keys=["device"])])
    output = tmp_path / "eval"
    result = tfma.run_model_analysis(eval_config=eval_config, data_location=str(data), output_path=str(output))

    by_slice = {slice_key: values["slots"][""] for slice_key, values in result.slicing_metrics}
    assert set(by_slice) == {(), (("device", "phone"),), (("device", "desktop"),)}
    for slice_key, values in by_slice.items():
        rows = devices == slice_key[0][1].encode() if slice_key else np.ones(60, bool)
        exact = _summary(labels[rows], probabilities[rows], weights[rows])
        for name in SPAN_METRICS:
            metric = getattr(hm, f"Head{name}")
            expected = _value(metric, exact)
            if isinstance(expected, str):  # written as text (bytes_value, base64 in TFMA's JSON view)
                assert base64.b64decode(values[metric.metric_name]["bytesValue"]).decode() == expected, name
            else:
                assert values[metric.metric_name]["doubleValue"] == pytest.approx(expected, rel=1e-12), name

    # read back as protos: the per-type counts are bytes_value (TFMA diffs no text against a baseline), the rest
    # double_value
    (overall,) = [m for m in tfma.load_metrics(str(output)) if not m.slice_key.single_slice_keys]
    kinds = {kv.key.name: kv.value.WhichOneof("type") for kv in overall.metric_keys_and_values}
    assert kinds == {hm.HeadExampleCount.metric_name: "double_value", "weighted_example_count": "double_value",
                     "token_accuracy": "double_value", "span_precision": "double_value",
                     "span_recall": "double_value", "span_f1": "double_value", "span_counts_by_type": "bytes_value"}
    counts = next(json.loads(kv.value.bytes_value) for kv in overall.metric_keys_and_values
                  if kv.key.name == "span_counts_by_type")
    assert counts["gold"] == spans.span_counts(labels, probabilities, weights)[1].tolist()


def test_mtl_predict_reads_tagged_spans_off_the_served_tags():
    from pipeline.cli.predict import tagged_spans

    tokens = ["cancel", "order", "48213", "to", "new", "york", "now"]
    tags = ["O", "O", "B-order_id", "O", "B-city", "I-city", "I-date"]  # the last: I- without B- starts a span
    assert tagged_spans(tokens, tags) == [{"type": "order_id", "text": "48213", "start": 2, "end": 2},
                                          {"type": "city", "text": "new york", "start": 4, "end": 5},
                                          {"type": "date", "text": "now", "start": 6, "end": 6}]
    assert tagged_spans([], []) == []


def test_probabilities_are_scored_by_their_decoded_tags_not_each_token_argmax():
    # Token argmax O, I-A would be a one-token span (conlleval starts one at I-); decoded it is B-A I-A, the gold span.
    probabilities = np.array([[[0.6, 0.3, 0.1], [0.2, 0.1, 0.7]]])
    labels = np.array([[1, 2]])
    assert spans.predicted_tags(probabilities).tolist() == [[1, 2]]
    assert spans.span_f1(labels, probabilities) == 1.0
    assert spans.span_f1(labels, probabilities.argmax(axis=-1)) == 0.0
    assert spans.token_accuracy(labels, probabilities) == 1.0
