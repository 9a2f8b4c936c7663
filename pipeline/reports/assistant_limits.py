"""The best achievable score of each head of the customer-service assistant on a span that ``data.writer`` wrote
for it (``data.assistant``): the truth beside the span (``truth.npz``) scored against the logged labels, as a model
would be, on the events that carry each label. Intent and sentiment: accuracy of the truth's most probable class
(below 1: shared templates, and sentiment drawn from its probabilities); keywords: micro ROC AUC of the truth's
probabilities over every labelled event and keyword; slots: micro span F1 of the clean tags against the
annotators' (below 1: annotation noise), by the CoNLL rules of ``models.evaluation.spans``. It sits here, above
the model code, because it scores with the model code's exact metrics.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from data.truth import ASSISTANT_TRUTH_OF_LABEL, NAMES_OF_COLUMN, load_truth
from data.writer import EVENTS_FILE
from models.evaluation.scores import roc_auc
from models.evaluation.spans import span_f1

# The score of best_achievable that each assistant label's head is judged by.
SCORE_OF_LABEL = {"intent": "intent_accuracy", "sentiment": "sentiment_accuracy", "keywords": "keyword_auc",
                  "slots": "slot_f1"}


def _labelled(examples: list, label: str) -> tuple[np.ndarray, list[list[bytes]]]:
    """The rows of the examples that carry ``label``, and its values there."""
    rows = [i for i, example in enumerate(examples) if label in example]
    return np.array(rows, np.int64), [list(examples[i][label].bytes_list.value) for i in rows]


def tag_ids(rows: list[list[bytes]], slot_types: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """BIO tag strings as ``models.evaluation.spans`` ids (O 0, B- of type k 2k + 1, I- of type k 2k + 2), padded:
    [n, L] ids and [n, L] bools (True on a token)."""
    ids = {b"O": 0}
    for k, slot in enumerate(slot_types):
        ids[b"B-" + slot], ids[b"I-" + slot] = 2 * k + 1, 2 * k + 2
    length = max((len(row) for row in rows), default=0)
    tags, valid = np.zeros((len(rows), length), np.int64), np.zeros((len(rows), length), bool)
    for i, row in enumerate(rows):
        tags[i, :len(row)] = [ids[tag] for tag in row]
        valid[i, :len(row)] = True
    return tags, valid


def best_achievable(span_dir: str | Path, event_ids: set[bytes] | None = None) -> dict[str, float]:
    """{``intent_accuracy``, ``sentiment_accuracy``, ``keyword_auc``, ``slot_f1``: the truth's score} on the
    labelled events of the assistant span in ``span_dir`` (only those in ``event_ids``, e.g. a test split, when
    given)."""
    records = tf.data.TFRecordDataset(str(Path(span_dir) / EVENTS_FILE), compression_type="GZIP")
    examples = [tf.train.Example.FromString(record.numpy()).features.feature for record in records]
    if event_ids is not None:
        examples = [example for example in examples if example["event_id"].bytes_list.value[0] in event_ids]
    truth = load_truth(span_dir, [example["event_id"].bytes_list.value[0] for example in examples])
    scores = {}
    for label in ("intent", "sentiment"):
        rows, values = _labelled(examples, label)
        column = ASSISTANT_TRUTH_OF_LABEL[label]
        best = truth[NAMES_OF_COLUMN[column]][truth[column][rows].argmax(axis=1)]
        scores[f"{label}_accuracy"] = float(np.mean(best == np.array([value[0] for value in values], np.bytes_)))
    rows, values = _labelled(examples, "keywords")
    keyword_names = truth["keyword_names"].tolist()
    multi_hot = np.zeros((len(rows), len(keyword_names)), bool)
    for i, value in enumerate(values):
        multi_hot[i, [keyword_names.index(keyword) for keyword in value]] = True
    scores["keyword_auc"] = roc_auc(multi_hot.ravel(), truth["keyword_probs"][rows].ravel())
    rows, values = _labelled(examples, "slots")
    slot_types = truth["slot_types"].tolist()
    gold, valid = tag_ids(values, slot_types)
    clean, _ = tag_ids([truth["slots_clean"][i].split() for i in rows], slot_types)
    scores["slot_f1"] = span_f1(gold, clean, valid)
    return scores
