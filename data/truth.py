"""The truth side file of a span and the metrics scored against it.

``truth.npz`` beside each span's events holds the true probability / mean behind every label (``event_id``,
``p_click``, ``p_conversion``, ``watch_time_mean``, ``interest_probs``, ``reaction_probs``), aligned with the
event order. ``data.writer`` saves it; the pipeline's report and the benchmarks load it and score the best
achievable metrics (``bayes_limits``) next to a model's.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

TRUTH_FILE = "truth.npz"
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def save_truth(span_dir: str | Path, truth: dict[str, np.ndarray]) -> Path:
    """Write ``truth`` to ``span_dir/truth.npz``; return that path.

    Like np.savez_compressed, but with fixed zip timestamps so the bytes are reproducible.
    """
    path = Path(span_dir) / TRUTH_FILE
    with zipfile.ZipFile(path, "w") as archive:
        for name, array in truth.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_DATE)
            archive.writestr(info, buffer.getvalue(), compress_type=zipfile.ZIP_DEFLATED)
    return path


def load_truth(span_dir: str | Path, event_ids: Sequence[bytes] | None = None) -> dict[str, np.ndarray]:
    """Read the truth arrays written next to a span's events and return them by name; with ``event_ids``,
    their rows in that order."""
    with np.load(Path(span_dir) / TRUTH_FILE) as archive:
        truth = {name: archive[name] for name in archive.files}
    if event_ids is None:
        return truth
    row = {event: i for i, event in enumerate(truth["event_id"].astype(bytes).tolist())}
    index = np.array([row[event] for event in event_ids])
    return {name: values[index] for name, values in truth.items()}


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


def _present(label: np.ndarray) -> np.ndarray:
    """True where a label column (row) holds a real value (neither NaN nor the -1 sentinel)."""
    real = ~np.isnan(label) & (label != -1)
    return real.reshape(len(label), -1).all(axis=1)


def rmse(labels: np.ndarray, means: np.ndarray) -> float:
    """Root mean squared error of ``means`` against ``labels``."""
    return float(np.sqrt(np.mean((labels - means) ** 2)))


# Per label column: the name of its limit, and that limit from (present labels, truth of those events).
_LIMITS = {
    "click": ("click_auc", lambda y, truth: roc_auc(y, truth["p_click"])),
    "conversion": ("conversion_auc", lambda y, truth: roc_auc(y, truth["p_conversion"])),
    "watch_time": ("watch_time_rmse", lambda y, truth: rmse(y, truth["watch_time_mean"])),
    "interest": ("interest_accuracy", lambda y, truth: float(np.mean(truth["interest_probs"].argmax(axis=1) == y))),
    # Micro-averaged: every (event, reaction) pair is one point, as TFMA scores a multi-hot label.
    "reactions": ("reactions_auc", lambda y, truth: roc_auc(y.ravel(), truth["reaction_probs"].ravel())),
}


def bayes_limits(truth: dict[str, np.ndarray], labels: dict[str, np.ndarray]) -> dict[str, float]:
    """Best achievable metrics: the true probabilities / means scored against the sampled labels, for each
    label column in ``labels`` (over the events where it is present). Returns {limit name: value}, e.g.
    ``click_auc``, ``watch_time_rmse``, ``interest_accuracy``."""
    limits = {}
    for name, label in labels.items():
        key, limit = _LIMITS[name]
        present = _present(label)
        limits[key] = limit(label[present], {k: v[present] for k, v in truth.items()})
    return limits
