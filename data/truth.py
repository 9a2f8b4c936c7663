"""The truth side file of a span.

``truth.npz`` beside each span's events holds the true probability / mean behind every label, aligned with the
event order: for the recommendation world (``data.world``) ``event_id``, ``p_click``, ``p_conversion``,
``watch_time_mean``, ``interest_probs``, ``reaction_probs``; for the assistant (``data.assistant``) ``event_id``,
``intent_probs``, ``sentiment_probs``, ``keyword_probs``, ``slots_clean``, and the name tables that say which label
string each of their columns stands for (``NAMES_OF_COLUMN``). ``data.writer`` saves it; the pipeline's report and
the benchmarks load it, and each head's task scores the truth column of its label (``TRUTH_OF_LABEL``) as it scores
a model: that is the head's best achievable metric (``pipeline.reports.assistant_limits`` for the
assistant's heads).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

TRUTH_FILE = "truth.npz"
# The truth column behind each label column the generator writes: a probability, a mean, or one per class or label.
TRUTH_OF_LABEL = {"click": "p_click", "conversion": "p_conversion", "watch_time": "watch_time_mean",
                  "interest": "interest_probs", "reactions": "reaction_probs"}
# The assistant's labels and their truth columns (pipeline.reports.assistant_limits scores them).
ASSISTANT_TRUTH_OF_LABEL = {"intent": "intent_probs", "sentiment": "sentiment_probs", "keywords": "keyword_probs",
                            "slots": "slots_clean"}
# The name table of a truth column's classes (slots_clean: the slot types of its B-/I- tags); one row per class,
# not per event.
NAMES_OF_COLUMN = {"intent_probs": "intent_names", "sentiment_probs": "sentiment_names",
                   "keyword_probs": "keyword_names", "slots_clean": "slot_types"}
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
    their rows in that order (name tables as they are)."""
    with np.load(Path(span_dir) / TRUTH_FILE) as archive:
        truth = {name: archive[name] for name in archive.files}
    if event_ids is None:
        return truth
    row = {event: i for i, event in enumerate(truth["event_id"].astype(bytes).tolist())}
    index = np.array([row[event] for event in event_ids], np.int64)
    tables = set(NAMES_OF_COLUMN.values())
    return {name: values if name in tables else values[index] for name, values in truth.items()}
