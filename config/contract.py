"""The contract between the pipeline definition and the user code that TFX runs by module path: the config
handed over and the names of the splits.

``create_pipeline`` hands Transform and Trainer the config as ``custom_config``; ``preprocessing_fn`` and
``run_fn`` read it back. Both sides call these two functions, so neither knows the other's key.
"""

from typing import Any

from config.schema import PipelineConfig

CONFIG_KEY = "pipeline"

# The splits of every span: the Trainer fits on TRAIN and validates on VALIDATION (early stopping, each head's best
# epoch); the Evaluator, the serving check and the report judge on TEST, which nothing was chosen on.
TRAIN, VALIDATION, TEST = "train", "eval", "test"
SPLITS = (TRAIN, VALIDATION, TEST)


def to_custom_config(config: PipelineConfig) -> dict[str, Any]:
    """The ``custom_config`` dict that create_pipeline gives Transform and Trainer (JSON-serialisable)."""
    return {CONFIG_KEY: config.to_dict()}


def from_custom_config(custom_config: dict[str, Any]) -> PipelineConfig:
    """The config back from a component's ``custom_config``; preprocessing_fn and run_fn call it."""
    return PipelineConfig.from_dict(custom_config[CONFIG_KEY])
