"""The names of every pluggable concept, each spelled here once: feature kinds, task types, architectures,
balancers, loss normalisations, id-table updates, per-head copies, distribution strategies and the text
features' tokenizers, sequence encoders and their sharing.

The config validates against these; the model code keys its registries (``models.tasks.TASK_TYPES``,
``models.builder``'s architectures and balancers, ``models.features``' transforms) by the same members, and a
test checks that every member has an implementation.
"""

from enum import StrEnum


class FeatureKind(StrEnum):
    """How Transform turns a raw column into a model input; what each kind is (categorical or numeric, its transform
    and cardinality) is ``models.features.KINDS``."""

    VOCABULARY = "vocabulary"  # string -> id by frequency (top_k, oov_buckets)
    HASH = "hash"  # string -> id by hash (hash_buckets)
    BUCKETIZED = "bucketized"  # number -> bucket id (boundaries)
    ZSCORE = "zscore"  # number -> standardised float
    LOG = "log"  # number -> log1p, then standardised
    TEXT = "text"  # utterance -> token ids (0: padding), then their char n-gram ids, for a sequence encoder


class Tokenizer(StrEnum):
    """How a text feature's utterance is cut into tokens (``models.text``), after lowercasing."""

    WHITESPACE = "whitespace"  # runs of whitespace separate tokens
    WORD_PUNCT = "word_punct"  # whitespace, and every punctuation character is a token of its own


class SequenceEncoder(StrEnum):
    """How a text feature's token embeddings become per-token states and one pooled vector
    (``models.text_layers.SequenceEncoder``); padding never reaches either."""

    MEAN = "mean"  # bag of embeddings, mean over the tokens
    MAX = "max"  # bag of embeddings, max over the tokens
    CNN = "cnn"  # 1-D convolution over the tokens, max-pooled
    GRU = "gru"  # bidirectional GRU, mean-pooled
    LSTM = "lstm"  # bidirectional LSTM, mean-pooled
    TRANSFORMER = "transformer"  # self-attention encoder with learned positions, mean-pooled


class TextSharing(StrEnum):
    """Who reads a text feature's sequence encoder."""

    HARD = "hard"  # one encoder, read by every head
    SOFT = "soft"  # one encoder per head, over token embeddings every head shares
    BY_LEVEL = "by_level"  # one encoder the utterance-level heads share, and one of its own per token-tagging head


class TaskType(StrEnum):
    """What a head predicts; ``models.tasks`` holds one Task class per member."""

    BINARY = "binary"
    REGRESSION = "regression"
    MULTICLASS = "multiclass"
    MULTILABEL = "multilabel"
    SEQUENCE_LABELING = "sequence_labeling"  # one BIO tag per token of a text feature


class Architecture(StrEnum):
    """How the encoded features become one representation per task (``models.zoo``)."""

    SHARED_BOTTOM = "shared_bottom"
    MMOE = "mmoe"
    PLE = "ple"


class Balancing(StrEnum):
    """How the task losses become gradients (``models.balancing``)."""

    FIXED = "fixed"
    UNCERTAINTY = "uncertainty"
    GRADNORM = "gradnorm"
    PCGRAD = "pcgrad"


class LossNormalization(StrEnum):
    """per_label: each task's mean over its present labels; per_example: that mean times the batch's label share."""

    PER_LABEL = "per_label"
    PER_EXAMPLE = "per_example"


class IdUpdates(StrEnum):
    """What a training step updates in an id table (``models.builder``'s id optimizers)."""

    WHOLE_TABLE = "whole_table"  # Keras' Adam: every row, every step; L2 on the whole table
    ROWS = "rows"  # models.row_optimizer.RowAdam: the rows the batch read; L2 on those rows; lazy decay


class ChangeEvidence(StrEnum):
    """What blessing asks before it calls a head's change against the baseline a regression
    (``components.blessing_gate``)."""

    INTERVAL = "interval"  # a change worse than the tolerance that its paired interval shows to be worse at all
    POINT = "point"  # a change worse than the tolerance, measured or not (TFMA's change threshold alone)


class ValueCounts(StrEnum):
    """How StatisticsGen counts a string feature's values (TFDV's ``StatsOptions``)."""

    EXACT = "exact"  # a count per distinct value: exact top values and distinct counts; memory grows with the ids
    SKETCH = "sketch"  # Misra-Gries top values (exact up to 1,024 distinct values) and a KMV distinct count
    # (exact up to 16,384): bounded memory whatever the number of ids


class HeadCopies(StrEnum):
    """What per-head selection keeps of an epoch that serves some head but is not the restored one
    (``models.head_selection``)."""

    WHOLE_MODEL = "whole_model"  # every weight: the head reads that epoch's id tables
    DENSE_WEIGHTS = "dense_weights"  # all but the layers with id tables: the head reads the restored epoch's tables
    # and text encoders (MultiTaskModel.id_layers) and has its own towers and architecture


class Distribution(StrEnum):
    """Where the Trainer trains (``models.distribution``): one device, every local device, or several workers."""

    NONE = "none"  # TensorFlow's default strategy: this process, its CPU threads or one GPU
    MIRRORED = "mirrored"  # tf.distribute.MirroredStrategy: every local GPU (or CPU device)
    MULTI_WORKER = "multi_worker"  # tf.distribute.MultiWorkerMirroredStrategy: the cluster in TF_CONFIG
