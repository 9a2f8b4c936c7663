"""Per-head model selection: each head is served from the epoch of its own best validation loss.

Early stopping on the total validation loss keeps one epoch for every head, and the heads peak at different
epochs: on the benchmark's logs the user x item factors keep improving click for epochs after the sparse heads
(conversion, watch time) have started to overfit, so the total's best epoch cost click up to 0.0085 AUC
(benchmarks/results/id-interactions-500users.md). ``BestEpochPerHead`` replaces Keras' EarlyStopping in
``models.training.fit``.
"""

import numpy as np
import tf_keras


class BestEpochPerHead(tf_keras.callbacks.Callback):
    """Trains until no head's validation loss has improved for ``patience`` epochs; restores the model to the
    epoch of the best total validation loss (as Keras' EarlyStopping would) and keeps a copy of the weights of
    every other epoch that is some head's best. ``head_weights`` then maps each head whose best epoch differs from
    the restored one to those weights; ``best_epochs`` maps every head to its best epoch (0-based).

    With ``copy_id_tables`` False, the copies of the other epochs leave out every weight of the layers that hold
    the id tables (``MultiTaskModel.id_layers``: the feature encoders, the factor interaction, the text encoders;
    None in their place): a head served from another epoch then reads the restored epoch's tables and text
    encoders (head_models), so a 10-million-row table is held once for training's restore, not once per epoch."""

    def __init__(self, task_names: list[str], patience: int, copy_id_tables: bool = True):
        super().__init__()
        self.task_names, self.patience, self.copy_id_tables = list(task_names), patience, copy_id_tables
        self.best_loss = {}
        self.best_epochs: dict[str, int] = {}
        self.kept_epoch = 0
        self.head_weights: dict[str, list[np.ndarray]] = {}
        self._weights: dict[int, list[np.ndarray]] = {}  # epoch -> weights, for the epochs still some head's best
        self._best_total = np.inf

    def on_train_begin(self, logs=None):
        self.best_loss = {name: np.inf for name in self.task_names}
        self.best_epochs, self.head_weights, self._weights = {}, {}, {}
        self._best_total, self.kept_epoch = np.inf, 0

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        improved = [name for name in self.task_names
                    if logs.get(f"val_{name}_loss", np.inf) < self.best_loss[name]]
        for name in improved:
            self.best_loss[name], self.best_epochs[name] = logs[f"val_{name}_loss"], epoch
        if logs.get("val_loss", np.inf) < self._best_total:
            if not self.copy_id_tables and self.kept_epoch in self._weights:  # no longer what training restores
                self._weights[self.kept_epoch] = self._without_id_tables(self._weights[self.kept_epoch])
            self._best_total, self.kept_epoch = logs["val_loss"], epoch
        if improved or epoch == self.kept_epoch:
            weights = self.model.get_weights() if self.copy_id_tables or epoch == self.kept_epoch \
                else self._dense_weights()
            self._weights[epoch] = weights
        wanted = {*self.best_epochs.values(), self.kept_epoch}
        self._weights = {e: w for e, w in self._weights.items() if e in wanted}
        if epoch - max(self.best_epochs.values(), default=epoch) >= max(self.patience, 1):
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.kept_epoch not in self._weights:  # no validation loss was logged
            return
        self.model.set_weights(self._weights[self.kept_epoch])
        self.head_weights = {name: self._weights[epoch] for name, epoch in self.best_epochs.items()
                             if epoch != self.kept_epoch}

    def _shared_positions(self) -> set[int]:
        shared = {id(v) for layer in self.model.id_layers() for v in layer.weights}
        return {i for i, v in enumerate(self.model.weights) if id(v) in shared}

    def _dense_weights(self) -> list:
        shared = self._shared_positions()
        return [None if i in shared else v.numpy() for i, v in enumerate(self.model.weights)]

    def _without_id_tables(self, weights: list) -> list:
        shared = self._shared_positions()
        return [None if i in shared else w for i, w in enumerate(weights)]

    def summary(self) -> str:
        """One line for the Trainer's progress: which epoch (1-based) serves which head."""
        heads = {}
        for name in self.task_names:
            heads.setdefault(self.best_epochs.get(name, self.kept_epoch) + 1, []).append(name)
        parts = [f"{', '.join(names)} from epoch {epoch}" for epoch, names in sorted(heads.items())]
        return "serving " + "; ".join(parts)


def head_models(build, weights_by_head: dict[str, list], example_batch) -> dict:
    """{head: a copy of the model holding that head's best-epoch weights}, one copy per distinct epoch (heads that
    peaked together share it). ``build()`` returns a fresh model of the same config (for weights without id tables,
    one that shares the restored model's id layers: models.builder.build_model's ``id_layers_from``);
    ``example_batch`` builds its variables; a None weight is left as built (or as shared). Called by run_fn and the
    benchmarks after training with BestEpochPerHead."""
    copies, by_head = {}, {}
    for name, weights in weights_by_head.items():
        key = id(weights)
        if key not in copies:
            copies[key] = build()
            copies[key](example_batch)
            for variable, value in zip(copies[key].weights, weights, strict=True):
                if value is not None:
                    variable.assign(value)
        by_head[name] = copies[key]
    return by_head
