"""The multi-task Keras model: encoder -> architecture -> one tower and head per task, trained by a custom step
in which a balancer turns the tasks' masked losses into gradients. It is composed of injected parts
(``models.builder`` maps a config to them) and reads no config itself."""

import tensorflow as tf
import tf_keras

from config import LossNormalization
from models.balancing import Balancer
from models.layers import row_updated
from models.tasks import Task
from models.text import split_input

FUSION_OUTPUT = "fusion_score"


class MultiTaskModel(tf_keras.Model):
    """Takes the transformed features (label and weight columns may ride along) and returns {task: prediction},
    plus ``fusion_score`` when fusion weights are given. A per-token task's prediction is [batch, max_tokens,
    units]; in training it is (its real tokens' rows [tokens, units], their (example, position) [tokens, 2]), what
    its loss and metric read (``Task.compared``), so that no padded position costs the step anything.

    Parts: ``encoder`` (features -> one vector), ``architecture`` (vector -> {task: representation}), ``towers``
    ({task: layer}), ``task_encoders`` (optional, {task: features -> a vector its tower also reads}),
    ``text_encoders`` (optional, {text feature: token ids -> {reader: (per-token states, pooled vector)}}, the
    reader "" for every head, joining the encoder's vector, or a task's own next to its representation; a per-token
    task's tower reads its text feature's states, each with the task's representation), ``tasks`` (heads,
    losses, metrics) and ``balancer`` (losses -> gradients). Options:
    ``loss_normalization``, ``esmm_tasks`` ((ctr, cvr): cvr learns through pCTR x pCVR), ``fusion``
    ({task: weight} of scalar heads), ``clip_norm`` (global gradient norm) and ``interaction`` (features -> a
    vector the heads in ``interaction_tasks``, default all, read next to their tower's output, e.g.
    FactorInteraction's u * v).
    """

    def __init__(self, *, encoder: tf_keras.layers.Layer, architecture: tf_keras.layers.Layer,
                 towers: dict[str, tf_keras.layers.Layer], tasks: list[Task], balancer: Balancer,
                 task_encoders: dict[str, tf_keras.layers.Layer] | None = None,
                 text_encoders: dict[str, tf_keras.layers.Layer] | None = None,
                 loss_normalization: LossNormalization = LossNormalization.PER_LABEL,
                 esmm_tasks: tuple[str, ...] = (), fusion: dict[str, float] | None = None,
                 clip_norm: float | None = None, interaction: tf_keras.layers.Layer | None = None,
                 interaction_tasks: tuple[str, ...] = (), **kwargs):
        super().__init__(**kwargs)
        self.tasks = list(tasks)
        self.encoder = encoder
        self.architecture = architecture
        self.towers = dict(towers)
        self.task_encoders = dict(task_encoders or {})
        self.text_encoders = dict(text_encoders or {})
        self.heads = {t.name: t.make_head() for t in self.tasks}
        self.balancer = balancer
        self.balancer.build(None)
        self.loss_normalization = loss_normalization
        self.esmm_tasks = tuple(esmm_tasks)
        self.fusion = dict(fusion or {})
        self.clip_norm = clip_norm
        self.interaction = interaction
        self.interaction_tasks = set(interaction_tasks or [t.name for t in self.tasks])
        self.total_tracker = tf_keras.metrics.Mean(name="loss")
        self.loss_trackers = {t.name: tf_keras.metrics.Mean(name=f"{t.name}_loss") for t in self.tasks}
        self.weight_trackers = {t.name: tf_keras.metrics.Mean(name=f"{t.name}_loss_weight") for t in self.tasks}
        self.task_metrics = {t.name: t.make_metrics() for t in self.tasks}

    # No tensor-dependent Python control flow here either; autograph would convert the loop over the tasks and
    # then each Keras layer it calls.
    @tf.autograph.experimental.do_not_convert
    def call(self, features, training=False):
        texts = {name: encoder(features[name], training=training) for name, encoder in self.text_encoders.items()}
        shared = [self.encoder(features), *(text[""][1] for text in texts.values() if "" in text)]
        per_task = self.architecture(tf.concat(shared, axis=-1), training=training)
        interaction = [self.interaction(features)] if self.interaction is not None else []
        outputs = {}
        for task in self.tasks:
            tower_input = per_task[task.name]
            own = [self.task_encoders[task.name](features)] if task.name in self.task_encoders else []
            own += [text[task.name][1] for text in texts.values() if task.name in text]
            if own:
                tower_input = tf.concat([tower_input, *own], axis=-1)
            reads = interaction and task.name in self.interaction_tasks
            example_parts = [tower_input, *interaction] if reads else [tower_input]
            if task.per_token:  # a row per real token: its state, with its example's representation
                text = texts[task.config.text_feature]
                states = text[task.name if task.name in text else ""][0]
                mask = self._token_mask(task.config.text_feature, features)
                tokens = tf.where(mask)  # [real tokens, 2]: (example, position); padding costs the tower nothing
                example_parts = [tf.gather(part, tokens[:, 0]) for part in example_parts]
                tower_input = tf.concat([tf.gather_nd(states, tokens), example_parts[0]], axis=-1)
            tower_output = self.towers[task.name](tower_input, training=training)
            head_input = tf.concat([tower_output, *example_parts[1:]], axis=-1) if reads else tower_output
            outputs[task.name] = task.predictions(self.heads[task.name](head_input))
            if task.per_token and training:  # the loss and the metric read the real tokens' rows alone
                outputs[task.name] = (outputs[task.name], tokens)
            elif task.per_token:  # back to [batch, max_tokens, units], padding read as outside every span
                outputs[task.name] = task.at_positions(outputs[task.name], mask)
        if self.fusion:
            outputs[FUSION_OUTPUT] = self.fusion_score(outputs)
        return outputs

    def _token_mask(self, feature: str, features) -> tf.Tensor:
        """[batch, max_tokens] True at the real tokens of text feature ``feature`` (id 0 is padding)."""
        encoder = self.text_encoders[feature]
        ids, _ = split_input(features[feature], encoder.max_tokens, encoder.char_ngrams_per_token)
        return tf.not_equal(ids, 0)

    def fusion_score(self, outputs):
        """sum of weight x the head's fusion input (each task decides its own, e.g. log1p for an amount), from the
        heads' ``outputs``; call and the serving module (which may serve heads from other epochs) call it."""
        tasks = {t.name: t for t in self.tasks}
        return tf.add_n([weight * tasks[name].fusion_input(outputs[name]) for name, weight in self.fusion.items()])

    def task_losses(self, features, predictions) -> dict[str, tf.Tensor]:
        """Each task's loss, averaged over the examples whose label is present (ESMM: see _esmm_loss)."""
        losses = {t.name: t.loss(*t.compared(features[t.label_feature], features[t.weight_feature],
                                             predictions[t.name])) for t in self.tasks}
        if self.esmm_tasks:
            losses[self.esmm_tasks[1]] = self._esmm_loss(features, predictions)
        return losses

    def _esmm_loss(self, features, predictions):
        """ESMM: the cvr head learns through pCTCVR = pCTR x pCVR against click AND conversion, on every
        impression (an impression without a click is a known non-conversion)."""
        ctr, cvr = (next(t for t in self.tasks if t.name == name) for name in self.esmm_tasks)
        clicked = features[ctr.label_feature]
        label = clicked * features[cvr.label_feature]
        weight = features[ctr.weight_feature] * tf.where(clicked > 0, features[cvr.weight_feature], 1.0)
        return ctr.loss(label, weight, predictions[ctr.name] * predictions[cvr.name])

    def objective_losses(self, features, losses: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """The task losses the optimiser sees. per_label: as they are (each task's mean over its present labels).
        per_example: each times the share of the batch that has its label, so that one labelled example weighs
        the same in every task and a sparse task's few examples do not drown the others' gradient on shared rows."""
        if self.loss_normalization == LossNormalization.PER_LABEL:
            return losses
        share = {t.name: tf.reduce_mean(features[t.weight_feature]) for t in self.tasks}
        if self.esmm_tasks:  # the cvr loss runs over every impression the ctr head sees
            ctr, cvr = self.esmm_tasks
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
        shared = self.encoder.trainable_variables + self.architecture.trainable_variables + [
            v for encoder in self.text_encoders.values() for v in encoder.trainable_variables]
        shared_ids = {id(v) for v in shared}
        others = [v for v in self.trainable_variables if id(v) not in shared_ids]
        gradients = self.balancer.gradients(tape, objective, regularization, shared, others)
        del tape
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        if replicas > 1:  # the optimizer sums the replicas' gradients: make that their mean (models/distribution.py)
            gradients = [tf.math.scalar_mul(1.0 / replicas, g) for g in gradients]
        if self.clip_norm:  # with several replicas, each clips its own share before the sum
            gradients, _ = tf.clip_by_global_norm(gradients, self.clip_norm)
        self._apply_gradients(gradients, shared + others)
        self.balancer.finish_step()
        return self._update_metrics(features, predictions, losses,
                                    self.balancer.weighted_sum(objective) + regularization)

    def compile(self, optimizer="rmsprop", id_optimizer: tf_keras.optimizers.Optimizer | None = None, **kwargs):
        """Keras compile, plus a copy of ``optimizer`` for each task ``lr_multiplier`` other than 0 and 1, at that
        multiple of its learning rate (a number, not a schedule), which steps that task's tower and head. Adam
        divides each gradient by its own running scale, so scaling the gradient would leave its step unchanged.
        ``id_optimizer`` (e.g. models.row_optimizer.RowAdam), when given, steps the id tables (every Embedding) of
        ``models.layers.row_updated`` size instead of ``optimizer``."""
        super().compile(optimizer=optimizer, **kwargs)
        self.id_optimizer = id_optimizer
        settings = self.optimizer.get_config()
        multipliers = sorted({t.config.lr_multiplier for t in self.tasks} - {0.0, 1.0})
        self.tower_optimizers = {str(m): type(self.optimizer).from_config(
            {**settings, "learning_rate": settings["learning_rate"] * m}) for m in multipliers}

    def _apply_gradients(self, gradients, variables):
        """Steps every variable with the optimizer of its learning rate: the tower and head of a task with an
        ``lr_multiplier`` other than 1 with that multiple's (none at 0), the id tables with ``id_optimizer`` when
        there is one, all others with ``self.optimizer``."""
        multiplier = {id(v): t.config.lr_multiplier for t in self.tasks
                      for v in self.towers[t.name].trainable_variables + self.heads[t.name].trainable_variables}
        tables = {id(v) for v in self.id_tables() if row_updated(v.shape[0])} if self.id_optimizer else set()
        groups, table_pairs = {}, []
        for gradient, variable in zip(gradients, variables, strict=True):
            if id(variable) in tables:
                table_pairs.append((gradient, variable))
            else:
                groups.setdefault(multiplier.get(id(variable), 1.0), []).append((gradient, variable))
        if table_pairs:
            self.id_optimizer.apply_gradients(table_pairs)
        for m, pairs in groups.items():
            if m == 1.0:
                self.optimizer.apply_gradients(pairs)
            elif m:
                self.tower_optimizers[str(m)].apply_gradients(pairs)

    # What a SavedModel leaves out: the optimizers' state (Adam's two moments per weight) would triple the exported
    # file and its load time, and serving, warm start (which starts the optimizer fresh) and TFMA never read it.
    _NOT_EXPORTED = ("optimizer", "id_optimizer", "tower_optimizers")

    def _trackable_children(self, save_type="checkpoint", **kwargs):
        children = super()._trackable_children(save_type, **kwargs)
        if save_type == "savedmodel":
            for name in self._NOT_EXPORTED:
                children.pop(name, None)
        return children

    def id_layers(self) -> list[tf_keras.layers.Layer]:
        """The layers that hold the id tables: the feature encoder, the task encoders, the factor interaction and
        the text encoders (their sequence encoders with their token tables). A head copy with ``head_copies:
        dense_weights`` shares these layers with this model (models.builder.build_model's ``id_layers_from``)."""
        return [layer for layer in (self.encoder, *self.task_encoders.values(), self.interaction,
                                    *self.text_encoders.values()) if layer is not None]

    def id_tables(self) -> list[tf.Variable]:
        """The tables of every Embedding layer: the shared and per-task embeddings and the factor tables."""
        return [layer.embeddings for layer in self._flatten_layers() if isinstance(layer, tf_keras.layers.Embedding)]

    def id_table_l2(self, table: tf.Variable) -> float:
        """The L2 configured for the layer that holds ``table`` (encoders: embedding_l2; factors: l2), which RowAdam
        applies to the tables of ``l2_by_optimizer`` layers."""
        for layer in (self.encoder, *self.task_encoders.values(), self.interaction):
            if layer is not None and any(table is v for v in layer.trainable_weights):
                return float(getattr(layer, "embedding_l2", getattr(layer, "l2", 0.0)))
        return 0.0

    def settle_id_tables(self):
        """Brings every id-table row up to date with ``id_optimizer``'s lazy decay, if it has one (RowAdam.settle):
        models.training.fit calls it before each validation and at the end of training."""
        settle = getattr(self.id_optimizer, "settle", None)
        if settle:
            settle()

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
            targets, label_weights, prediction = t.compared(features[t.label_feature], features[t.weight_feature],
                                                            predictions[t.name])
            for metric in self.task_metrics[t.name]:
                metric.update_state(targets, prediction, sample_weight=t.metric_weights(label_weights))
        return {m.name: m.result() for m in self.metrics}

    @property
    def metrics(self):
        return [self.total_tracker, *self.loss_trackers.values(), *self.weight_trackers.values(),
                *(m for metrics in self.task_metrics.values() for m in metrics)]
