"""The bottom layer: the typed pipeline config, the names of every pluggable concept, and the contract between
the pipeline definition and the user code. It imports nothing of the project; every other package imports it.

It also chooses Keras 2 (tf_keras) for TensorFlow, once for the whole project: the variable must be set before
TensorFlow is first imported, and every entry point (the `mtl` command, TFX's executors loading ``models.*`` by
module path, the tests and benchmarks) imports this package first.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from config.contract import SPLITS, TEST, TRAIN, VALIDATION, from_custom_config, to_custom_config
from config.errors import ConfigError, UserError
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
from config.schema import (
    DEFAULT_CONFIG,
    BeamConfig,
    BlessingConfig,
    DataConfig,
    EvaluationConfig,
    FeatureConfig,
    ModelConfig,
    PipelineConfig,
    ServingConfig,
    TaskConfig,
    ValidationConfig,
    VertexTrainingConfig,
)

__all__ = ["SPLITS", "TEST", "TRAIN", "VALIDATION", "Architecture", "Balancing", "BeamConfig", "BlessingConfig",
           "ChangeEvidence", "ConfigError", "DEFAULT_CONFIG", "DataConfig", "Distribution", "EvaluationConfig",
           "FeatureConfig", "FeatureKind", "HeadCopies", "IdUpdates", "LossNormalization", "ModelConfig",
           "PipelineConfig", "SequenceEncoder", "ServingConfig", "TaskConfig", "TaskType", "TextSharing",
           "Tokenizer", "UserError", "ValidationConfig", "ValueCounts", "VertexTrainingConfig",
           "from_custom_config", "to_custom_config"]
