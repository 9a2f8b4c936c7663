"""The parts of a head's summary (``head_metrics.HeadSummary``) that a task's TFMA metrics and plots read; each
task type names the parts it needs (``Task.summary_parts``). Sums of weights, labels and predictions are always
gathered."""

from enum import StrEnum


class Part(StrEnum):
    RANKING = "ranking"  # weighted positives and negatives in 9,999 bins of the prediction: AUCs
    ERRORS = "errors"  # weighted squared and absolute errors: RMSE, MAE
    CALIBRATION = "calibration"  # weight, label and prediction per bucket of plot_range: the calibration plot
    CLASSES = "classes"  # the label is a class id; weight per (true, most likely) class: accuracy, confusion matrix
    MICRO = "micro"  # the label is a list; every (example, label) pair is one weighted point (micro-averaging)
    SPANS = "spans"  # the label is a BIO tag id per token: token accuracy and span counts per type
