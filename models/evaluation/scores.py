"""Exact metrics on arrays, for a head's ``Task.score``: the benchmarks' scores and the Bayes limits in the report.
(The Evaluator's TFMA metrics, computed over 10,000 thresholds, are in ``head_metrics``.)"""

from __future__ import annotations

import numpy as np


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Exact ROC AUC of ``scores`` for binary ``labels`` via average ranks (ties count one half)."""
    labels = np.asarray(labels).astype(bool)
    num_pos = int(labels.sum())
    num_neg = len(labels) - num_pos
    if num_pos == 0 or num_neg == 0:
        raise ValueError("roc_auc needs both positive and negative labels")
    _, inverse, counts = np.unique(np.asarray(scores), return_inverse=True, return_counts=True)
    average_rank = np.cumsum(counts) - (counts - 1) / 2.0  # 1-based mean rank of each distinct score
    rank_sum = average_rank[inverse][labels].sum()
    return float((rank_sum - num_pos * (num_pos + 1) / 2.0) / (num_pos * num_neg))


def rmse(labels: np.ndarray, means: np.ndarray) -> float:
    """Root mean squared error of ``means`` against ``labels``."""
    return float(np.sqrt(np.mean((labels - means) ** 2)))
