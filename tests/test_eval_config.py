"""The TFMA EvalConfig derived from the task config."""

from tensorflow_model_analysis.proto import config_pb2

from config import DEFAULT_CONFIG, PipelineConfig
from models.evaluation.eval_config import make_eval_config

CONFIG = PipelineConfig.from_yaml(DEFAULT_CONFIG)


def test_labels_and_weights_per_head_come_from_the_transform_signature():
    (spec,) = make_eval_config(CONFIG).model_specs
    assert spec.signature_name == "serving_default"
    assert list(spec.preprocessing_function_names) == ["transform_features"]
    assert dict(spec.label_keys) == {t.name: f"{t.name}_label" for t in CONFIG.tasks}
    assert dict(spec.example_weight_keys) == {t.name: f"{t.name}_weight" for t in CONFIG.tasks}


def test_overall_and_configured_slices():
    slicing = make_eval_config(CONFIG).slicing_specs
    assert [list(s.feature_keys) for s in slicing] == [[], ["device"], ["item_category"]]


def test_metrics_per_head_by_task_type_from_the_head_metrics_module():
    by_head = {tuple(s.output_names): [m.class_name for m in s.metrics]
               for s in make_eval_config(CONFIG).metrics_specs}
    assert by_head[("click",)] == ["HeadExampleCount", "HeadWeightedExampleCount", "HeadAUC",
                                   "HeadAUCPrecisionRecall", "HeadCalibration", "HeadMeanLabel",
                                   "HeadMeanPrediction", "HeadCalibrationPlot"]
    assert {"HeadRootMeanSquaredError", "HeadMeanAbsoluteError"} <= set(by_head[("watch_time",)])
    assert by_head[("interest",)] == ["HeadExampleCount", "HeadWeightedExampleCount",
                                      "HeadSparseCategoricalAccuracy", "HeadMultiClassConfusionMatrixPlot"]
    modules = {m.module for s in make_eval_config(CONFIG).metrics_specs for m in s.metrics}
    assert modules == {"models.evaluation.head_metrics"}


def test_a_head_metrics_share_one_summary_regression_over_its_plot_range():
    (spec,) = [s for s in make_eval_config(CONFIG).metrics_specs if list(s.output_names) == ["watch_time"]]
    assert {m.config for m in spec.metrics} == {
        '"parts": ["errors", "calibration"], "plot_range": [0.0, 10.0], "plot_buckets": 20'}


def _threshold(head: str, metric: str) -> config_pb2.MetricThreshold:
    (spec,) = [s for s in make_eval_config(CONFIG).metrics_specs if list(s.output_names) == [head]]
    (config,) = [m for m in spec.metrics if m.class_name == f"Head{metric}"]
    (per_slice,) = config.per_slice_thresholds
    assert [list(s.feature_keys) for s in per_slice.slicing_specs] == [[]]  # judged on the overall slice only
    return per_slice.threshold


def test_blessing_thresholds_higher_is_better():
    threshold = _threshold("click", "AUC")
    assert threshold.value_threshold.lower_bound.value == 0.55
    assert threshold.change_threshold.direction == config_pb2.MetricDirection.HIGHER_IS_BETTER
    assert threshold.change_threshold.absolute.value == -0.01


def test_blessing_thresholds_lower_is_better():
    threshold = _threshold("watch_time", "RootMeanSquaredError")
    assert threshold.value_threshold.upper_bound.value == 3.0
    assert threshold.change_threshold.direction == config_pb2.MetricDirection.LOWER_IS_BETTER
    assert threshold.change_threshold.absolute.value == 0.05
