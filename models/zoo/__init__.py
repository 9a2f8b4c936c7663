"""The model zoo: architectures that map the encoded features to one representation per task."""

from models.zoo.mmoe import MMoE
from models.zoo.ple import PLE
from models.zoo.shared_bottom import SharedBottom
from pipeline.config import ModelConfig

ARCHITECTURES = {"shared_bottom": SharedBottom, "mmoe": MMoE, "ple": PLE}


def make_architecture(model: ModelConfig, task_names: list[str]):
    """The architecture layer the config names."""
    if model.architecture not in ARCHITECTURES:
        raise ValueError(f"model.architecture '{model.architecture}' not in {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[model.architecture].from_model_config(model, task_names)
