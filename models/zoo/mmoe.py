"""MMoE (Ma et al., KDD 2018): experts shared by every task, mixed per task by that task's softmax gate.

The expert and gate helpers here are reused by PLE.
"""

import tensorflow as tf
import tf_keras

from models.layers import MLP


def make_experts(count: int, units: list[int], prefix: str) -> list[MLP]:
    """``count`` expert MLPs named ``{prefix}_{i}``."""
    return [MLP(units, name=f"{prefix}_{i}") for i in range(count)]


def make_gate(count: int, name: str) -> tf_keras.layers.Dense:
    """A gate: softmax weights over ``count`` experts, computed from the gate's input."""
    return tf_keras.layers.Dense(count, activation="softmax", name=name)


def mix(gate_weights, expert_outputs):
    """The gate-weighted sum of the experts' outputs: [batch, n] x n * [batch, d] -> [batch, d]."""
    return tf.einsum("bn,bnd->bd", gate_weights, tf.stack(expert_outputs, axis=1))


@tf_keras.utils.register_keras_serializable(package="mtl")
class MMoE(tf_keras.layers.Layer):
    """Returns, for every task name, its gate's mixture of ``experts`` MLP(``expert_layers``) experts."""

    def __init__(self, task_names: list[str], experts: int, expert_layers: list[int], **kwargs):
        super().__init__(**kwargs)
        self.task_names = list(task_names)
        self.experts = experts
        self.expert_layers = list(expert_layers)
        self.expert_nets = make_experts(experts, self.expert_layers, "expert")
        self.gates = {name: make_gate(experts, f"{name}_gate") for name in self.task_names}


    def gate_weights(self, x):
        """{task: [batch, experts]} softmax weights."""
        return {name: self.gates[name](x) for name in self.task_names}

    def call(self, x, training=False):
        outputs = [expert(x, training=training) for expert in self.expert_nets]
        return {name: mix(weights, outputs) for name, weights in self.gate_weights(x).items()}

    def get_config(self):
        return {**super().get_config(), "task_names": self.task_names, "experts": self.experts,
                "expert_layers": self.expert_layers}
