"""Loss balancing: how the per-task losses become gradients for the shared and the task-specific parameters.

Every balancer is a ``Balancer``: a Keras layer (its own weights train with the model) with one method that the
model's train step calls, ``gradients(tape, losses, regularization, shared, others)``, returning one gradient per
variable of ``shared + others`` (``others`` includes the balancer's own weights). The tape is persistent;
balancers re-enter it to record the sums they differentiate.
"""

import tensorflow as tf
import tf_keras

_ZERO = tf.UnconnectedGradients.ZERO


class Balancer(tf_keras.layers.Layer):
    """The base of every balancer: holds the tasks' configured loss weights and, unless a subclass says
    otherwise, differentiates their weighted sum. Subclasses change ``task_weights`` (learned weights),
    ``weighted_sum`` (extra terms) or ``gradients`` (gradient surgery)."""

    def __init__(self, loss_weights: dict[str, float], **kwargs):
        super().__init__(**kwargs)
        self.loss_weights = dict(loss_weights)
        self.task_names = list(self.loss_weights)

    def configured_weights(self) -> tf.Tensor:
        """The tasks' ``loss_weight`` from the config, in ``task_names`` order."""
        return tf.constant([self.loss_weights[n] for n in self.task_names], tf.float32)

    def task_weights(self) -> tf.Tensor:
        """The current weight of each task's loss, in ``task_names`` order."""
        return self.configured_weights()

    def weighted_sum(self, losses: dict[str, tf.Tensor]) -> tf.Tensor:
        return tf.reduce_sum(self.task_weights() * self._stack(losses))

    def gradients(self, tape, losses, regularization, shared, others):
        with tape:
            total = self.weighted_sum(losses) + regularization
        return tape.gradient(total, shared + others, unconnected_gradients=_ZERO)

    def finish_step(self):
        """Runs after the optimizer applied the gradients."""

    def _stack(self, losses):
        return tf.stack([losses[n] for n in self.task_names])

    def get_config(self):
        return {**super().get_config(), "loss_weights": self.loss_weights}


@tf_keras.utils.register_keras_serializable(package="mtl")
class FixedWeights(Balancer):
    """The gradient of sum(weight_t * loss_t), with the weights from the task config (the base behaviour)."""


@tf_keras.utils.register_keras_serializable(package="mtl")
class UncertaintyWeighting(Balancer):
    """Kendall et al. 2018: learns s_t = log(sigma_t^2) and minimises sum(w_t * (exp(-s_t) * L_t + s_t) / 2)."""

    def build(self, input_shape=None):
        self.log_variances = self.add_weight(name="log_variances", shape=[len(self.task_names)],
                                             initializer="zeros")
        super().build(input_shape)

    def task_weights(self):
        return self.configured_weights() * 0.5 * tf.exp(-self.log_variances)

    def weighted_sum(self, losses):
        return super().weighted_sum(losses) + 0.5 * tf.reduce_sum(self.configured_weights() * self.log_variances)


@tf_keras.utils.register_keras_serializable(package="mtl")
class GradNorm(Balancer):
    """Chen et al. 2018: learns task weights so that each weighted task's gradient norm on the shared parameters
    tracks the mean norm times (relative inverse training rate)^alpha; weights are renormalised to their sum.
    The norms are taken over all shared parameters (the paper uses the last shared layer); with MMoE and PLE
    these include the per-task gates and experts, which only that task's gradient reaches."""

    def __init__(self, loss_weights, alpha: float = 1.5, **kwargs):
        super().__init__(loss_weights, **kwargs)
        self.alpha = alpha

    def build(self, input_shape=None):
        initial = self.configured_weights()
        # Assigned inside the train step: under a distribution strategy, each assignment is the replicas' mean.
        self.weights_var = self.add_weight(name="task_weights", shape=initial.shape,
                                           initializer=tf_keras.initializers.Constant(initial.numpy()),
                                           aggregation=tf.VariableAggregation.MEAN)
        self.initial_losses = self.add_weight(name="initial_losses", shape=initial.shape, initializer="zeros",
                                              trainable=False, aggregation=tf.VariableAggregation.MEAN)
        super().build(input_shape)

    def task_weights(self):
        return tf.convert_to_tensor(self.weights_var)

    def gradients(self, tape, losses, regularization, shared, others):
        stacked = self._stack(losses)
        self.initial_losses.assign(tf.where(self.initial_losses > 0, self.initial_losses, stacked))
        norms = tf.stack([tf.linalg.global_norm(_dense(tape.gradient(losses[n], shared, unconnected_gradients=_ZERO)))
                          for n in self.task_names])
        ratios = tf.math.divide_no_nan(stacked, self.initial_losses)
        relative = tf.math.divide_no_nan(ratios, tf.reduce_mean(ratios))
        with tf.GradientTape() as weight_tape:
            norms_weighted = self.weights_var * tf.stop_gradient(norms)
            target = tf.stop_gradient(tf.reduce_mean(norms_weighted) * relative ** self.alpha)
            gradnorm_loss = tf.reduce_sum(tf.abs(norms_weighted - target))
        weight_gradient = weight_tape.gradient(gradnorm_loss, self.weights_var)
        with tape:
            model_loss = tf.reduce_sum(tf.stop_gradient(self.task_weights()) * self._stack(losses)) + regularization
        gradients = tape.gradient(model_loss, shared + others, unconnected_gradients=_ZERO)
        return [weight_gradient if v is self.weights_var else g for v, g in zip(shared + others, gradients,
                                                                               strict=True)]

    def finish_step(self):
        total = float(sum(self.loss_weights.values()))
        positive = tf.maximum(self.weights_var, 1e-3)
        self.weights_var.assign(positive * total / tf.reduce_sum(positive))

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha}


@tf_keras.utils.register_keras_serializable(package="mtl")
class PCGrad(Balancer):
    """Yu et al. 2020: on the shared parameters, each task's gradient loses its component along any other
    task's gradient it conflicts with (negative dot product); task-specific parameters train as usual."""

    def gradients(self, tape, losses, regularization, shared, others):
        with tape:
            weights = self.task_weights()
            weighted = [weights[i] * losses[n] for i, n in enumerate(self.task_names)]
            total = self.weighted_sum(losses) + regularization
        per_task = [_dense(tape.gradient(w, shared, unconnected_gradients=_ZERO)) for w in weighted]
        regularization_grads = _dense(tape.gradient(regularization, shared, unconnected_gradients=_ZERO))
        shared_grads = [g + r for g, r in zip(project_conflicting(per_task), regularization_grads, strict=True)]
        other_grads = tape.gradient(total, others, unconnected_gradients=_ZERO)
        return shared_grads + list(other_grads)


def project_conflicting(task_gradients: list[list[tf.Tensor]]) -> list[tf.Tensor]:
    """PCGrad's surgery: g_i -= min(g_i . g_j, 0) / |g_j|^2 * g_j for every other task j (original g_j, fixed
    order), then the sum over tasks, reshaped like the variables."""
    flat = [tf.concat([tf.reshape(g, [-1]) for g in grads], axis=0) for grads in task_gradients]
    projected = []
    for i, g in enumerate(flat):
        for j, other in enumerate(flat):
            if i != j:
                dot = tf.reduce_sum(g * other)
                g = g - tf.math.divide_no_nan(tf.minimum(dot, 0.0), tf.reduce_sum(other * other)) * other
        projected.append(g)
    total = tf.add_n(projected)
    sizes = [v.shape.num_elements() for v in task_gradients[0]]
    return [tf.reshape(part, v.shape) for part, v in zip(tf.split(total, sizes), task_gradients[0], strict=True)]


def _dense(gradients):
    return [tf.convert_to_tensor(g) for g in gradients]
