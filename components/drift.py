"""How far a feature's distribution moved between two spans, and how far it moves by sampling alone.

The distance is TFDV's own, from the two spans' statistics: the L-infinity distance between the value frequencies
of a text feature (its rank histogram), and the Jensen-Shannon divergence (base 2) between the standard histograms
of a numeric one, both put on the union of their bucket edges with the counts spread evenly inside each bucket.
Two samples of one distribution are never at distance 0: at a few thousand events the distance between two draws
can pass a fixed threshold by chance. ``sampling_noise`` gives, for the two spans' sizes, the distance that two
samples of the pooled distribution exceed only once in a hundred (simulated from the statistics: 400 pairs of
multinomial draws, seeded); AnomalyGate calls a move drift only when it passes both that and the configured
threshold. For independent events a feature's false alarms stay near that 1%; a feature that repeats per user or
item varies more between small spans (benchmarks/results/drift-noise.md). A real move still stops the run once
the data can show it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tensorflow_metadata.proto.v0 import statistics_pb2

NOISE_QUANTILE = 0.99
NOISE_DRAWS = 400
L_INFTY, JENSEN_SHANNON = "L_INFTY", "JENSEN_SHANNON_DIVERGENCE"


@dataclass(frozen=True)
class Move:
    """A feature's distance between two spans (``kind``: L_INFTY or JENSEN_SHANNON_DIVERGENCE), the distance
    sampling alone reaches 1 time in 100 at their sizes, and those sizes (values counted)."""

    kind: str
    distance: float
    noise: float
    counts: tuple[int, int]


def feature_move(current: statistics_pb2.FeatureNameStatistics, previous: statistics_pb2.FeatureNameStatistics,
                 kind: str) -> Move | None:
    """The Move of one feature, or None when either span has no values of it to compare."""
    grids = _frequencies(current, previous) if kind == L_INFTY else _histograms(current, previous)
    if grids is None:
        return None
    now, before = grids
    counts = (int(round(now.sum())), int(round(before.sum())))
    if min(counts) == 0:
        return None
    distance = _distance(kind, now[None], before[None])[0]
    return Move(kind, float(distance), sampling_noise(kind, (now + before) / (now + before).sum(), counts), counts)


def sampling_noise(kind: str, pooled: np.ndarray, counts: tuple[int, int], seed: int = 0) -> float:
    """The NOISE_QUANTILE of the distance between two samples of sizes ``counts`` from the distribution
    ``pooled`` (frequencies over the buckets or values)."""
    rng = np.random.default_rng(seed)
    first = rng.multinomial(counts[0], pooled, size=NOISE_DRAWS).astype(float)
    second = rng.multinomial(counts[1], pooled, size=NOISE_DRAWS).astype(float)
    return float(np.quantile(_distance(kind, first, second), NOISE_QUANTILE))


def _distance(kind: str, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """[draws] distances between rows of counts ``first`` and ``second`` ([draws, buckets])."""
    p = first / first.sum(axis=1, keepdims=True)
    q = second / second.sum(axis=1, keepdims=True)
    if kind == L_INFTY:
        return np.abs(p - q).max(axis=1)
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log2(p / m), 0.0).sum(axis=1)
        kl_q = np.where(q > 0, q * np.log2(q / m), 0.0).sum(axis=1)
    return np.maximum((kl_p + kl_q) / 2, 0.0)


def _frequencies(current, previous) -> tuple[np.ndarray, np.ndarray] | None:
    ranks = [{b.label: b.sample_count for b in f.string_stats.rank_histogram.buckets} for f in (current, previous)]
    labels = sorted(set(ranks[0]) | set(ranks[1]))
    if not labels:
        return None
    return tuple(np.array([rank.get(label, 0.0) for label in labels]) for rank in ranks)


def _histograms(current, previous) -> tuple[np.ndarray, np.ndarray] | None:
    buckets = [_standard_histogram(f) for f in (current, previous)]
    if any(b is None for b in buckets):
        return None
    edges = np.unique(np.concatenate([b[:, :2].ravel() for b in buckets]))
    if len(edges) < 2:  # one value in both spans: nothing moved
        return np.ones(1), np.ones(1)
    return tuple(_rebin(b, edges) for b in buckets)


def _standard_histogram(feature) -> np.ndarray | None:
    """[buckets, (low, high, count)] of TFDV's standard (equal-width) histogram of a numeric feature."""
    stats = feature.num_stats if feature.HasField("num_stats") else None
    for histogram in stats.histograms if stats else []:
        if histogram.type == statistics_pb2.Histogram.STANDARD and histogram.buckets:
            return np.array([[b.low_value, b.high_value, b.sample_count] for b in histogram.buckets])
    return None


def _rebin(buckets: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts on the grid ``edges``, each bucket's count spread evenly over its width (a zero-width bucket's count
    into the grid cell that holds its value)."""
    out = np.zeros(len(edges) - 1)
    for low, high, count in buckets:
        if high <= low:
            out[min(max(np.searchsorted(edges, low, side="right") - 1, 0), len(out) - 1)] += count
            continue
        overlap = np.clip(np.minimum(high, edges[1:]) - np.maximum(low, edges[:-1]), 0.0, None)
        out += count * overlap / (high - low)
    return out
