"""The TFMA EvalConfig, derived from the task config: per-head metrics, slices and blessing thresholds.

Built from TFMA's protos (``tensorflow_model_analysis.proto.config_pb2``), which every TFMA release exports. Each
metric and plot a task names (in TFMA's words) is computed by its vectorised twin in ``head_metrics``
(``AUC`` -> ``HeadAUC``), which gives the same names and values at a tenth of the cost.
"""

import json

from tensorflow_model_analysis.proto import config_pb2

from config import PipelineConfig
from models import signatures
from models.evaluation.blessing import BlessingRule
from models.tasks import Task, make_tasks

HEAD_METRICS_MODULE = "models.evaluation.head_metrics"  # where TFMA finds the Head* metric classes
PLOT_BUCKETS = 20


def make_eval_config(config: PipelineConfig) -> config_pb2.EvalConfig:
    """The Evaluator's EvalConfig; create_pipeline calls it. Per head: its type's metrics, weighted by
    ``<task>_weight`` so missing labels count for nothing; slices: overall and each configured feature; TFMA's
    jackknife intervals when ``evaluation.confidence_intervals``."""
    tasks = make_tasks(config.tasks)
    model_spec = config_pb2.ModelSpec(
        signature_name=signatures.SERVING_SIGNATURE,
        preprocessing_function_names=[signatures.TRANSFORM_SIGNATURE],
        label_keys={t.name: t.label_feature for t in tasks},
        example_weight_keys={t.name: t.weight_feature for t in tasks})
    slicing_specs = [config_pb2.SlicingSpec()]
    slicing_specs += [config_pb2.SlicingSpec(feature_keys=[name]) for name in config.evaluation.slices]
    options = config_pb2.Options()
    if config.evaluation.confidence_intervals:
        options.compute_confidence_intervals.value = True
        options.confidence_intervals.method = config_pb2.ConfidenceIntervalOptions.JACKKNIFE
    return config_pb2.EvalConfig(
        model_specs=[model_spec],
        slicing_specs=slicing_specs,
        metrics_specs=[config_pb2.MetricsSpec(output_names=[t.name], metrics=_metric_configs(t)) for t in tasks],
        options=options)


def _metric_configs(task: Task) -> list[config_pb2.MetricConfig]:
    """The type's metrics and plots, all over one shared summary of the head; the key metric carries the blessing
    threshold, judged on the overall slice only."""
    summary = json.dumps({"parts": list(task.summary_parts), "plot_range": list(task.plot_range),
                          "plot_buckets": PLOT_BUCKETS})[1:-1]
    metrics = []
    for name in (*task.tfma_metrics, *task.tfma_plots):
        metric = config_pb2.MetricConfig(class_name=f"Head{name}", module=HEAD_METRICS_MODULE, config=summary)
        if name == task.key_metric:
            metric.per_slice_thresholds.append(config_pb2.PerSliceMetricThreshold(
                slicing_specs=[config_pb2.SlicingSpec()], threshold=_threshold(task.blessing_rule)))
        metrics.append(metric)
    return metrics


def _threshold(rule: BlessingRule) -> config_pb2.MetricThreshold:
    """TFMA's threshold for a head's blessing rule: a bound on its key metric, and no regression beyond the
    tolerance against the baseline."""
    higher = rule.higher_is_better
    threshold = config_pb2.MetricThreshold(change_threshold=config_pb2.GenericChangeThreshold(
        direction=config_pb2.MetricDirection.HIGHER_IS_BETTER if higher else config_pb2.MetricDirection.LOWER_IS_BETTER,
        absolute={"value": -rule.tolerance if higher else rule.tolerance}))
    if rule.bound is not None:
        bound = threshold.value_threshold.lower_bound if higher else threshold.value_threshold.upper_bound
        bound.value = rule.bound
    return threshold
