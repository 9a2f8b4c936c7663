"""Loss balancing (fixed, uncertainty, GradNorm, PCGrad) and the model options built on the custom step."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from helpers import CARDINALITIES, CONFIG, assert_training_reduces_every_task_loss, batch, tiny_model

from config import ConfigError, PipelineConfig
from models.balancing import GradNorm, PCGrad, UncertaintyWeighting, project_conflicting
from models.builder import build_model
from models.multitask_model import FUSION_OUTPUT


def _apply(balancer, make_losses, variables, steps, learning_rate):
    """Trains ``variables`` (and the balancer's weights) with plain SGD through ``balancer.gradients``."""
    optimizer = tf_keras.optimizers.SGD(learning_rate)
    others = list(balancer.trainable_weights)
    for _ in range(steps):
        with tf.GradientTape(persistent=True) as tape:
            losses = make_losses()
        gradients = balancer.gradients(tape, losses, tf.constant(0.0), variables, others)
        optimizer.apply_gradients(zip(gradients, variables + others, strict=True))
        balancer.finish_step()


def test_pcgrad_projects_conflicting_gradients_as_the_formula_says():
    g1, g2 = [tf.constant([1.0]), tf.constant([0.0])], [tf.constant([-1.0]), tf.constant([1.0])]
    # g1.g2 = -1: g1' = g1 + 1/|g2|^2 g2 = (0.5, 0.5); g2' = g2 + 1/|g1|^2 g1 = (0, 1); sum (0.5, 1.5).
    total = project_conflicting([g1, g2])
    np.testing.assert_allclose([float(t[0]) for t in total], [0.5, 1.5])


def test_pcgrad_leaves_agreeing_gradients_alone():
    total = project_conflicting([[tf.constant([1.0, 0.0])], [tf.constant([1.0, 1.0])]])
    np.testing.assert_allclose(total[0].numpy(), [2.0, 1.0])


def test_pcgrad_balancer_sums_projected_task_gradients():
    shared = tf.Variable([0.0, 0.0])
    balancer = PCGrad({"a": 1.0, "b": 1.0})
    with tf.GradientTape(persistent=True) as tape:
        # d/dshared: a -> (1, 0), b -> (-1, 1), as in the formula test.
        losses = {"a": shared[0], "b": -shared[0] + shared[1]}
    (gradient,) = balancer.gradients(tape, losses, tf.constant(0.0), [shared], [])
    np.testing.assert_allclose(gradient.numpy(), [0.5, 1.5])


def test_gradnorm_lowers_the_weight_of_the_task_with_the_larger_gradients():
    shared = tf.Variable([1.0, 1.0])
    balancer = GradNorm({"small": 1.0, "large": 1.0}, alpha=1.5)
    balancer.build(None)
    _apply(balancer, lambda: {"small": tf.square(shared[0] - 3.0), "large": 25.0 * tf.square(shared[1] - 3.0)},
           [shared], steps=20, learning_rate=0.001)
    small, large = balancer.task_weights().numpy()
    assert large < 1.0 < small
    assert small + large == pytest.approx(2.0)


def test_uncertainty_weighting_learns_a_larger_variance_for_the_noisier_task():
    rng = np.random.default_rng(0)
    targets = {"quiet": tf.constant(rng.normal(1.0, 0.1, 256), tf.float32),
               "noisy": tf.constant(rng.normal(1.0, 2.0, 256), tf.float32)}
    predictions = {name: tf.Variable(0.0) for name in targets}
    balancer = UncertaintyWeighting({"quiet": 1.0, "noisy": 1.0})
    balancer.build(None)
    _apply(balancer, lambda: {n: tf.reduce_mean(tf.square(targets[n] - predictions[n])) for n in targets},
           list(predictions.values()), steps=300, learning_rate=0.05)
    quiet, noisy = balancer.log_variances.numpy()
    assert noisy > quiet + 2.0  # log(sigma^2) tracks the losses: log(4) - log(0.01) ~ 6 at the optimum


@pytest.mark.parametrize("balancing", ["uncertainty", "gradnorm", "pcgrad"])
def test_every_balancer_trains_every_task(balancing):
    assert_training_reduces_every_task_loss(tiny_model(balancing=balancing, clip_norm=5.0))


def _one_adam_step(click_lr_multiplier):
    """(click tower and head, encoder) weights before and after one Adam step of CONFIG's model."""
    config = CONFIG.replace(tasks=tuple(dataclasses.replace(t, lr_multiplier=click_lr_multiplier)
                                        if t.name == "click" else t for t in CONFIG.tasks))
    tf_keras.utils.set_random_seed(0)
    model = build_model(config, CARDINALITIES)
    model(batch(64))
    parts = (model.towers["click"].trainable_variables + model.heads["click"].trainable_variables,
             model.encoder.trainable_variables)
    before = [[v.numpy() for v in part] for part in parts]
    model.fit(tf.data.Dataset.from_tensors(batch(64)), epochs=1, verbose=0)
    return [[(b, v.numpy()) for b, v in zip(part_before, part, strict=True)]
            for part_before, part in zip(before, parts, strict=True)]


@pytest.mark.parametrize("multiplier", [0.0, 0.25])
def test_lr_multiplier_multiplies_the_step_of_that_tower_and_head_under_adam(multiplier):
    (scaled_tower, scaled_encoder), (tower, encoder) = _one_adam_step(multiplier), _one_adam_step(1.0)
    for (before, after), (same_before, full_step) in zip(scaled_tower, tower, strict=True):
        np.testing.assert_array_equal(before, same_before)
        np.testing.assert_allclose(after - before, multiplier * (full_step - before), rtol=1e-5, atol=1e-9)
    assert any(np.abs(after - before).max() > 0.01 for before, after in tower)  # Adam's first step is ~lr = 0.05
    for (_, after), (_, same) in zip(scaled_encoder, encoder, strict=True):
        np.testing.assert_allclose(after, same, rtol=1e-6)


ESMM_CONFIG = PipelineConfig.from_dict({
    "name": "esmm",
    "features": [{"name": "device", "kind": "vocabulary", "embedding_dim": 3}],
    "tasks": [{"name": "click", "type": "binary", "label_key": "click"},
              {"name": "conversion", "type": "binary", "label_key": "conversion"}],
    "model": {"esmm_tasks": ["click", "conversion"], "fusion": {"click": 1.0, "conversion": 2.0}},
})


def test_esmm_trains_conversion_through_pctcvr_on_every_impression():
    model = build_model(ESMM_CONFIG, CARDINALITIES)
    features = {"device": tf.constant([0, 1, 2, 3]),
                "click_label": tf.constant([1.0, 1.0, 0.0, 0.0]), "click_weight": tf.ones([4]),
                "conversion_label": tf.constant([1.0, 0.0, 0.0, 0.0]),
                "conversion_weight": tf.constant([1.0, 1.0, 0.0, 0.0])}
    predictions = model(features)
    ctcvr = (predictions["click"] * predictions["conversion"]).numpy()
    expected = -np.mean(np.log(np.clip([ctcvr[0], 1 - ctcvr[1], 1 - ctcvr[2], 1 - ctcvr[3]], 1e-7, 1)))
    assert float(model.task_losses(features, predictions)["conversion"]) == pytest.approx(expected, rel=1e-5)


def test_fusion_score_is_the_weighted_sum_of_heads():
    model = build_model(ESMM_CONFIG, CARDINALITIES)
    outputs = model({"device": tf.constant([0, 1, 2])})
    np.testing.assert_allclose(outputs[FUSION_OUTPUT].numpy(),
                               outputs["click"].numpy() + 2.0 * outputs["conversion"].numpy(), rtol=1e-6)


def test_esmm_and_fusion_must_name_tasks():
    with pytest.raises(ValueError, match="model: 'purchase' is not a task"):
        dataclasses.replace(ESMM_CONFIG, model=dataclasses.replace(ESMM_CONFIG.model, fusion={"purchase": 1.0}))


def test_fusion_takes_only_heads_with_one_score_per_example():
    interest = {"name": "interest", "type": "multiclass", "label_key": "interest", "num_classes": 3}
    config = PipelineConfig.from_dict({**ESMM_CONFIG.to_dict(), "tasks": [*ESMM_CONFIG.to_dict()["tasks"], interest],
                                       "model": {"fusion": {"click": 1.0, "interest": 1.0}}})
    with pytest.raises(ConfigError, match=r"model.fusion: task 'interest' \(multiclass\) gives 3 scores"):
        build_model(config, CARDINALITIES)


def test_esmm_takes_only_binary_heads():
    watch = {"name": "watch_time", "type": "regression", "label_key": "watch_time"}
    config = PipelineConfig.from_dict({**ESMM_CONFIG.to_dict(), "tasks": [ESMM_CONFIG.to_dict()["tasks"][0], watch],
                                       "model": {"esmm_tasks": ["click", "watch_time"]}})
    with pytest.raises(ConfigError, match="model.esmm_tasks: task 'watch_time' is regression"):
        build_model(config, CARDINALITIES)
