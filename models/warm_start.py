"""Warm start: a new model begins from the weights of the model blessed on an earlier span instead of from random
ones. run_fn calls ``warm_start`` when ``model.warm_start`` is on and TFX hands the Trainer a base model (the latest
blessed one, from the same resolver the Evaluator's baseline comes from).

Vocabularies change between spans, so a vocabulary feature's embedding rows are carried over by token: a token
that moved from row 3 to row 7 keeps its vector, a new token starts from its fresh initial value and a dropped
token's row is discarded; the OOV buckets carry over bucket by bucket. Every other variable (hashed and bucketized
ids, towers, heads, balancer weights) is copied when its place in the model and its shape are the same, and kept
fresh otherwise. The optimizer starts fresh.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from config import FeatureConfig
from models.features import KINDS
from models.layers import id_table_feature

_LAYER_NUMBER = re.compile(r"(?<=/)([a-z_]+?)_\d+(?=/)")  # Keras' auto-numbered layer names: dense_3 -> dense


@dataclass
class WarmStartReport:
    """What warm_start carried over: variable paths copied whole, and per vocabulary feature the number of
    tokens that kept their row's vector; ``fresh`` lists the variables that start from their initial value."""

    copied: list[str] = field(default_factory=list)
    tokens_kept: dict[str, int] = field(default_factory=dict)
    fresh: list[str] = field(default_factory=list)

    def summary(self) -> str:
        kept = ", ".join(f"{name} {count:,} tokens" for name, count in sorted(self.tokens_kept.items()))
        return (f"warm start: {len(self.copied)} variables copied, embeddings carried by token ({kept or 'none'}), "
                f"{len(self.fresh)} fresh")


@dataclass(frozen=True)
class TokenRows:
    """Where the tokens that two vocabularies share sit: ``old[i]`` in the old vocabulary and ``new[i]`` in the new
    one (row arrays), with both vocabularies' sizes. ``between`` finds them once per feature, and carry_rows moves
    every table of that feature with them (the shared embedding, the factors, a task's own)."""

    old: np.ndarray
    new: np.ndarray
    old_size: int
    new_size: int

    @classmethod
    def between(cls, old_tokens: list[bytes], new_tokens: list[bytes]) -> TokenRows:
        """A sorted intersection of the two vocabularies. With the carry of the default model's three user_id
        tables it takes 1.8 s at 1,000,000 tokens and 23 s at 10,000,000 on these 2 cores
        (benchmarks/results/id-scale-warm-start.md)."""
        if not old_tokens or not new_tokens:
            none = np.zeros(0, np.int64)
            return cls(none, none, len(old_tokens), len(new_tokens))
        _, new_rows, old_rows = np.intersect1d(np.array(new_tokens, dtype=bytes), np.array(old_tokens, dtype=bytes),
                                               assume_unique=True, return_indices=True)
        return cls(old_rows, new_rows, len(old_tokens), len(new_tokens))


def carry_rows(old: np.ndarray, new: np.ndarray, rows: TokenRows, oov_buckets: int,
               first_row: int = 0) -> tuple[np.ndarray, int]:
    """The new embedding matrix with each shared token's old vector (``rows``: the tokens' rows 0..size-1, then
    ``oov_buckets`` OOV rows copied bucket by bucket); returns it and the tokens kept. Rows before ``first_row`` (a
    text feature's padding row) are no token's and stay as they are."""
    if first_row:
        tail, kept = carry_rows(old[first_row:], new[first_row:], rows, oov_buckets)
        return np.concatenate([new[:first_row], tail]), kept
    carried = new.copy()
    if carried.shape[1:] != old.shape[1:] or not rows.old_size or not rows.new_size:
        return carried, 0
    carried[rows.new] = old[rows.old]
    for bucket in range(oov_buckets):
        old_row, new_row = rows.old_size + bucket, rows.new_size + bucket
        if old_row < len(old) and new_row < len(carried):
            carried[new_row] = old[old_row]
    return carried, len(rows.new)


def variable_paths(variables) -> dict[str, list[tf.Variable]]:
    """{path below the model's root, without ':0' and Keras' layer numbers: [variables in creation order]} of a
    model's variables; the numbering (dense_3, multi_task_model_1) depends on what else the process built, the
    place in the model does not."""
    paths = defaultdict(list)
    for variable in variables:
        name = variable.name.split(":")[0]
        if "/" in name:  # the model's own variables (metric totals and counts have bare names), below its root
            paths[_LAYER_NUMBER.sub(r"\1", "/" + name.split("/", 1)[1])].append(variable)
    return paths


def warm_start(model, base_model_dir: str, tf_transform_output, features: list[FeatureConfig]) -> WarmStartReport:
    """Assigns the built ``model``'s variables from the SavedModel pushed at ``base_model_dir`` (its vocabulary
    files in assets/), as the module docstring says; returns what it did."""
    base = tf.saved_model.load(base_model_dir)
    old_paths = variable_paths(base.model.variables)
    vocabularies = {f.name: f for f in features if KINDS[f.kind].vocabulary}
    token_rows: dict[str, TokenRows | None] = {}  # per feature, for each of its tables
    report = WarmStartReport()
    for path, variables in variable_paths(model.weights).items():
        olds = old_paths.get(path, [])
        feature = _embedded_feature(path)
        for index, variable in enumerate(variables):
            old = olds[index].numpy() if index < len(olds) else None
            if old is not None and feature in vocabularies:
                if feature not in token_rows:
                    old_tokens = _vocabulary_file(os.path.join(base_model_dir, "assets", feature))
                    token_rows[feature] = None if old_tokens is None else TokenRows.between(
                        old_tokens, tf_transform_output.vocabulary_by_name(feature))
                if token_rows[feature] is not None:
                    value, kept = carry_rows(old, variable.numpy(), token_rows[feature],
                                             vocabularies[feature].oov_buckets,
                                             first_row=1 if KINDS[vocabularies[feature].kind].sequence else 0)
                    variable.assign(value)
                    report.tokens_kept[feature] = kept
                    continue
            if old is not None and old.shape == tuple(variable.shape):
                variable.assign(old)
                report.copied.append(path)
            else:
                report.fresh.append(path)
    return report


def _embedded_feature(path: str) -> str | None:
    """The feature whose ids index the id table at variable ``path`` (``.../<feature>_embedding/embeddings``), or
    None for any other variable."""
    *_, layer, variable = path.split("/")
    return id_table_feature(layer) if variable == "embeddings" else None


def _vocabulary_file(path: str) -> list[bytes] | None:
    """The tokens of a Transform vocabulary file (one per line), or None when the base model has none."""
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path, "rb") as f:
        return [line.rstrip(b"\n") for line in f]
