"""Shared-bottom: one MLP shared by every task, whose output feeds each task's tower."""

import tf_keras

from models.layers import MLP


@tf_keras.utils.register_keras_serializable(package="mtl")
class SharedBottom(tf_keras.layers.Layer):
    """Returns the same shared representation for every task name."""

    def __init__(self, task_names: list[str], shared_layers: list[int], **kwargs):
        super().__init__(**kwargs)
        self.task_names = list(task_names)
        self.shared_layers = list(shared_layers)
        self.bottom = MLP(self.shared_layers, name="shared_bottom_mlp")


    def call(self, x, training=False):
        shared = self.bottom(x, training=training)
        return {name: shared for name in self.task_names}

    def get_config(self):
        return {**super().get_config(), "task_names": self.task_names, "shared_layers": self.shared_layers}
