"""The model zoo: architectures that map the encoded features to one representation per task.

Each takes the task names and its own sizes; ``models.builder`` maps the config's architecture name to one.
"""

from models.zoo.mmoe import MMoE
from models.zoo.ple import PLE
from models.zoo.shared_bottom import SharedBottom

__all__ = ["MMoE", "PLE", "SharedBottom"]
