"""The multi-task Keras model: encoder -> architecture -> one tower and head per task, trained on the
weighted sum of the tasks' masked losses."""

import tensorflow as tf
import tf_keras

from models import zoo
from models.layers import MLP, FeatureEncoder
from models.tasks import Task
from pipeline.config import PipelineConfig


class MultiTaskModel(tf_keras.Model):
    """Takes the transformed features (label and weight columns may ride along) and returns {task: prediction}."""

    def __init__(self, config: PipelineConfig, tasks: list[Task], cardinalities: dict[str, int], **kwargs):
        super().__init__(**kwargs)
        self.tasks = tasks
        self.encoder = FeatureEncoder(
            cardinalities,
            {f.name: f.embedding_dim for f in config.features if f.is_categorical},
            [f.name for f in config.features if not f.is_categorical],
            embedding_l2=config.model.embedding_l2)
        self.architecture = zoo.make_architecture(config.model, [t.name for t in tasks])
        self.towers = {t.name: MLP(list(t.config.tower), dropout=t.config.dropout, batch_norm=t.config.batch_norm,
                                   l2=t.config.l2, name=f"{t.name}_tower") for t in tasks}
        self.heads = {t.name: t.make_head() for t in tasks}
        self.loss_weights = {t.name: t.config.loss_weight for t in tasks}
        self.total_tracker = tf_keras.metrics.Mean(name="loss")
        self.loss_trackers = {t.name: tf_keras.metrics.Mean(name=f"{t.name}_loss") for t in tasks}
        self.task_metrics = {t.name: t.make_metrics() for t in tasks}

    def call(self, features, training=False):
        per_task = self.architecture(self.encoder(features), training=training)
        return {t.name: t.predictions(self.heads[t.name](self.towers[t.name](per_task[t.name], training=training)))
                for t in self.tasks}

    def task_losses(self, features, predictions) -> dict[str, tf.Tensor]:
        """Each task's loss, averaged over the examples whose label is present."""
        return {t.name: t.loss(features[t.label_feature], features[t.weight_feature], predictions[t.name])
                for t in self.tasks}

    def total_loss(self, losses: dict[str, tf.Tensor]) -> tf.Tensor:
        total = tf.add_n([self.loss_weights[name] * loss for name, loss in losses.items()])
        return total + tf.add_n(self.losses) if self.losses else total

    # The steps have no tensor-dependent Python control flow; autograph would spend ~25 s transpiling Keras.
    @tf.autograph.experimental.do_not_convert
    def train_step(self, features):
        with tf.GradientTape() as tape:
            predictions = self(features, training=True)
            losses = self.task_losses(features, predictions)
            total = self.total_loss(losses)
        self.optimizer.minimize(total, self.trainable_variables, tape=tape)
        return self._update_metrics(features, predictions, losses, total)

    @tf.autograph.experimental.do_not_convert
    def test_step(self, features):
        predictions = self(features, training=False)
        losses = self.task_losses(features, predictions)
        return self._update_metrics(features, predictions, losses, self.total_loss(losses))

    def _update_metrics(self, features, predictions, losses, total):
        self.total_tracker.update_state(total)
        for t in self.tasks:
            self.loss_trackers[t.name].update_state(losses[t.name], sample_weight=tf.reduce_sum(
                features[t.weight_feature]))
            for metric in self.task_metrics[t.name]:
                metric.update_state(features[t.label_feature], predictions[t.name],
                                    sample_weight=features[t.weight_feature])
        return {m.name: m.result() for m in self.metrics}

    @property
    def metrics(self):
        return [self.total_tracker, *self.loss_trackers.values(),
                *(m for metrics in self.task_metrics.values() for m in metrics)]
