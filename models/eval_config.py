"""The TFMA EvalConfig, derived from the task config: per-head metrics, slices and blessing thresholds."""

import tensorflow_model_analysis as tfma

from models import signatures
from models.tasks import Task, make_tasks
from pipeline.config import PipelineConfig


def make_eval_config(config: PipelineConfig) -> tfma.EvalConfig:
    """Per head: its type's metrics, weighted by ``<task>_weight`` so missing labels count for nothing."""
    tasks = make_tasks(config)
    model_spec = tfma.ModelSpec(
        signature_name=signatures.SERVING_SIGNATURE,
        preprocessing_function_names=[signatures.TRANSFORM_SIGNATURE],
        label_keys={t.name: t.label_feature for t in tasks},
        example_weight_keys={t.name: t.weight_feature for t in tasks})
    return tfma.EvalConfig(
        model_specs=[model_spec],
        slicing_specs=[tfma.SlicingSpec()] + [tfma.SlicingSpec(feature_keys=[s]) for s in config.evaluation.slices],
        metrics_specs=[tfma.MetricsSpec(output_names=[t.name], metrics=_metric_configs(t)) for t in tasks])


def _metric_configs(task: Task) -> list[tfma.MetricConfig]:
    """The type's metrics; the key metric carries the blessing threshold, judged on the overall slice only."""
    return [tfma.MetricConfig(class_name=name, per_slice_thresholds=[
        tfma.PerSliceMetricThreshold(slicing_specs=[tfma.SlicingSpec()], threshold=_threshold(task))])
        if name == task.key_metric else tfma.MetricConfig(class_name=name)
        for name in task.tfma_metrics]


def _threshold(task: Task) -> tfma.MetricThreshold:
    """Blessing rule of one head: a bound on its key metric, and no regression beyond the tolerance."""
    blessing = task.config.blessing
    higher = task.higher_is_better
    value = None
    if blessing.bound is not None:
        bound = {"value": blessing.bound}
        value = tfma.GenericValueThreshold(**{"lower_bound" if higher else "upper_bound": bound})
    return tfma.MetricThreshold(
        value_threshold=value,
        change_threshold=tfma.GenericChangeThreshold(
            direction=tfma.MetricDirection.HIGHER_IS_BETTER if higher else tfma.MetricDirection.LOWER_IS_BETTER,
            absolute={"value": -blessing.tolerance if higher else blessing.tolerance}))
