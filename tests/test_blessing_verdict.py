"""The blessing rule's judgement of a change, and the verdict on an Evaluator's output (written here in TFMA's own
file formats and read back by TFMA's loaders)."""

import json
import os

import pytest
import tensorflow as tf
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.proto import config_pb2, metrics_for_slice_pb2, validation_result_pb2

from config import BlessingConfig, ChangeEvidence, ConfigError, TaskConfig
from models.evaluation.blessing import BlessingRule
from models.evaluation.verdict import Verdict, judge
from models.tasks import make_tasks

AUC = BlessingRule(metric="auc", higher_is_better=True, bound=0.52, tolerance=0.02)
RMSE = BlessingRule(metric="root_mean_squared_error", higher_is_better=False, bound=None, tolerance=0.05)
NAN = float("nan")


@pytest.mark.parametrize("rule, change, interval, refused", [
    (AUC, -0.019, (-0.06, 0.02), False),  # within the tolerance: no regression, whatever the interval
    (AUC, -0.03, (-0.07, 0.01), False),  # beyond it, but the interval reaches no change: noise
    (AUC, -0.03, (-0.05, -0.01), True),  # beyond it, and the whole interval below no change
    (AUC, -0.03, (-0.065, 0.005), True),  # the two-sided interval reaches 0, the one-sided 95% bound does not
    (AUC, -0.03, None, True),  # no interval computed: the change alone decides
    (AUC, -0.03, (NAN, NAN), True),  # TFMA could not compute the interval: the change alone
    (AUC, NAN, (NAN, NAN), False),  # no change measured (one class): no evidence of a regression
    (RMSE, 0.06, (0.01, 0.11), True),  # lower is better: worse means up, and the interval above 0
    (RMSE, 0.06, (-0.03, 0.15), False),
    (RMSE, -0.2, (-0.3, -0.1), False),  # better
    (BlessingRule("auc", True, None, 0.02, ChangeEvidence.POINT), -0.03, (-0.07, 0.01), True),  # today's rule
])
def test_a_change_is_a_regression_beyond_tolerance_with_the_evidence_its_rule_asks(rule, change, interval, refused):
    assert rule.refuses_change(change, interval) is refused


def test_the_one_sided_bound_is_the_better_end_of_the_one_sided_95_percent_interval():
    # t(0.95, 19) / t(0.975, 19) = 1.7291 / 2.0930 of the two-sided half-width, on the side of better
    assert AUC.one_sided_bound(-0.03, (-0.05, -0.01)) == pytest.approx(-0.03 + 0.02 * 0.826141, abs=1e-6)
    assert RMSE.one_sided_bound(0.06, (0.01, 0.11)) == pytest.approx(0.06 - 0.05 * 0.826141, abs=1e-6)
    assert AUC.one_sided_bound(-0.03, None) is None and AUC.one_sided_bound(-0.03, (NAN, 0.1)) is None


def test_the_rule_says_what_it_asks():
    assert AUC.describe() == ">= 0.52, change >= -0.02 or within noise"
    assert BlessingRule("m", False, None, 0.05, ChangeEvidence.POINT).describe() == "change <= +0.05"


def test_evidence_must_be_a_known_kind():
    assert BlessingConfig(evidence="point").evidence is ChangeEvidence.POINT
    with pytest.raises(ConfigError, match=r"blessing.evidence 'pvalue' not in \['interval', 'point'\]"):
        BlessingConfig(evidence="pvalue")


TASKS = make_tasks([
    TaskConfig(name="click", type="binary", label_key="click", blessing=BlessingConfig(bound=0.55, tolerance=0.01)),
    TaskConfig(name="conversion", type="binary", label_key="conversion",
               blessing=BlessingConfig(bound=0.52, tolerance=0.02)),
    TaskConfig(name="watch_time", type="regression", label_key="watch_time",
               blessing=BlessingConfig(tolerance=0.05, evidence="point")),
])


def _key(head: str, metric: str, diff: bool = False, model: str = "candidate"):
    return metrics_for_slice_pb2.MetricKey(name=metric, output_name=head, model_name=model, is_diff=diff)


def _evaluation(folder, values: dict, failures: list[tuple], missing_slices: bool = False) -> str:
    """An Evaluator's output as TFMA writes it: the candidate's overall metrics ``values`` ({(head, metric,
    is_diff): (value, interval or None)}) and a validation result failing the thresholds in ``failures``
    ((head, metric, is_diff, value))."""
    folder = str(folder)
    specs = {"modelSpecs": [{"name": "candidate"}, {"name": "baseline", "isBaseline": True}]}
    with open(os.path.join(folder, "eval_config.json"), "w") as f:
        json.dump({"version": tfma.__version__, "dataLocation": "", "fileFormat": "", "modelLocations": {},
                   "evalConfig": specs}, f)
    metrics = metrics_for_slice_pb2.MetricsForSlice(slice_key=metrics_for_slice_pb2.SliceKey())
    for (head, metric, diff), (value, interval) in values.items():
        entry = metrics.metric_keys_and_values.add(key=_key(head, metric, diff))
        entry.value.double_value.value = value
        if interval:
            entry.confidence_interval.lower_bound.double_value.value = interval[0]
            entry.confidence_interval.upper_bound.double_value.value = interval[1]
    with tf.io.TFRecordWriter(os.path.join(folder, "metrics-00000-of-00001.tfrecord")) as writer:
        writer.write(metrics.SerializeToString())
    result = validation_result_pb2.ValidationResult(validation_ok=not failures and not missing_slices)
    if failures:
        per_slice = result.metric_validations_per_slice.add()
        for head, metric, diff, value in failures:
            failure = per_slice.failures.add(metric_key=_key(head, metric, diff))
            failure.metric_value.double_value.value = value
            if diff:
                failure.metric_threshold.change_threshold.absolute.value = -0.02
            else:
                failure.metric_threshold.value_threshold.lower_bound.value = 0.55
    if missing_slices:
        result.missing_slices.append(config_pb2.SlicingSpec(feature_keys=["device"]))
    with tf.io.TFRecordWriter(os.path.join(folder, "validations.tfrecord")) as writer:
        writer.write(result.SerializeToString())
    return folder


BASE = {("click", "auc", False): (0.65, (0.63, 0.67)), ("click", "auc", True): (-0.002, (-0.01, 0.006)),
        ("watch_time", "root_mean_squared_error", True): (0.01, (-0.02, 0.04))}


def test_a_change_beyond_tolerance_whose_interval_reaches_no_change_is_within_noise(tmp_path):
    values = {**BASE, ("conversion", "auc", True): (-0.03, (-0.07, 0.01))}
    verdict = judge(_evaluation(tmp_path, values, [("conversion", "auc", True, -0.03)]), TASKS)
    assert verdict.blessed and verdict.failures == [] and verdict.failed_heads == []
    assert verdict.within_noise == [
        "conversion/auc changed by -0.03 (95% interval -0.07 to 0.01, paired on the same test events) against the "
        "baseline: worse than its tolerance 0.02, but its one-sided 95% bound +0.003046 reaches no change: within "
        "noise, not a regression (blessing.evidence: interval)"]
    assert {c.head: (c.change, c.interval, c.refused) for c in verdict.changes} == {
        "click": (-0.002, (-0.01, 0.006), False), "conversion": (-0.03, (-0.07, 0.01), False),
        "watch_time": (0.01, (-0.02, 0.04), False)}
    assert [round(c.bound, 6) for c in verdict.changes] == [0.004609, 0.003046, -0.014784]


def test_a_change_whose_whole_interval_is_worse_refuses_the_model(tmp_path):
    values = {**BASE, ("conversion", "auc", True): (-0.03, (-0.05, -0.01))}
    verdict = judge(_evaluation(tmp_path, values, [("conversion", "auc", True, -0.03)]), TASKS)
    assert not verdict.blessed and verdict.failed_heads == ["conversion"] and verdict.within_noise == []
    assert verdict.failures == [
        "conversion/auc changed by -0.03 (95% interval -0.05 to -0.01, paired on the same test events) against the "
        "baseline: worse than its tolerance 0.02, and its one-sided 95% bound -0.01348 lies below no change "
        "(blessing.evidence: interval)"]


def test_a_head_with_point_evidence_is_judged_on_the_change_alone(tmp_path):
    values = {**BASE, ("watch_time", "root_mean_squared_error", True): (0.08, (-0.02, 0.18))}
    verdict = judge(_evaluation(tmp_path, values, [("watch_time", "root_mean_squared_error", True, 0.08)]), TASKS)
    assert not verdict.blessed and verdict.failed_heads == ["watch_time"]
    assert verdict.failures[0].endswith("worse than its tolerance 0.05 (blessing.evidence: point)")


def test_without_intervals_the_change_alone_decides_and_the_line_says_so(tmp_path):
    values = {("click", "auc", False): (0.65, None), ("conversion", "auc", True): (-0.03, None)}
    verdict = judge(_evaluation(tmp_path, values, [("conversion", "auc", True, -0.03)]), TASKS)
    assert not verdict.blessed
    assert verdict.failures == [
        "conversion/auc changed by -0.03 against the baseline: worse than its tolerance 0.02, and no interval was "
        "computed (evaluation.confidence_intervals is off), so the change alone decides (blessing.evidence: interval)"]


def test_a_failed_bound_stands_whatever_the_intervals_say(tmp_path):
    values = {**BASE, ("click", "auc", False): (0.54, (0.50, 0.58)),
              ("conversion", "auc", True): (-0.03, (-0.07, 0.01))}
    failures = [("click", "auc", False, 0.54), ("conversion", "auc", True, -0.03)]
    verdict = judge(_evaluation(tmp_path, values, failures), TASKS)
    assert not verdict.blessed and verdict.failed_heads == ["click"] and len(verdict.within_noise) == 1
    assert verdict.failures == ["click/auc = 0.54 (95% interval 0.5 to 0.58): failed value_threshold { lower_bound { "
                                "value: 0.55 } }"]


def test_a_slice_tfma_could_not_judge_refuses_the_model(tmp_path):
    values = {**BASE, ("conversion", "auc", True): (-0.03, (-0.07, 0.01))}
    verdict = judge(_evaluation(tmp_path, values, [("conversion", "auc", True, -0.03)], missing_slices=True), TASKS)
    assert not verdict.blessed and len(verdict.within_noise) == 1
    assert verdict.failures[0].startswith("TFMA could not judge every threshold: ")
    assert "missing_slices" in verdict.failures[0]


def test_a_first_run_has_no_changes_and_is_blessed_by_tfma_alone(tmp_path):
    verdict = judge(_evaluation(tmp_path, {("click", "auc", False): (0.65, None)}, []), TASKS)
    assert verdict == Verdict(blessed=True)


def test_the_verdict_reads_back_as_written(tmp_path):
    values = {**BASE, ("conversion", "auc", True): (-0.03, (-0.05, -0.01))}
    os.makedirs(tmp_path / "eval")
    verdict = judge(_evaluation(tmp_path / "eval", values, [("conversion", "auc", True, -0.03)]), TASKS)
    verdict.write(str(tmp_path))
    assert Verdict.read(str(tmp_path)) == verdict
    assert Verdict.read(str(tmp_path / "eval")) is None
