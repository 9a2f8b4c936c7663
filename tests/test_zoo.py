"""The MMoE and PLE architectures: configs, output shapes, gates, and training inside the multi-task model."""

import numpy as np
import pytest
import tensorflow as tf
from helpers import assert_training_reduces_every_task_loss, tiny_model

from config import ModelConfig
from models.builder import make_architecture
from models.zoo.mmoe import MMoE
from models.zoo.ple import PLE, ExtractionLevel

X = tf.random.stateless_normal([5, 6], seed=[0, 1])


@pytest.mark.parametrize("layer", [
    MMoE(["a", "b"], 3, [4], name="mmoe"),
    PLE(["a", "b"], 2, 1, 2, [4], name="ple"),
    ExtractionLevel(["a", "b"], 2, 1, [4], shared_gate=True, name="level"),
])
def test_get_config_round_trip(layer):
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


# Variables: 4 per expert (two Dense layers), 2 per gate.
@pytest.mark.parametrize("layer, variables", [
    (MMoE(["a", "b"], 3, [8, 4]), 3 * 4 + 2 * 2),
    (PLE(["a", "b"], 2, 1, 1, [8, 4]), 4 * 4 + 2 * 2),
    (PLE(["a", "b"], 2, 2, 2, [8, 4]), 2 * (6 * 4 + 2 * 2) + 2),
    (PLE(["a", "b", "c"], 2, 0, 2, [8, 4]), 2 * (2 * 4 + 3 * 2) + 2),
])
def test_one_representation_per_task_trained_through_every_expert_and_gate(layer, variables):
    with tf.GradientTape() as tape:
        outputs = layer(X, training=True)
        total = tf.add_n([tf.reduce_sum(output) for output in outputs.values()])
    assert {k: tuple(v.shape) for k, v in outputs.items()} == {name: (5, 4) for name in layer.task_names}
    assert len(layer.trainable_variables) == variables
    assert all(g is not None for g in tape.gradient(total, layer.trainable_variables))


def test_mmoe_gates_are_distributions_that_differ_between_tasks():
    gates = MMoE(["a", "b"], 3, [4]).gate_weights(X)
    for weights in gates.values():
        assert weights.shape == (5, 3)
        assert np.allclose(tf.reduce_sum(weights, axis=-1), 1.0)
    assert not np.allclose(gates["a"], gates["b"])


def test_ple_gates_span_own_and_shared_experts_and_only_inner_levels_have_a_shared_gate():
    ple = PLE(["a", "b", "c"], 2, 1, 2, [4])
    ple(X)
    first, last = ple.extraction
    assert first.task_gates["a"].units == 3 and first.shared_gate_layer.units == 5
    assert last.shared_gate_layer is None


def test_make_architecture_builds_mmoe_and_ple():
    mmoe = make_architecture(ModelConfig(architecture="mmoe", experts=3), ["a", "b"])
    assert isinstance(mmoe, MMoE) and mmoe.experts == 3 and len(mmoe.expert_nets) == 3
    ple = make_architecture(ModelConfig(architecture="ple", experts=2, task_experts=0, levels=3), ["a"])
    assert isinstance(ple, PLE) and len(ple.extraction) == 3


@pytest.mark.parametrize("model_config", [
    {"architecture": "mmoe", "experts": 2, "expert_layers": (8,)},
    {"architecture": "ple", "experts": 1, "task_experts": 1, "levels": 2, "expert_layers": (8,)},
])
def test_training_reduces_every_task_loss(model_config):
    assert_training_reduces_every_task_loss(tiny_model(**model_config), steps=30)
