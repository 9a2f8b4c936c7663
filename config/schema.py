"""The typed pipeline config: the one source of truth for features, tasks, model, data and evaluation.

A YAML file (``config/default.yaml`` describes the bundled logs) is loaded into frozen dataclasses; the
preprocessing_fn, the model, its losses and metrics, the TFMA EvalConfig and the serving signatures are all
derived from it. Every key is checked for its type (int, float, bool, text, lists of them) and its range, and
every name against ``config.registry``; errors name the setting and the value.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

from config.errors import ConfigError
from config.registry import (
    Architecture,
    Balancing,
    ChangeEvidence,
    Distribution,
    FeatureKind,
    HeadCopies,
    IdUpdates,
    LossNormalization,
    SequenceEncoder,
    TaskType,
    TextSharing,
    Tokenizer,
    ValueCounts,
)

DEFAULT_CONFIG = Path(__file__).parent / "default.yaml"
# Task, feature, label and slice names become metric keys, file names (vocabularies, TensorBoard runs), tensor and
# signature output names: letters, digits and underscores, starting with a letter.
SAFE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")


@dataclass(frozen=True)
class FeatureConfig:
    """One raw log feature and how Transform turns it into a model input. A vocabulary keeps the ``top_k`` most
    frequent tokens seen at least ``frequency_threshold`` times (0: every token); the others share
    ``oov_buckets`` ids.

    A ``text`` feature is an utterance: lowercased (``lowercase``), cut by ``tokenizer``, its first ``max_tokens``
    tokens mapped to ids by a vocabulary over tokens (``top_k``, ``frequency_threshold``, ``oov_buckets``) or, with
    ``hash_buckets``, by hashing; the model embeds them (``embedding_dim``) and ``encoder`` (``encoder_units``,
    ``encoder_layers``) turns them into per-token states and one pooled vector, one encoder for every head
    (``sharing: hard``), one per head over shared token embeddings (``soft``), or one that the utterance-level heads
    share and one of its own for each head that tags the feature's tokens (``by_level``). With
    ``char_ngram_buckets`` each token also reads its character n-grams (``char_ngram_sizes`` characters long,
    counting a ``<`` before the token and a ``>`` after it; its first ``char_ngrams_per_token``), hashed into that
    many buckets: a word training never saw (a typo, a new product name, a number) shares them with the words it
    resembles. ``token_dropout`` is the probability with which training reads each token as an OOV one, so the
    model learns to tag and classify a word it does not know from its context (a vocabulary's OOV ids only).
    With ``oov_by_shape`` a token outside the vocabulary takes the OOV bucket of its shape (``models.text.shapes``:
    ``48213`` and ``95341610`` are both ``0000``, ``dlolars`` is ``aaaa``) instead of its own text's hash, so an
    unseen number, code or word shares its rows with others of its kind. ``encoder_dropout`` is the dropout rate
    inside each sequence encoder in training (cnn: after each convolution; gru, lstm: on each step's input;
    transformer: on attention and each residual branch; mean and max have none)."""

    name: str
    kind: FeatureKind
    embedding_dim: int = 8
    top_k: int | None = None
    frequency_threshold: int = 0
    oov_buckets: int = 1
    hash_buckets: int = 0
    boundaries: tuple[float, ...] = ()
    tokenizer: Tokenizer = Tokenizer.WHITESPACE
    lowercase: bool = True
    max_tokens: int = 32
    encoder: SequenceEncoder = SequenceEncoder.MEAN
    encoder_units: int = 32
    encoder_layers: int = 1
    sharing: TextSharing = TextSharing.HARD
    char_ngram_buckets: int = 0
    char_ngram_sizes: tuple[int, ...] = (3, 4, 5)
    char_ngrams_per_token: int = 16
    token_dropout: float = 0.0
    encoder_dropout: float = 0.0
    oov_by_shape: bool = False

    def __post_init__(self):
        where = f"feature '{self.name}'"
        _require_safe_name(self.name, "feature")
        _set_member(self, "kind", FeatureKind, f"{where}: kind")
        _set_member(self, "tokenizer", Tokenizer, f"{where}: tokenizer")
        _set_member(self, "encoder", SequenceEncoder, f"{where}: encoder")
        _set_member(self, "sharing", TextSharing, f"{where}: sharing")
        _require(self.embedding_dim >= 1, f"{where}: embedding_dim must be >= 1")
        _require(self.top_k is None or self.top_k >= 1, f"{where}: top_k must be >= 1")
        _require(self.frequency_threshold >= 0, f"{where}: frequency_threshold must be >= 0")
        if self.kind == FeatureKind.VOCABULARY or self.kind == FeatureKind.TEXT and not self.hash_buckets:
            _require(self.oov_buckets >= 1, f"{where}: oov_buckets must be >= 1")
        if self.kind == FeatureKind.HASH or self.kind == FeatureKind.TEXT and self.hash_buckets:
            _require(self.hash_buckets >= 2, f"{where}: hashing needs hash_buckets >= 2")
        if self.kind == FeatureKind.BUCKETIZED:
            _require(list(self.boundaries) == sorted(self.boundaries) and self.boundaries,
                     f"{where}: bucketized needs sorted, non-empty boundaries")
        _require(1 <= self.max_tokens <= 1024, f"{where}: max_tokens must be in [1, 1024], got {self.max_tokens}")
        _require(self.encoder_units >= 1 and self.encoder_layers >= 1,
                 f"{where}: encoder_units and encoder_layers must be >= 1")
        if self.char_ngram_buckets:
            _require(self.kind == FeatureKind.TEXT, f"{where}: char_ngram_buckets is for a text feature, not "
                     f"kind '{self.kind}'")
            _require(self.char_ngram_buckets >= 2, f"{where}: char_ngram_buckets must be >= 2 (0: no n-grams), "
                     f"got {self.char_ngram_buckets}")
            _require(self.char_ngram_sizes and all(1 <= n <= 16 for n in self.char_ngram_sizes),
                     f"{where}: char_ngram_sizes must list lengths in [1, 16], got {list(self.char_ngram_sizes)}")
            _require(1 <= self.char_ngrams_per_token <= 64,
                     f"{where}: char_ngrams_per_token must be in [1, 64], got {self.char_ngrams_per_token}")
        if self.token_dropout:
            _require(self.kind == FeatureKind.TEXT and not self.hash_buckets,
                     f"{where}: token_dropout reads tokens as OOV ids, which only a text feature's vocabulary has "
                     "(not hash_buckets)")
            _require(0.0 < self.token_dropout < 1.0, f"{where}: token_dropout must be in [0, 1), got "
                     f"{self.token_dropout}")
        if self.oov_by_shape:
            _require(self.kind == FeatureKind.TEXT and not self.hash_buckets,
                     f"{where}: oov_by_shape picks a text token's OOV bucket by its shape, which only a text "
                     "feature's vocabulary has (not hash_buckets)")
        if self.encoder_dropout:
            _require(self.kind == FeatureKind.TEXT, f"{where}: encoder_dropout is for a text feature, not kind "
                     f"'{self.kind}'")
            _require(0.0 < self.encoder_dropout < 1.0, f"{where}: encoder_dropout must be in [0, 1), got "
                     f"{self.encoder_dropout}")
        if self.encoder == SequenceEncoder.TRANSFORMER:
            _require(self.encoder_units % 2 == 0, f"{where}: the transformer encoder's two attention heads need an "
                     f"even encoder_units, got {self.encoder_units}")


@dataclass(frozen=True)
class BlessingConfig:
    """What a head must reach to be blessed: a bound on its key metric, and no regression against the baseline
    beyond ``tolerance``. ``evidence``: what makes a change a regression. ``interval`` (default): the change is
    worse than the tolerance and its 95% interval, paired on the same test events, shows it worse at all (a one-sided
    test at the 5% level), so test-sample and seed noise alone does not refuse a model (needs
    ``evaluation.confidence_intervals``; without an interval the change alone decides); ``point``: the change
    alone, as TFMA's change threshold judges it."""

    bound: float | None = None
    tolerance: float = 0.01
    evidence: str = ChangeEvidence.INTERVAL

    def __post_init__(self):
        _require(self.tolerance >= 0, f"blessing.tolerance must be >= 0, got {self.tolerance}")
        _set_member(self, "evidence", ChangeEvidence, "blessing.evidence")


@dataclass(frozen=True)
class TaskConfig:
    """One prediction head: its label, loss weight, tower and blessing rule. What its type needs besides (e.g.
    ``num_classes``) the task type checks (``models.tasks``).

    A class label (multiclass, multilabel, sequence_labeling) is a number in [0, num_classes) by default. A label
    logged as text names its class: ``label_vocabulary: true`` takes the classes from Transform (a vocabulary of the
    label over the training split, most frequent first, exported with the model; ``num_classes`` then follows from
    it), ``classes`` lists them in the config. A multilabel text label lists at most ``max_labels`` names per
    event. A sequence_labeling head tags each token of the text feature ``text_feature`` with a BIO tag
    (``O``, ``B-<type>``, ``I-<type>``); its classes are the slot types."""

    name: str
    type: TaskType
    label_key: str
    loss_weight: float = 1.0
    tower: tuple[int, ...] = (32,)
    dropout: float = 0.0
    batch_norm: bool = False
    l2: float = 0.0
    lr_multiplier: float = 1.0
    num_classes: int = 0
    classes: tuple[str, ...] = ()
    label_vocabulary: bool = False
    max_labels: int = 16
    text_feature: str | None = None
    missing_value: float | None = -1
    plot_range: tuple[float, float] = (0.0, 10.0)
    blessing: BlessingConfig = field(default_factory=BlessingConfig)

    def __post_init__(self):
        _require_safe_name(self.name, "task")
        _require_safe_name(self.label_key, f"task '{self.name}': label_key")
        where = f"task '{self.name}'"
        _require(len(self.plot_range) == 2 and self.plot_range[0] < self.plot_range[1],
                 f"{where}: plot_range must be [low, high] with low < high, got {list(self.plot_range)}")
        _set_member(self, "type", TaskType, f"{where}: type")
        _require(self.loss_weight >= 0, f"{where}: loss_weight must be >= 0")
        _require(all(units >= 1 for units in self.tower), f"{where}: tower sizes must be >= 1, got {self.tower}")
        _require(0 <= self.dropout < 1, f"{where}: dropout must be in [0, 1), got {self.dropout}")
        _require(self.l2 >= 0 and self.lr_multiplier >= 0, f"{where}: l2 and lr_multiplier must be >= 0")
        _require(not (self.classes and self.label_vocabulary),
                 f"{where}: classes and label_vocabulary both name the classes; keep one")
        _require_unique(f"{where}: class", list(self.classes))
        _require(all(name.strip() for name in self.classes), f"{where}: classes must not be empty text")
        _require(self.max_labels >= 1, f"{where}: max_labels must be >= 1, got {self.max_labels}")

    @property
    def text_labels(self) -> bool:
        """Whether the label is logged as text (class names), not as class numbers."""
        return bool(self.classes) or self.label_vocabulary


@dataclass(frozen=True)
class ModelConfig:
    """Architecture, loss balancing, sizes and optimisation of the multi-task model.

    shared_bottom uses ``shared_layers`` (empty: no shared hidden layer). mmoe uses ``experts`` experts of
    ``expert_layers``; ple uses ``experts`` shared and ``task_experts`` per-task experts in ``levels`` levels
    (1 level is CGC). ``esmm_tasks`` (ctr, cvr) trains the cvr head through pCTCVR = pCTR x pCVR on every
    impression. ``dot_interaction`` names categorical features (at least two, equal embedding_dim) whose
    embeddings' pairwise dot products join the encoded input, e.g. user_id . item_id. ``factorization`` names two
    categorical features (user_id, item_id) that get factor tables of ``factor_dim`` (L2 ``factor_l2``) whose
    elementwise product every head (or those in ``factor_tasks``) reads directly, as a matrix factorisation with a
    weight per task and factor. ``task_embeddings`` gives a task embeddings of its own of the named categorical
    features (L2 ``task_embedding_l2``), which its tower reads next to the shared representation, e.g.
    {interest: [user_id]} when heads compete for the shared user embedding.
    ``fusion`` adds a served ``fusion_score``: the weighted sum of heads that give one score per example.
    ``loss_normalization``: per_label trains on each task's mean loss over its present labels; per_example scales
    it by the share of the batch with that label, so every labelled example weighs the same in every task.
    ``per_head_selection`` trains while any head's validation loss improves and serves each head from the epoch of
    its own best one (models.head_selection); ``head_copies`` says what it keeps of those epochs: whole_model (their
    id tables too) or dense_weights (the heads read the restored epoch's id tables and text encoders: one copy of
    the tables).
    ``id_updates``: whole_table steps every row of every id table each step, and ``embedding_l2``, ``factor_l2``
    and ``task_embedding_l2`` penalise whole tables; rows steps only the rows a batch read (a step's cost no longer
    grows with the tables) and catches a row up with the steps it missed, those L2s included, when it is next read
    (models.row_optimizer).
    """

    architecture: Architecture = Architecture.SHARED_BOTTOM
    shared_layers: tuple[int, ...] = (64, 32)
    experts: int = 4
    expert_layers: tuple[int, ...] = (64,)
    task_experts: int = 1
    levels: int = 1
    balancing: Balancing = Balancing.FIXED
    loss_normalization: LossNormalization = LossNormalization.PER_LABEL
    gradnorm_alpha: float = 1.5
    esmm_tasks: tuple[str, ...] = ()
    fusion: dict[str, float] = field(default_factory=dict)
    dot_interaction: tuple[str, ...] = ()
    factorization: tuple[str, ...] = ()
    factor_tasks: tuple[str, ...] = ()  # the heads that read the factors (empty: every head)
    factor_dim: int = 16
    factor_l2: float = 0.0
    task_embeddings: dict[str, tuple[str, ...]] = field(default_factory=dict)
    task_embedding_l2: float = 0.0
    clip_norm: float | None = None
    jit_compile: bool = False
    embedding_l2: float = 0.0
    id_updates: IdUpdates = IdUpdates.WHOLE_TABLE
    learning_rate: float = 1e-3
    batch_size: int = 256
    train_steps: int | None = None  # None: every epoch is one pass over the training split
    eval_steps: int | None = None  # None: validation reads the whole eval split
    epochs: int = 10
    early_stopping_patience: int = 2
    per_head_selection: bool = False  # serve each head from the epoch of its own best validation loss
    head_copies: HeadCopies = HeadCopies.WHOLE_MODEL
    cache_mb: int = 1024  # keep parsed training and eval batches in memory when they fit in this (0: never)
    distribution: Distribution = Distribution.NONE  # batch_size is the global batch, split between the replicas
    warm_start: bool = False  # start from the last blessed model's weights (embeddings carried by token)
    seed: int = 0

    def __post_init__(self):
        _set_member(self, "architecture", Architecture, "model.architecture")
        _set_member(self, "balancing", Balancing, "model.balancing")
        _set_member(self, "loss_normalization", LossNormalization, "model.loss_normalization")
        _set_member(self, "distribution", Distribution, "model.distribution")
        _set_member(self, "id_updates", IdUpdates, "model.id_updates")
        _set_member(self, "head_copies", HeadCopies, "model.head_copies")
        for name in ("batch_size", "train_steps", "eval_steps", "epochs"):
            value = getattr(self, name)
            _require(value is None and name.endswith("_steps") or value is not None and value >= 1,
                     f"model.{name} must be >= 1" + (" (or left out)" if name.endswith("_steps") else "")
                     + f", got {value}")
        _require(self.train_steps is None or self.epochs <= self.train_steps,
                 "model.epochs must be in [1, train_steps]")
        _require(self.learning_rate > 0, f"model.learning_rate must be > 0, got {self.learning_rate}")
        _require(self.clip_norm is None or self.clip_norm > 0, f"model.clip_norm must be > 0, got {self.clip_norm}")
        _require(min(self.embedding_l2, self.factor_l2, self.task_embedding_l2, self.early_stopping_patience,
                     self.cache_mb) >= 0, "model.embedding_l2, model.factor_l2, model.task_embedding_l2, "
                 "model.early_stopping_patience and model.cache_mb must be >= 0")
        _require(self.factor_dim >= 1, f"model.factor_dim must be >= 1, got {self.factor_dim}")
        _require(all(units >= 1 for units in (*self.shared_layers, *self.expert_layers)),
                 "model.shared_layers and model.expert_layers sizes must be >= 1")
        _require(self.experts >= 1 and self.task_experts >= 0 and self.levels >= 1,
                 "model: experts >= 1, task_experts >= 0 and levels >= 1")
        _require(len(self.esmm_tasks) in (0, 2), "model.esmm_tasks must name (ctr_task, cvr_task) or nothing")


@dataclass(frozen=True)
class DataConfig:
    """Where the logs are and how ImportExampleGen splits them.

    Each run ingests one span (``span``: the latest, or N); Transform and Trainer use the newest
    ``train_spans`` spans ingested so far (earlier spans are ingested by earlier runs, e.g. ``--span 1``).
    Three splits: ``train`` (the Trainer fits on it), ``eval`` (the Trainer's validation: early stopping and each
    head's best epoch) and ``test`` (the Evaluator's metrics, blessing and report: events nothing was chosen on),
    by hash in ``train_buckets`` : ``eval_buckets`` : ``test_buckets`` (default 8 : 1 : 1), or, with
    ``presplit``, the span's ``train/``, ``eval/`` and ``test/`` folders.
    """

    log_root: str = "data/logs"
    span: str | int = "latest"
    train_spans: int = 1
    presplit: bool = False
    train_buckets: int = 8
    eval_buckets: int = 1
    test_buckets: int = 1
    schema_path: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "span", str(self.span))
        _require(self.span == "latest" or self.span.isdigit(), f"data.span '{self.span}' is not 'latest' or N")
        _require(self.train_spans >= 1, "data.train_spans must be >= 1")
        for name in ("train_buckets", "eval_buckets", "test_buckets"):
            _require(getattr(self, name) >= 1, f"data.{name} must be >= 1, got {getattr(self, name)}")


@dataclass(frozen=True)
class BeamConfig:
    """How the Beam-powered components (ImportExampleGen, StatisticsGen, Transform, Evaluator) run: ``args`` are
    Beam pipeline args for all of them, e.g. ``[--runner=DataflowRunner, --project=P, --region=R,
    --temp_location=gs://...]``. Without a ``--runner`` they run on Beam's DirectRunner in ``workers`` processes:
    1 inside the component's own process, 0 for the runner to choose by the span's size
    (``pipeline.runners.beam_pipeline_args``). In a container limited to fewer cores than its host shows, set the
    number."""

    args: tuple[str, ...] = ()
    workers: int = 0

    def __post_init__(self):
        _require(self.workers >= 0, f"beam.workers must be >= 0 (0: automatic), got {self.workers}")
        for arg in self.args:
            _require(arg.startswith("--"), f"beam.args: '{arg}' is not a --flag=value Beam pipeline arg")


@dataclass(frozen=True)
class ValidationConfig:
    """How a new span is judged against the last validated span: ``drift`` maps a feature to the largest
    distance its distribution may move (L-infinity for categorical, Jensen-Shannon divergence for numeric
    features, both in [0, 1]); a larger move stops the run before Transform. ``value_counts``: how StatisticsGen
    counts a string feature's values, ``exact`` (TFDV's default: a count per distinct value) or ``sketch``
    (bounded memory and time per event whatever the number of distinct ids; ``config.registry.ValueCounts``).
    ``transform_statistics``: Transform also computes TFDV statistics of its input and output and validates its
    output against the schema (TFX's default); nothing in the pipeline reads them, so they are off unless asked for,
    for a look at the transformed features in the Kubeflow UI."""

    drift: dict[str, float] = field(default_factory=dict)
    value_counts: ValueCounts = ValueCounts.EXACT
    transform_statistics: bool = False

    def __post_init__(self):
        _set_member(self, "value_counts", ValueCounts, "validation.value_counts")
        for name, threshold in self.drift.items():
            _require(0 < threshold <= 1, f"validation.drift.{name} must be in (0, 1], got {threshold}")


@dataclass(frozen=True)
class EvaluationConfig:
    """TFMA slices (raw feature names) beside the overall slice; ``confidence_intervals``: TFMA's jackknife
    intervals (20 buckets of the test events) for every metric on every slice, and for each head's change against
    the baseline, paired on the same events; ``min_slice_examples``: the report marks a slice with fewer labelled
    events than this as too small to read much into."""

    slices: tuple[str, ...] = ()
    confidence_intervals: bool = True
    min_slice_examples: int = 200

    def __post_init__(self):
        _require(self.min_slice_examples >= 0, f"evaluation.min_slice_examples must be >= 0, got "
                                               f"{self.min_slice_examples}")


@dataclass(frozen=True)
class ServingConfig:
    """The serving check between blessing and push (``components.serving_check``) and what a push carries.

    The check loads the candidate in a fresh process and sends it ``check_events`` test events through both
    signatures, then ``latency_requests`` batch-1 requests through each: it passes when every request answers
    within ``timeout_s``, every score is finite, the two signatures and the checking process's own copy agree
    within ``tolerance`` (max absolute score difference), and each signature's batch-1 p99 is at most
    ``latency_slo_ms`` (default 50 ms). ``tflite``: the Trainer converts the model to TFLite too, and a file ships
    only if its key metric per head is within ``tflite_tolerance`` (float32) or ``quantized_tolerance``
    (dynamic-range int8) of the SavedModel's on the same events. ``canary``: a push takes the ``canary`` label
    and ``stable`` stays where it is (``mtl serving promote`` moves it)."""

    latency_slo_ms: float = 50.0
    tolerance: float = 1e-4
    check_events: int = 1000
    latency_requests: int = 200
    timeout_s: float = 600.0
    tflite: bool = True
    tflite_tolerance: float = 0.001
    quantized_tolerance: float = 0.005
    canary: bool = False

    def __post_init__(self):
        for name in ("latency_slo_ms", "tolerance", "timeout_s", "tflite_tolerance", "quantized_tolerance"):
            _require(getattr(self, name) > 0, f"serving.{name} must be > 0, got {getattr(self, name)}")
        for name in ("check_events", "latency_requests"):
            _require(getattr(self, name) >= 1, f"serving.{name} must be >= 1, got {getattr(self, name)}")


@dataclass(frozen=True)
class VertexTrainingConfig:
    """Runs the Trainer as a Vertex AI custom job (TFX's google_cloud_ai_platform Trainer) from a pipeline
    compiled for Kubeflow: ``workers`` machines of ``machine_type`` running ``image`` (this project's image), the
    first as the chief; Vertex sets each one's TF_CONFIG, and ``model.distribution: multi_worker`` trains across
    them."""

    project: str
    region: str
    image: str
    machine_type: str = "n1-standard-8"
    workers: int = 2

    def __post_init__(self):
        _require(self.workers >= 1, f"vertex_training.workers must be >= 1, got {self.workers}")
        for name in ("project", "region", "image", "machine_type"):
            _require(getattr(self, name), f"vertex_training.{name} must not be empty")


@dataclass(frozen=True)
class PipelineConfig:
    """The whole pipeline, as one YAML file declares it. Rules that depend on what a feature kind or task type is
    (which features are categorical, what a type needs) are checked where the kinds and types are defined
    (``models.builder.check_model_config``), before any component runs."""

    name: str
    features: tuple[FeatureConfig, ...]
    tasks: tuple[TaskConfig, ...]
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    beam: BeamConfig = field(default_factory=BeamConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    serving: ServingConfig = field(default_factory=ServingConfig)
    vertex_training: VertexTrainingConfig | None = None

    def __post_init__(self):
        _require(re.fullmatch(r"[a-z0-9][a-z0-9-]{0,127}", self.name),
                 f"name '{self.name}' must match [a-z0-9][a-z0-9-]{{0,127}} (Kubeflow pipeline and model names)")
        _require(self.features and self.tasks, "a pipeline needs at least one feature and one task")
        _require_unique("feature", [f.name for f in self.features])
        _require_unique("task", [t.name for t in self.tasks])
        feature_names = {f.name for f in self.features}
        for task in self.tasks:
            _require(task.label_key not in feature_names, f"task '{task.name}': label '{task.label_key}' is a feature")
            if task.text_feature is not None:
                text = next((f for f in self.features if f.name == task.text_feature), None)
                _require(text is not None and text.kind == FeatureKind.TEXT,
                         f"task '{task.name}': text_feature '{task.text_feature}' is not a declared text feature")
        taggers = {t.text_feature for t in self.tasks if t.type == TaskType.SEQUENCE_LABELING}
        for feature in self.features:
            _require(feature.sharing != TextSharing.BY_LEVEL or feature.name in taggers,
                     f"feature '{feature.name}': sharing by_level gives each head that tags its tokens an encoder of "
                     "its own, but no sequence_labeling task names it as text_feature: use sharing: hard")
        task_names = {t.name for t in self.tasks}
        for name in (*self.model.esmm_tasks, *self.model.fusion, *self.model.factor_tasks):
            _require(name in task_names, f"model: '{name}' is not a task")
        for task in self.model.task_embeddings:
            _require(task in task_names, f"model.task_embeddings: '{task}' is not a task")
        if self.vertex_training and self.vertex_training.workers > 1:
            _require(self.model.distribution == Distribution.MULTI_WORKER,
                     f"vertex_training.workers is {self.vertex_training.workers}: set model.distribution: "
                     "multi_worker, or the workers would each train alone")
        for name in self.evaluation.slices:
            _require(name in feature_names, f"evaluation slice '{name}' is not a declared feature")
        for name in self.validation.drift:
            _require(name in feature_names, f"validation.drift: '{name}' is not a declared feature")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PipelineConfig:
        """The config from plain data (parsed YAML or ``to_dict()``); raises ConfigError naming the bad key."""
        return _build(cls, data, "config")

    @classmethod
    def from_yaml(cls, path: str | Path) -> PipelineConfig:
        """The config in the YAML file at ``path``; every problem is a ConfigError that starts with the path."""
        try:
            with open(path) as f:
                data = yaml.safe_load(f)
        except OSError as e:
            raise ConfigError(f"{path}: cannot read the config file ({e.strerror})") from None
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise ConfigError(f"{path}: not valid YAML{where}: {getattr(e, 'problem', None) or e}") from None
        try:
            return cls.from_dict(data)
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict that ``from_dict`` turns back into an equal config."""
        return dataclasses.asdict(self)

    def replace(self, **changes) -> PipelineConfig:
        return dataclasses.replace(self, **changes)


def _build(cls, data: Any, where: str):
    """Builds dataclass ``cls`` from plain YAML data, naming the place of any unknown, missing or mistyped key."""
    _require(isinstance(data, dict), f"{where}: expected a mapping, got {type(data).__name__}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(known))
    _require(not unknown, f"{where}: unknown key(s) {unknown}; known: {sorted(known)}")
    hints = typing.get_type_hints(cls)
    kwargs = {name: _typed(value, hints[name], f"{where}.{name}") for name, value in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise ConfigError(f"{where}: {e}") from None


def _typed(value: Any, hint: Any, where: str) -> Any:
    """``value`` checked against the type ``hint`` (ints accepted as floats, lists become tuples, nested mappings
    become their dataclass); raises ConfigError naming ``where``, the expected type and the value."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        arms = [arm for arm in args if arm is not type(None)]
        for arm in arms:
            try:
                return _typed(value, arm, where)
            except ConfigError:
                continue
        _type_error(value, " or ".join(_describe(arm) for arm in arms), where)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where)
    if origin is tuple:
        _require(isinstance(value, (list, tuple)), f"{where}: expected a list, got {value!r}")
        item = args[0]
        if dataclasses.is_dataclass(item):
            return tuple(_build(item, v, f"{where}[{i}]") for i, v in enumerate(value))
        return tuple(_typed(v, item, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        _require(isinstance(value, dict), f"{where}: expected a mapping, got {value!r}")
        return {_typed(k, args[0], where): _typed(v, args[1], f"{where}.{k}") for k, v in value.items()}
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    expected = str if isinstance(hint, type) and issubclass(hint, StrEnum) else hint
    if isinstance(value, expected) and not (expected is int and isinstance(value, bool)):
        return value
    _type_error(value, _describe(hint), where)


def _describe(hint: Any) -> str:
    names = {int: "an integer", float: "a number", bool: "true or false", str: "text"}
    if isinstance(hint, type) and issubclass(hint, StrEnum):
        return f"one of {[m.value for m in hint]}"
    return names.get(hint, str(hint))


def _type_error(value: Any, expected: str, where: str) -> typing.NoReturn:
    raise ConfigError(f"{where}: expected {expected}, got {value!r}")


def _set_member(config: Any, name: str, names: type[StrEnum], where: str) -> None:
    """Replaces the text in field ``name`` by its member of ``names``; a ConfigError lists the valid names."""
    value = getattr(config, name)
    valid = [m.value for m in names]
    _require(value in valid, f"{where} '{value}' not in {valid}")
    object.__setattr__(config, name, names(value))


def _require(condition: Any, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _require_safe_name(name: Any, what: str) -> None:
    _require(isinstance(name, str) and SAFE_NAME.fullmatch(name),
             f"{what} name {name!r} must be letters, digits and underscores, starting with a letter (at most 64): "
             "it names metric keys, files and serving outputs; rename it")


def _require_unique(what: str, names: list[str]) -> None:
    duplicates = sorted({n for n in names if names.count(n) > 1})
    _require(not duplicates, f"duplicate {what} name(s): {duplicates}")
