"""The multi-task Keras model: encoder -> architecture -> one tower and head per task, trained by a custom step
in which a balancer turns the tasks' masked losses into gradients."""

import tensorflow as tf
import tf_keras

from models import zoo
from models.balancing import make_balancer
from models.layers import MLP, FeatureEncoder
from models.tasks import Task
from pipeline.config import PipelineConfig

FUSION_OUTPUT = "fusion_score"


class MultiTaskModel(tf_keras.Model):
    """Takes the transformed features (label and weight columns may ride along) and returns {task: prediction},
    plus ``fusion_score`` when the config declares fusion weights."""

    def __init__(self, config: PipelineConfig, tasks: list[Task], cardinalities: dict[str, int], **kwargs):
        super().__init__(**kwargs)
        self.tasks = tasks
        self.model_config = config.model
        self.encoder = FeatureEncoder(
            cardinalities,
            {f.name: f.embedding_dim for f in config.features if f.is_categorical},
            [f.name for f in config.features if not f.is_categorical],
            embedding_l2=config.model.embedding_l2, dot_interaction=list(config.model.dot_interaction))
        self.architecture = zoo.make_architecture(config.model, [t.name for t in tasks])
        self.towers = {t.name: MLP(list(t.config.tower), dropout=t.config.dropout, batch_norm=t.config.batch_norm,
                                   l2=t.config.l2, name=f"{t.name}_tower") for t in tasks}
        self.heads = {t.name: t.make_head() for t in tasks}
        self.balancer = make_balancer(config.model, {t.name: t.config.loss_weight for t in tasks})
        self.balancer.build(None)
        self.total_tracker = tf_keras.metrics.Mean(name="loss")
        self.loss_trackers = {t.name: tf_keras.metrics.Mean(name=f"{t.name}_loss") for t in tasks}
        self.weight_trackers = {t.name: tf_keras.metrics.Mean(name=f"{t.name}_loss_weight") for t in tasks}
        self.task_metrics = {t.name: t.make_metrics() for t in tasks}

    def call(self, features, training=False):
        per_task = self.architecture(self.encoder(features), training=training)
        outputs = {t.name: t.predictions(self.heads[t.name](self.towers[t.name](per_task[t.name], training=training)))
                   for t in self.tasks}
        if self.model_config.fusion:
            outputs[FUSION_OUTPUT] = self._fusion(outputs)
        return outputs

    def _fusion(self, outputs):
        kinds = {t.name: t.config.type for t in self.tasks}
        return tf.add_n([weight * (tf.math.log1p(tf.maximum(outputs[name], 0.0)) if kinds[name] == "regression"
                                   else outputs[name])
                         for name, weight in self.model_config.fusion.items()])

    def task_losses(self, features, predictions) -> dict[str, tf.Tensor]:
        """Each task's loss, averaged over the examples whose label is present (ESMM: see _esmm_loss)."""
        losses = {t.name: t.loss(features[t.label_feature], features[t.weight_feature], predictions[t.name])
                  for t in self.tasks}
        if self.model_config.esmm_tasks:
            losses[self.model_config.esmm_tasks[1]] = self._esmm_loss(features, predictions)
        return losses

    def _esmm_loss(self, features, predictions):
        """ESMM: the cvr head learns through pCTCVR = pCTR x pCVR against click AND conversion, on every
        impression (an impression without a click is a known non-conversion)."""
        ctr, cvr = (next(t for t in self.tasks if t.name == name) for name in self.model_config.esmm_tasks)
        clicked = features[ctr.label_feature]
        label = clicked * features[cvr.label_feature]
        weight = features[ctr.weight_feature] * tf.where(clicked > 0, features[cvr.weight_feature], 1.0)
        return ctr.loss(label, weight, predictions[ctr.name] * predictions[cvr.name])

    def objective_losses(self, features, losses: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """The task losses the optimiser sees. per_label: as they are (each task's mean over its present labels).
        per_example: each times the share of the batch that has its label, so that one labelled example weighs
        the same in every task and a sparse task's few examples do not drown the others' gradient on shared rows."""
        if self.model_config.loss_normalization == "per_label":
            return losses
        share = {t.name: tf.reduce_mean(features[t.weight_feature]) for t in self.tasks}
        if self.model_config.esmm_tasks:  # the cvr loss runs over every impression the ctr head sees
            ctr, cvr = self.model_config.esmm_tasks
            share[cvr] = share[ctr]
        return {name: loss * share[name] for name, loss in losses.items()}

    def total_loss(self, losses: dict[str, tf.Tensor]) -> tf.Tensor:
        return self.balancer.weighted_sum(losses) + self._regularization()

    def _regularization(self):
        return tf.add_n(self.losses) if self.losses else tf.constant(0.0)

    # The steps have no tensor-dependent Python control flow; autograph would spend ~25 s transpiling Keras.
    @tf.autograph.experimental.do_not_convert
    def train_step(self, features):
        with tf.GradientTape(persistent=True) as tape:
            predictions = self(features, training=True)
            losses = self.task_losses(features, predictions)
            objective = self.objective_losses(features, losses)
            regularization = self._regularization()
        # Listed after the forward pass: on the first call, that is what creates the variables.
        shared = self.encoder.trainable_variables + self.architecture.trainable_variables
        shared_ids = {id(v) for v in shared}
        others = [v for v in self.trainable_variables if id(v) not in shared_ids]
        gradients = self.balancer.gradients(tape, objective, regularization, shared, others)
        del tape
        gradients = self._scale_tower_gradients(gradients, shared + others)
        if self.model_config.clip_norm:
            gradients, _ = tf.clip_by_global_norm(gradients, self.model_config.clip_norm)
        self.optimizer.apply_gradients(zip(gradients, shared + others, strict=True))
        self.balancer.finish_step()
        return self._update_metrics(features, predictions, losses,
                                    self.balancer.weighted_sum(objective) + regularization)

    def _scale_tower_gradients(self, gradients, variables):
        """Per-task learning-rate multipliers, applied to that task's tower and head."""
        scale = {id(v): t.config.lr_multiplier for t in self.tasks if t.config.lr_multiplier != 1.0
                 for v in self.towers[t.name].trainable_variables + self.heads[t.name].trainable_variables}
        return [g * scale[id(v)] if id(v) in scale else g for g, v in zip(gradients, variables, strict=True)]

    @tf.autograph.experimental.do_not_convert
    def test_step(self, features):
        predictions = self(features, training=False)
        losses = self.task_losses(features, predictions)
        return self._update_metrics(features, predictions, losses,
                                    self.total_loss(self.objective_losses(features, losses)))

    def _update_metrics(self, features, predictions, losses, total):
        self.total_tracker.update_state(total)
        weights = self.balancer.task_weights()
        for i, t in enumerate(self.tasks):
            self.loss_trackers[t.name].update_state(losses[t.name], sample_weight=tf.reduce_sum(
                features[t.weight_feature]))
            self.weight_trackers[t.name].update_state(weights[i])
            for metric in self.task_metrics[t.name]:
                metric.update_state(features[t.label_feature], predictions[t.name],
                                    sample_weight=t.metric_weights(features[t.weight_feature]))
        return {m.name: m.result() for m in self.metrics}

    @property
    def metrics(self):
        return [self.total_tracker, *self.loss_trackers.values(), *self.weight_trackers.values(),
                *(m for metrics in self.task_metrics.values() for m in metrics)]
