"""The blessing verdict on an Evaluator's output: TFMA's validation, with each head's change against the baseline
judged by its blessing rule's evidence (``BlessingRule.refuses_change``) instead of its point estimate alone.

TFMA judges a change threshold on the change measured on every test event. Two models equal but for their
training seed differ on a few hundred labelled test events by more than a head's tolerance often enough (on the
bundled logs, conversion's AUC moves by several hundredths between seeds: benchmarks/results/blessing-noise.md), so
a point estimate refuses good models and passes worse ones by chance. TFMA also computes the change's 95% jackknife
interval, paired on the same events (``evaluation.confidence_intervals``); a rule with ``interval`` evidence calls
a change a regression only when the interval shows it worse at all as well (a one-sided test at the 5% level).
Everything else TFMA found stands: bounds on a metric, missing slices and thresholds. Called by
``components.blessing_gate`` and benchmarks/blessing_noise.py.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import tensorflow as tf
import tensorflow_model_analysis as tfma

from config import ChangeEvidence
from models.evaluation.blessing import BlessingRule
from models.evaluation.results import metric_interval, metric_value, overall_metrics
from models.tasks import Task

DIFF_SUFFIX = "_diff"  # TFMA's name for a metric's change against the baseline in its loaded results
VERDICT_FILE = "verdict.json"  # in the blessing gate's ModelBlessing


@dataclass(frozen=True)
class HeadChange:
    """A head's key metric against the baseline on the overall slice: candidate minus baseline, its 95% paired
    interval (None: not computed), the better end of its one-sided 95% interval (``BlessingRule.one_sided_bound``),
    and whether the head's rule calls it a regression."""

    head: str
    metric: str
    change: float
    interval: tuple[float, float] | None
    bound: float | None
    refused: bool


@dataclass
class Verdict:
    """``blessed``; ``changes``: every head's change (none on a run without a baseline); ``failures``: one line
    per failed threshold that stands, and ``failed_heads`` the heads they name; ``within_noise``: one line per
    change beyond its tolerance that the interval does not support, and so does not refuse the model."""

    blessed: bool
    changes: list[HeadChange] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    failed_heads: list[str] = field(default_factory=list)
    within_noise: list[str] = field(default_factory=list)

    def write(self, folder: str) -> None:
        """Writes the verdict as ``VERDICT_FILE`` in ``folder``."""
        changes = [vars(c) | {"interval": list(c.interval) if c.interval else None} for c in self.changes]
        with tf.io.gfile.GFile(os.path.join(folder, VERDICT_FILE), "w") as f:
            json.dump({**vars(self), "changes": changes}, f, indent=1)

    @classmethod
    def read(cls, folder: str) -> Verdict | None:
        """The verdict written in ``folder``; None where there is none."""
        path = os.path.join(folder, VERDICT_FILE)
        if not tf.io.gfile.exists(path):
            return None
        with tf.io.gfile.GFile(path) as f:
            data = json.load(f)
        changes = [HeadChange(**{**c, "interval": tuple(c["interval"]) if c["interval"] else None})
                   for c in data.pop("changes")]
        return cls(**data, changes=changes)


def judge(evaluation_uri: str, tasks: list[Task]) -> Verdict:
    """The verdict on the Evaluator's output at ``evaluation_uri`` (its validation result and metrics) for the
    heads ``tasks`` describe."""
    validation = tfma.load_validation_result(evaluation_uri)
    metrics = overall_metrics(evaluation_uri)
    rules = {task.name: task.blessing_rule for task in tasks}
    changes = {}
    for task in tasks:
        value = metrics.get(task.name, {}).get(task.key_metric_name + DIFF_SUFFIX)
        change = None if value is None else metric_value(value)
        if change is not None:
            interval = metric_interval(value)
            rule = rules[task.name]
            changes[task.name] = HeadChange(task.name, task.key_metric_name, change, interval,
                                            rule.one_sided_bound(change, interval),
                                            rule.refuses_change(change, interval))
    verdict = Verdict(blessed=bool(validation.validation_ok), changes=list(changes.values()))
    for per_slice in validation.metric_validations_per_slice:
        for failure in per_slice.failures:
            key = failure.metric_key
            rule = rules.get(key.output_name)
            change = changes.get(key.output_name) if key.is_diff else None
            if change is not None and rule is not None and not change.refused:
                verdict.within_noise.append(_change_line(change, rule))
                continue
            verdict.failures.append(_change_line(change, rule) if change is not None and rule is not None
                                    else _bound_line(failure, metrics.get(key.output_name, {})))
            if key.output_name not in verdict.failed_heads:
                verdict.failed_heads.append(key.output_name)
    unjudged = validation.missing_slices or validation.missing_thresholds or validation.missing_cross_slices
    verdict.blessed = verdict.blessed or (not verdict.failures and not unjudged)
    if not verdict.blessed and not verdict.failures:
        verdict.failures.append("TFMA could not judge every threshold: " + " ".join(str(validation).split())[:500])
    return verdict


def _change_line(change: HeadChange, rule: BlessingRule) -> str:
    """e.g. 'conversion/auc changed by -0.031 (95% interval -0.055 to -0.007, paired on the same test events)
    against the baseline: worse than its tolerance 0.02, and its one-sided 95% bound -0.011 lies below no change
    (blessing.evidence: interval)'."""
    within = (f" (95% interval {change.interval[0]:.4g} to {change.interval[1]:.4g}, paired on the same test "
              "events)") if change.interval else ""
    head = f"{change.head}/{change.metric} changed by {change.change:+.4g}{within} against the baseline: worse than " \
           f"its tolerance {rule.tolerance:g}"
    if rule.evidence == ChangeEvidence.POINT:
        return f"{head} (blessing.evidence: point)"
    if change.bound is None:
        return f"{head}, and no interval was computed (evaluation.confidence_intervals is off), so the change " \
               "alone decides (blessing.evidence: interval)"
    side = "below" if rule.higher_is_better else "above"
    if change.refused:
        return f"{head}, and its one-sided 95% bound {change.bound:+.4g} lies {side} no change " \
               "(blessing.evidence: interval)"
    return f"{head}, but its one-sided 95% bound {change.bound:+.4g} reaches no change: within noise, not a " \
           "regression (blessing.evidence: interval)"


def _bound_line(failure, head_metrics: dict) -> str:
    """A failed threshold other than a head's change, e.g. a bound: 'click/auc = 0.51 (95% interval 0.49 to
    0.53): failed value_threshold { lower_bound { value: 0.55 } }'."""
    key = failure.metric_key
    name = key.name + (DIFF_SUFFIX if key.is_diff else "")
    bounds = metric_interval(head_metrics.get(name, {}))
    within = f" (95% interval {bounds[0]:.4g} to {bounds[1]:.4g})" if bounds else ""
    measured = "changed by" if key.is_diff else "="
    return (f"{key.output_name}/{key.name} {measured} {failure.metric_value.double_value.value:.4g}{within}: failed "
            + " ".join(str(failure.metric_threshold).split()))
