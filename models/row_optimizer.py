"""The optimizer of the id tables: a step updates only the rows its batch read.

Keras' Adam, given an embedding's sparse gradient, still decays both moments of every row and moves every row by
its old momentum, so a step costs the whole table (and a whole-table L2 makes the gradient itself dense):
49x slower at a million rows than at five thousand (benchmarks/results/id-scale.md). ``RowAdam`` is Adam on the
rows a batch read, as TensorFlow Addons' LazyAdam: their moments and values move, no other row's do. What a
whole-table L2 did for rows between their appearances (pull them towards zero), ``weight_decay`` does lazily:
every row of a table shrinks by a factor (1 - learning_rate x its weight decay) per step, and a row that was not
read pays the steps it missed at its next update; ``settle`` brings every row up to date before validation reads
the tables and before export. Keras' Adam on a whole-table L2 shrinks a row between its appearances by
lr x 2 l2 w / sqrt(v) per step, where v is the row's own gradient scale, so the decay that stands in for an L2 is
far larger than that L2 (benchmarks/results/id-updates.md). The multi-task model steps its id tables with it
and every other weight with Keras' Adam, as TensorFlow Recommenders' CompositeOptimizer does.
"""

import tensorflow as tf
import tf_keras


@tf_keras.utils.register_keras_serializable(package="mtl")
class RowAdam(tf_keras.optimizers.Optimizer):
    """Adam on the rows of 2-D tables that a sparse (tf.IndexedSlices) gradient names.

    Args:
        learning_rate: Adam's step size (a float). Default 0.001.
        beta_1, beta_2, epsilon: Adam's, with Keras' defaults (0.9, 0.999, 1e-7); the bias correction counts this
            optimizer's steps.
        weight_decay: decoupled decay of every row, applied lazily (module docstring): a number for every table, or
            a function of the table giving its own (MultiTaskModel.id_table_l2). 0 (the default) keeps no per-row
            step counter.

    A row read several times in a batch gets the sum of its gradients, once. A dense gradient (a balancer that
    densifies, e.g. PCGrad) updates every row, at a whole table's cost.
    """

    def __init__(self, learning_rate: float = 0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, weight_decay=0.0, name: str = "RowAdam", **kwargs):
        # Not XLA-compiled: XLA's scatter writes a new copy of the whole table. No Keras weight decay: the base
        # class applies it to whole tables (its default, 0, is still a whole-table multiply per step).
        kwargs.update(jit_compile=False, weight_decay=None)
        super().__init__(name=name, **kwargs)
        self._learning_rate = self._build_learning_rate(learning_rate)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon
        self.row_decay = weight_decay  # not Keras' weight_decay: the base class would apply that to whole tables

    def build(self, var_list):
        super().build(var_list)
        if getattr(self, "_built", False):
            return
        self._built = True
        self._tables = list(var_list)
        self._momentums = [self.add_variable_from_reference(v, "m") for v in var_list]
        self._velocities = [self.add_variable_from_reference(v, "v") for v in var_list]
        self._decays = [float(self.row_decay(v) if callable(self.row_decay) else self.row_decay) for v in var_list]
        # The step at which each row last caught up with its table's decay (kept for tables that decay).
        self._settled = [self.add_variable(shape=v.shape[:1], dtype=tf.float32, name=f"{v.name.split(':')[0]}/settled")
                         if decay else None for v, decay in zip(var_list, self._decays, strict=True)]

    def update_step(self, gradient, variable):
        if isinstance(gradient, tf.IndexedSlices):
            rows, position = tf.unique(gradient.indices)
            values = tf.math.unsorted_segment_sum(gradient.values, position, tf.shape(rows)[0])
        else:
            rows, values = tf.range(tf.shape(variable)[0], dtype=tf.int64), gradient
        index = self._index_dict[self._var_key(variable)]
        m, v = self._momentums[index], self._velocities[index]
        step = tf.cast(self.iterations + 1, variable.dtype)
        m_rows = self.beta_1 * tf.gather(m, rows) + (1 - self.beta_1) * values
        v_rows = self.beta_2 * tf.gather(v, rows) + (1 - self.beta_2) * tf.square(values)
        alpha = self._lr() * tf.sqrt(1 - self.beta_2 ** step) / (1 - self.beta_1 ** step)
        new_rows = tf.gather(variable, rows)
        if self._decays[index]:
            settled = self._settled[index]
            new_rows *= self._shrink(self._decays[index], step - tf.gather(settled, rows))[:, None]
            settled.scatter_update(tf.IndexedSlices(tf.fill(tf.shape(rows), step), rows))
        m.scatter_update(tf.IndexedSlices(m_rows, rows))
        v.scatter_update(tf.IndexedSlices(v_rows, rows))
        variable.scatter_update(tf.IndexedSlices(new_rows - alpha * m_rows / (tf.sqrt(v_rows) + self.epsilon),
                                                 rows))

    def settle(self):
        """Applies to every row the decay of the steps since its last update: afterwards each table holds what a
        per-step decay of every row would have left. Costs one pass over the tables; idempotent."""
        if not getattr(self, "_built", False):
            return
        step = tf.cast(self.iterations, tf.float32)
        for table, decay, settled in zip(self._tables, self._decays, self._settled, strict=True):
            if decay:
                table.assign(table * self._shrink(decay, step - settled)[:, None])
                settled.assign(tf.fill(tf.shape(settled), step))

    def _lr(self):
        return tf.cast(self.learning_rate, tf.float32)

    def _shrink(self, decay, missed_steps):
        return (1 - self._lr() * decay) ** missed_steps

    def get_config(self):
        return {**super().get_config(), "learning_rate": self._serialize_hyperparameter(self._learning_rate),
                "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon,
                "weight_decay": self.row_decay if not callable(self.row_decay) else 0.0}
