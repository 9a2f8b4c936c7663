"""The typed pipeline config: the one source of truth for features, tasks, model and evaluation.

A YAML file (``pipeline/configs/default.yaml`` describes the bundled logs) is loaded into frozen dataclasses;
the preprocessing_fn, the model, its losses and metrics, the TFMA EvalConfig and the serving signatures are all
derived from it. Unknown keys, kinds and types are rejected with a message naming them.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

FEATURE_KINDS = ("vocabulary", "hash", "bucketized", "zscore", "log")
CATEGORICAL_KINDS = ("vocabulary", "hash", "bucketized")
TASK_TYPES = ("binary", "regression", "multiclass", "multilabel")
ARCHITECTURES = ("shared_bottom", "mmoe", "ple")
BALANCING = ("fixed", "uncertainty", "gradnorm", "pcgrad")
LOSS_NORMALIZATIONS = ("per_label", "per_example")
DEFAULT_CONFIG = Path(__file__).parent / "configs" / "default.yaml"


class ConfigError(ValueError):
    """A config file that cannot describe a pipeline."""


@dataclass(frozen=True)
class FeatureConfig:
    """One raw log feature and how Transform turns it into a model input."""

    name: str
    kind: str
    embedding_dim: int = 8
    top_k: int | None = None
    oov_buckets: int = 1
    hash_buckets: int = 0
    boundaries: tuple[float, ...] = ()

    def __post_init__(self):
        _require(self.kind in FEATURE_KINDS, f"feature '{self.name}': kind '{self.kind}' not in {FEATURE_KINDS}")
        if self.kind == "vocabulary":
            _require(self.oov_buckets >= 1, f"feature '{self.name}': oov_buckets must be >= 1")
        if self.kind == "hash":
            _require(self.hash_buckets >= 2, f"feature '{self.name}': hash needs hash_buckets >= 2")
        if self.kind == "bucketized":
            _require(list(self.boundaries) == sorted(self.boundaries) and self.boundaries,
                     f"feature '{self.name}': bucketized needs sorted, non-empty boundaries")

    @property
    def is_categorical(self) -> bool:
        return self.kind in CATEGORICAL_KINDS


@dataclass(frozen=True)
class BlessingConfig:
    """What a head must reach to be blessed: a bound on its key metric and a tolerance against the baseline."""

    bound: float | None = None
    tolerance: float = 0.01


@dataclass(frozen=True)
class TaskConfig:
    """One prediction head: its label, loss weight, tower and blessing rule."""

    name: str
    type: str
    label_key: str
    loss_weight: float = 1.0
    tower: tuple[int, ...] = (32,)
    dropout: float = 0.0
    batch_norm: bool = False
    l2: float = 0.0
    lr_multiplier: float = 1.0
    num_classes: int = 0
    missing_value: float | None = -1
    blessing: BlessingConfig = field(default_factory=BlessingConfig)

    def __post_init__(self):
        _require(self.type in TASK_TYPES, f"task '{self.name}': type '{self.type}' not in {TASK_TYPES}")
        _require(self.loss_weight >= 0, f"task '{self.name}': loss_weight must be >= 0")
        if self.type in ("multiclass", "multilabel"):
            _require(self.num_classes >= 2, f"task '{self.name}': {self.type} needs num_classes >= 2")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture, loss balancing, sizes and optimisation of the multi-task model.

    shared_bottom uses ``shared_layers`` (empty: no shared hidden layer). mmoe uses ``experts`` experts of
    ``expert_layers``; ple uses ``experts`` shared and ``task_experts`` per-task experts in ``levels`` levels
    (1 level is CGC). ``esmm_tasks`` (ctr, cvr) trains the cvr head through pCTCVR = pCTR x pCVR on every
    impression. ``dot_interaction`` names categorical features (at least two, equal embedding_dim) whose
    embeddings' pairwise dot products join the encoded input, e.g. user_id . item_id. ``fusion`` adds a served
    ``fusion_score``: sum of weight x head (log1p for regression heads). ``loss_normalization``: per_label
    trains on each task's mean loss over its present labels; per_example scales it by the share of the batch
    with that label, so every labelled example weighs the same in every task.
    """

    architecture: str = "shared_bottom"
    shared_layers: tuple[int, ...] = (64, 32)
    experts: int = 4
    expert_layers: tuple[int, ...] = (64,)
    task_experts: int = 1
    levels: int = 1
    balancing: str = "fixed"
    loss_normalization: str = "per_label"
    gradnorm_alpha: float = 1.5
    esmm_tasks: tuple[str, ...] = ()
    fusion: dict[str, float] = field(default_factory=dict)
    dot_interaction: tuple[str, ...] = ()
    clip_norm: float | None = None
    jit_compile: bool = False
    embedding_l2: float = 0.0
    learning_rate: float = 1e-3
    batch_size: int = 256
    train_steps: int = 1000
    eval_steps: int = 50
    epochs: int = 10
    early_stopping_patience: int = 2
    seed: int = 0

    def __post_init__(self):
        _require(1 <= self.epochs <= self.train_steps, "model.epochs must be in [1, train_steps]")
        _require(self.architecture in ARCHITECTURES, f"model.architecture '{self.architecture}' not in {ARCHITECTURES}")
        _require(self.balancing in BALANCING, f"model.balancing '{self.balancing}' not in {BALANCING}")
        _require(self.loss_normalization in LOSS_NORMALIZATIONS,
                 f"model.loss_normalization '{self.loss_normalization}' not in {LOSS_NORMALIZATIONS}")
        _require(self.experts >= 1 and self.task_experts >= 0 and self.levels >= 1,
                 "model: experts >= 1, task_experts >= 0 and levels >= 1")
        _require(len(self.esmm_tasks) in (0, 2), "model.esmm_tasks must name (ctr_task, cvr_task) or nothing")


@dataclass(frozen=True)
class DataConfig:
    """Where the logs are and how ImportExampleGen splits them.

    Each run ingests one span (``span``: the latest, or N); Transform and Trainer use the newest
    ``train_spans`` spans ingested so far (earlier spans are ingested by earlier runs, e.g. ``--span 1``).
    """

    log_root: str = "data/logs"
    span: str = "latest"
    train_spans: int = 1
    presplit: bool = False
    train_buckets: int = 4
    eval_buckets: int = 1
    schema_path: str | None = None

    def __post_init__(self):
        _require(self.span == "latest" or self.span.isdigit(), f"data.span '{self.span}' is not 'latest' or N")
        _require(self.train_spans >= 1, "data.train_spans must be >= 1")


@dataclass(frozen=True)
class EvaluationConfig:
    """TFMA slices (raw feature names) beside the overall slice."""

    slices: tuple[str, ...] = ()


@dataclass(frozen=True)
class PipelineConfig:
    """The whole pipeline, as one YAML file declares it."""

    name: str
    features: tuple[FeatureConfig, ...]
    tasks: tuple[TaskConfig, ...]
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)

    def __post_init__(self):
        _require(re.fullmatch(r"[a-z0-9][a-z0-9-]{0,127}", self.name),
                 f"name '{self.name}' must match [a-z0-9][a-z0-9-]{{0,127}} (Kubeflow pipeline and model names)")
        _require(self.features and self.tasks, "a pipeline needs at least one feature and one task")
        _require_unique("feature", [f.name for f in self.features])
        _require_unique("task", [t.name for t in self.tasks])
        feature_names = {f.name for f in self.features}
        for task in self.tasks:
            _require(task.label_key not in feature_names, f"task '{task.name}': label '{task.label_key}' is a feature")
        types = {t.name: t.type for t in self.tasks}
        for name in (*self.model.esmm_tasks, *self.model.fusion):
            _require(name in types, f"model: '{name}' is not a task")
        _require(all(types[n] == "binary" for n in self.model.esmm_tasks), "model.esmm_tasks must be binary tasks")
        _require(all(types[n] in ("binary", "regression") for n in self.model.fusion),
                 "model.fusion takes binary and regression tasks (one score per example)")
        self._check_dot_interaction()
        for name in self.evaluation.slices:
            _require(name in feature_names, f"evaluation slice '{name}' is not a declared feature")

    def _check_dot_interaction(self):
        names = self.model.dot_interaction
        if not names:
            return
        _require(len(names) >= 2 and len(set(names)) == len(names),
                 "model.dot_interaction needs at least two distinct features")
        categorical = {f.name: f.embedding_dim for f in self.features if f.is_categorical}
        for name in names:
            _require(name in categorical, f"model.dot_interaction: '{name}' is not a categorical feature")
        dims = {name: categorical[name] for name in names}
        _require(len(set(dims.values())) == 1, f"model.dot_interaction needs equal embedding_dim, got {dims}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PipelineConfig:
        return _build(cls, data, "config")

    @classmethod
    def from_yaml(cls, path: str | Path) -> PipelineConfig:
        with open(path) as f:
            return cls.from_dict(yaml.safe_load(f))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict that ``from_dict`` turns back into an equal config."""
        return dataclasses.asdict(self)

    def replace(self, **changes) -> PipelineConfig:
        return dataclasses.replace(self, **changes)


_NESTED = {
    (PipelineConfig, "features"): FeatureConfig,
    (PipelineConfig, "tasks"): TaskConfig,
    (PipelineConfig, "model"): ModelConfig,
    (PipelineConfig, "data"): DataConfig,
    (PipelineConfig, "evaluation"): EvaluationConfig,
    (TaskConfig, "blessing"): BlessingConfig,
}


def _build(cls, data: Any, where: str):
    """Builds dataclass ``cls`` from plain YAML data, naming the place of any unknown or missing key."""
    _require(isinstance(data, dict), f"{where}: expected a mapping, got {type(data).__name__}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(known))
    _require(not unknown, f"{where}: unknown key(s) {unknown}; known: {sorted(known)}")
    kwargs = {}
    for name, value in data.items():
        nested = _NESTED.get((cls, name))
        if nested and isinstance(value, (list, tuple)):
            value = tuple(_build(nested, item, f"{where}.{name}[{i}]") for i, item in enumerate(value))
        elif nested:
            value = _build(nested, value, f"{where}.{name}")
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise ConfigError(f"{where}: {e}") from None


def _require(condition: Any, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _require_unique(what: str, names: list[str]) -> None:
    duplicates = sorted({n for n in names if names.count(n) > 1})
    _require(not duplicates, f"duplicate {what} name(s): {duplicates}")
