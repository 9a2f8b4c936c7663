"""The optimizer of the id tables: a step updates only the rows its batch read, and a row catches up with the
steps it missed when it is next read.

Keras' Adam, given an embedding's sparse gradient, still decays both moments of every row and moves every row by
its old momentum, so a step costs the whole table (and a whole-table L2 makes the gradient itself dense):
49x slower at a million rows than at five thousand (benchmarks/results/id-scale.md). ``RowAdam`` steps the rows a
batch read only. What Keras' Adam would have done to a row in the steps it was not read (its momentum carries it
on, its moments decay, the whole-table L2 pulls it towards zero at Adam's scale, lr x 2 l2 w / sqrt(v) per step,
but never more than lr per step) has a closed form, which RowAdam applies when the row is next read
(``_catch_up``); ``settle`` applies it to every row before validation reads the tables and before export. Without
it, a row-only Adam keeps a rarely seen user's row where its last appearance left it, which cost click 0.029 AUC
(benchmarks/results/id-updates.md). The multi-task model steps its id tables with it and every other weight with
Keras' Adam, as TensorFlow Recommenders' CompositeOptimizer does.
"""

import tensorflow as tf
import tf_keras


@tf_keras.utils.register_keras_serializable(package="mtl")
class RowAdam(tf_keras.optimizers.Optimizer):
    """Adam on the rows of 2-D tables that a sparse (tf.IndexedSlices) gradient names, with each table's L2.

    Args:
        learning_rate: Adam's step size (a float). Default 0.001.
        beta_1, beta_2, epsilon: Adam's, with Keras' defaults (0.9, 0.999, 1e-7); the bias correction counts this
            optimizer's steps.
        l2: the whole-table L2 (loss l2 x |table|^2) it applies: a number for every table, or a function of the
            table giving its own (MultiTaskModel.id_table_l2). Default 0.

    A row read several times in a batch gets the sum of its gradients, once. A dense gradient (a balancer that
    densifies, e.g. PCGrad) updates every row, at a whole table's cost. Each table keeps, besides Adam's two
    moments, the step of each row's last update (one float per row).
    """

    def __init__(self, learning_rate: float = 0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, l2=0.0, name: str = "RowAdam", **kwargs):
        # Not XLA-compiled: XLA's scatter writes a new copy of the whole table. No Keras weight decay: the base
        # class applies it to whole tables (its default, 0, is still a whole-table multiply per step).
        kwargs.update(jit_compile=False, weight_decay=None)
        super().__init__(name=name, **kwargs)
        self._learning_rate = self._build_learning_rate(learning_rate)
        self.beta_1, self.beta_2, self.epsilon, self.l2 = beta_1, beta_2, epsilon, l2

    def build(self, var_list):
        super().build(var_list)
        if getattr(self, "_built", False):
            return
        self._built = True
        self._tables = list(var_list)
        self._momentums = [self.add_variable_from_reference(v, "m") for v in var_list]
        self._velocities = [self.add_variable_from_reference(v, "v") for v in var_list]
        self._l2s = [float(self.l2(v) if callable(self.l2) else self.l2) for v in var_list]
        self._updated = [self.add_variable(shape=v.shape[:1], dtype=tf.float32, name=f"{v.name.split(':')[0]}/step")
                         for v in var_list]

    def update_step(self, gradient, variable):
        if isinstance(gradient, tf.IndexedSlices):  # apply_gradients has summed the duplicate rows' gradients
            rows, values = gradient.indices, gradient.values
        else:
            rows, values = tf.range(tf.shape(variable)[0], dtype=tf.int64), gradient
        index = self._index_dict[self._var_key(variable)]
        m, v, updated, l2 = self._momentums[index], self._velocities[index], self._updated[index], self._l2s[index]
        step = tf.cast(self.iterations + 1, variable.dtype)
        last = tf.gather(updated, rows)[:, None]  # the step of the row's last update
        w_rows, m_rows, v_rows = self._catch_up(tf.gather(variable, rows), tf.gather(m, rows), tf.gather(v, rows),
                                                last, step - 1, l2)
        if l2:  # the whole-table L2's gradient on these rows, this step
            values += 2 * l2 * w_rows
        m_rows += (1 - self.beta_1) * (values - m_rows)  # b1 m + (1 - b1) g, in fewer ops on [rows, d]
        v_rows += (1 - self.beta_2) * (tf.square(values) - v_rows)
        updated.scatter_update(tf.IndexedSlices(tf.fill(tf.shape(rows), step), rows))
        m.scatter_update(tf.IndexedSlices(m_rows, rows))
        v.scatter_update(tf.IndexedSlices(v_rows, rows))
        variable.scatter_update(tf.IndexedSlices(
            w_rows - self._alpha(step) * m_rows / (tf.sqrt(v_rows) + self.epsilon), rows))

    def settle(self):
        """Catches every row up with the steps since its last update, as if Keras' Adam had stepped the whole
        table every step. Costs one pass over the tables; idempotent."""
        if not getattr(self, "_built", False):
            return
        step = tf.cast(self.iterations, tf.float32)
        for table, m, v, updated, l2 in zip(self._tables, self._momentums, self._velocities, self._updated,
                                            self._l2s, strict=True):
            w_new, m_new, v_new = self._catch_up(table, m, v, updated[:, None], step, l2)
            table.assign(w_new)
            m.assign(m_new)
            v.assign(v_new)
            updated.assign(tf.fill(tf.shape(updated), step))

    def _catch_up(self, w, m, v, last, now, l2):
        """(w, m, v) of rows last updated at step ``last`` (a column, per row) after the steps up to ``now`` of Adam
        on a zero data gradient and the L2's: the momentum's drift, sum_j alpha_j m b1^j / sqrt(v b2^j) (alpha of
        the first missed step: the terms fade by 0.9 a step); the L2's pull, a factor exp(-2 l2 lr
        sqrt(1 - b2^s) sum_j 1 / sqrt(v b2^j)) (s: the middle missed step), but at most lr per step (Adam's
        largest step); the moments decayed by b1^k and b2^k."""
        b1, b2 = self.beta_1, self.beta_2
        missed = now - last
        scale = tf.sqrt(v) + self.epsilon
        r = b1 / b2 ** 0.5
        drift = self._alpha(last + 1) * (r / (1 - r)) * (1 - r ** missed)  # [rows, 1]: one factor per row
        w = w - drift * (m / scale)
        if l2:
            lr, q = self._lr(), b2 ** -0.5
            sums = q * (q ** missed - 1) / (q - 1)
            pull = tf.exp(-2 * l2 * lr * tf.sqrt(1 - b2 ** (last + 1 + missed / 2)) * sums / scale)
            size = tf.maximum(tf.abs(w) * pull, tf.abs(w) - lr * missed)
            w = tf.sign(w) * tf.maximum(size, 0.0)
        return w, m * b1 ** missed, v * b2 ** missed

    def _lr(self):
        return tf.cast(self.learning_rate, tf.float32)

    def _alpha(self, step):
        """Keras Adam's bias-corrected step size at ``step``."""
        return self._lr() * tf.sqrt(1 - self.beta_2 ** step) / (1 - self.beta_1 ** step)

    def get_config(self):
        return {**super().get_config(), "learning_rate": self._serialize_hyperparameter(self._learning_rate),
                "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon,
                "l2": self.l2 if not callable(self.l2) else 0.0}
