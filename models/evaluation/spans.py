"""Exact span scoring of BIO tag sequences by the CoNLL-2000 ``conlleval`` rules, vectorised over a batch.

Tag ids follow one fixed scheme, so nothing here needs the tag names: id 0 is ``O``; slot type k (0, 1, 2, ...) has
id 2k + 1 (``B-<type k>``) and id 2k + 2 (``I-<type k>``). T tag ids hold T // 2 types ((T - 1) // 2 for the odd T
of the scheme).

A span is (type, start, end). It starts at ``B-X``, or at ``I-X`` when the previous token is not ``B-X`` or ``I-X`` of
the same type X (an ``I-`` without a ``B-`` starts a span, as conlleval does); it goes on over the ``I-X`` tokens
that follow and ends before ``O``, any ``B-``, an ``I-Y`` of another type, an unlabelled token or the end of the row.
A token that is not ``valid`` (weight 0: padding, or tags missing) is not part of the sequence: it is scored
neither as a token nor inside any span, and it cuts a span like a sequence boundary. A predicted span is correct only
when a gold span of the same example has its type and both its ends.

Conventions (conlleval's): precision is 0 with no predicted span, recall is 0 with no gold span, F1 is
2 * correct / (gold + predicted) (= 2PR / (P + R)), and 0 when there is neither a gold nor a predicted span.
``f1_by_type`` alone gives NaN for a type with neither (there is nothing to score), so a mean over types can skip it.
Token accuracy is NaN when no token is valid (as the heads' other accuracies with no weight).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from models import tag_decoding

OUTSIDE = 0  # the tag id of "O"


def num_types(num_tags: int) -> int:
    """The slot types that ``num_tags`` tag ids hold: (num_tags - 1) // 2 for the scheme's odd count (an even count's
    last id is the ``B-`` of one more type, which is counted)."""
    return int(num_tags) // 2


def type_of(tag_id):
    """The slot type of a tag id (2k + 1 and 2k + 2 -> k), -1 for ``O``; an int for an int, an array for an array."""
    tags = np.asarray(tag_id, np.int64)
    types = np.where(tags > 0, (tags - 1) // 2, -1)
    return int(types) if types.ndim == 0 else types


def is_begin(tag_id):
    """True for a ``B-`` tag id (odd), false for ``O`` and ``I-``; elementwise on arrays."""
    tags = np.asarray(tag_id, np.int64)
    begin = (tags > 0) & (tags % 2 == 1)
    return bool(begin) if begin.ndim == 0 else begin


def tag_id(prefix: str, type_id: int) -> int:
    """The id of ``B-`` or ``I-`` (``prefix`` "B" or "I") of slot type ``type_id``."""
    if prefix not in ("B", "I"):
        raise ValueError(f"tag prefix must be 'B' or 'I', got {prefix!r}")
    return 2 * int(type_id) + (1 if prefix == "B" else 2)


def tag_name(tag_id: int, type_names: Sequence[str]) -> str:
    """The tag's name: ``O``, ``B-<type>`` or ``I-<type>``, the type named by ``type_names[type]``."""
    tag = int(tag_id)
    if tag == OUTSIDE:
        return "O"
    if tag < 0 or type_of(tag) >= len(type_names):
        raise ValueError(f"tag id {tag} is outside the {2 * len(type_names) + 1} ids of {len(type_names)} types")
    return f"{'B' if is_begin(tag) else 'I'}-{type_names[type_of(tag)]}"


def _valid(valid, shape) -> np.ndarray:
    """[n, L] bools: ``valid`` as given (bools), or weights > 0; None means every token."""
    if valid is None:
        return np.ones(shape, bool)
    valid = np.asarray(valid)
    if valid.dtype != bool:
        valid = valid > 0
    return np.broadcast_to(valid, shape)


def _tags(tags, name: str) -> np.ndarray:
    tags = np.asarray(tags)
    if tags.ndim != 2:
        raise ValueError(f"{name} must be [examples, tokens] tag ids, got shape {tags.shape}")
    return tags.astype(np.int64)


def predicted_tags(predictions, labels_ndim: int = 2) -> np.ndarray:
    """[n, L] tag ids: ``predictions`` as given when they are tag ids ([n, L]), the most likely well-formed BIO
    sequence (``models.tag_decoding.decode``, as the served model gives) when they are [n, L, T] probabilities."""
    predictions = np.asarray(predictions)
    if predictions.ndim == labels_ndim + 1:
        return tag_decoding.decode(predictions)
    return predictions


def span_starts_ends(tags: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Every span of a batch of tag rows, as an int64 [m, 4] array of rows (example, start, end_inclusive, type),
    ordered by example, then start. ``tags``: [n, L] tag ids; ``valid``: [n, L] bools (or weights: > 0 is valid;
    None: all valid). Raises ValueError for a negative tag id on a valid token."""
    tags = _tags(tags, "tags")
    valid = _valid(valid, tags.shape)
    if (tags[valid] < 0).any():
        raise ValueError("tag ids must be >= 0 on valid tokens")
    inside = valid & (tags > 0)  # tokens in some span
    types = np.where(inside, (tags - 1) // 2, -1)
    continues = np.zeros_like(inside)  # token i extends the span of token i - 1: I-X after B-X or I-X
    continues[:, 1:] = inside[:, 1:] & (tags[:, 1:] % 2 == 0) & inside[:, :-1] & (types[:, 1:] == types[:, :-1])
    starts = inside & ~continues
    ends = inside.copy()
    ends[:, :-1] &= ~continues[:, 1:]
    first, last = np.argwhere(starts), np.argwhere(ends)  # row-major: the k-th start and k-th end are one span's
    return np.column_stack([first[:, 0], first[:, 1], last[:, 1], types[starts]]).astype(np.int64).reshape(-1, 4)


def span_counts(labels: np.ndarray, predictions: np.ndarray, valid: np.ndarray | None = None,
                num_types: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(correct, gold, predicted): int64 arrays [num_types] of span counts per type. ``labels``: [n, L] gold tag ids;
    ``predictions``: [n, L] predicted tag ids, or [n, L, T] probabilities (decoded: ``predicted_tags``);
    ``valid``: [n, L] bools or weights (> 0), None for all. ``num_types`` defaults to what the tags need (from T for
    probabilities); raises ValueError when a span's type is not below it."""
    labels = _tags(labels, "labels")
    if num_types is None:
        num_types = num_types_seen(labels, predictions, valid)
    predictions = _tags(predicted_tags(predictions), "predictions")
    if predictions.shape != labels.shape:
        raise ValueError(f"predicted tags {predictions.shape} and labels {labels.shape} differ in shape")
    valid = _valid(valid, labels.shape)
    gold, predicted = span_starts_ends(labels, valid), span_starts_ends(predictions, valid)
    for spans, name in ((gold, "gold"), (predicted, "predicted")):
        if len(spans) and spans[:, 3].max() >= num_types:
            raise ValueError(f"a {name} span has type {spans[:, 3].max()}, beyond the {num_types} types")
    n, length = labels.shape
    dims = (n, length, length, max(num_types, 1))
    _, _, matched = np.intersect1d(np.ravel_multi_index(gold.T, dims), np.ravel_multi_index(predicted.T, dims),
                                   assume_unique=True, return_indices=True)
    return tuple(np.bincount(spans[:, 3], minlength=num_types).astype(np.int64)
                 for spans in (predicted[matched], gold, predicted))


def num_types_seen(labels: np.ndarray, predictions: np.ndarray | None = None, valid: np.ndarray | None = None) -> int:
    """The types the valid labels' ids need, and at least those of the prediction width T when ``predictions`` are
    [n, L, T] probabilities (or the ids' types when they are [n, L] ids)."""
    labels = np.asarray(labels)
    valid = _valid(valid, labels.shape)
    seen = num_types(labels[valid].max() + 1) if valid.any() else 0
    if predictions is not None:
        predictions = np.asarray(predictions)
        if predictions.ndim == labels.ndim + 1:
            seen = max(seen, num_types(predictions.shape[-1]))
        elif predictions[valid].size:
            seen = max(seen, num_types(predictions[valid].max() + 1))
    return int(seen)


def precision_recall_f1(correct, gold, predicted) -> tuple[float, float, float]:
    """(precision, recall, F1) of span counts (summed over types: micro), by conlleval's conventions: precision 0
    with no predicted span, recall 0 with no gold span, F1 2 * correct / (gold + predicted), 0 with neither."""
    correct, gold, predicted = (int(np.sum(counts)) for counts in (correct, gold, predicted))
    precision = correct / predicted if predicted else 0.0
    recall = correct / gold if gold else 0.0
    f1 = 2.0 * correct / (gold + predicted) if gold + predicted else 0.0
    return float(precision), float(recall), float(f1)


def f1_by_type(correct, gold, predicted) -> np.ndarray:
    """float64 [num_types] F1 of each type from per-type counts: 2 * correct / (gold + predicted); NaN for a type
    with no gold and no predicted span."""
    correct, gold, predicted = (np.asarray(counts, np.float64) for counts in (correct, gold, predicted))
    total = gold + predicted
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, 2.0 * correct / total, np.nan)


def span_precision_recall_f1(labels: np.ndarray, predictions: np.ndarray,
                             valid: np.ndarray | None = None) -> tuple[float, float, float]:
    """Micro (precision, recall, F1) of the predicted spans over all types (conventions: ``precision_recall_f1``)."""
    return precision_recall_f1(*span_counts(labels, predictions, valid))


def span_f1(labels: np.ndarray, predictions: np.ndarray, valid: np.ndarray | None = None) -> float:
    """Micro F1 over all types of the predicted spans against the gold ones; 0.0 when there is neither a gold nor a
    predicted span (conlleval's convention). Arguments as ``span_counts``."""
    return span_precision_recall_f1(labels, predictions, valid)[2]


def token_accuracy(labels: np.ndarray, predictions: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Weighted share of the tokens whose predicted tag (decoded for probabilities: ``predicted_tags``) is the label;
    ``weights``: [n, L] weights or bools, None for all. NaN when the weights sum to 0."""
    labels = _tags(labels, "labels")
    predictions = _tags(predicted_tags(predictions), "predictions")
    weights = np.ones(labels.shape) if weights is None else np.broadcast_to(np.asarray(weights, np.float64),
                                                                            labels.shape)
    total = weights.sum()
    return float((weights * (predictions == labels)).sum() / total) if total else float("nan")
