"""The Trainer component's run_fn: builds the multi-task model from the config, trains it, exports it."""

import logging
import math
import os
import tempfile
import time

import tensorflow as tf
import tensorflow_transform as tft
import tf_keras
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

from config import HeadCopies, ModelConfig, UserError, from_custom_config
from models import features, lite, signatures
from models.builder import build_model
from models.distribution import is_chief, make_strategy
from models.head_selection import BestEpochPerHead, head_models
from models.multitask_model import MultiTaskModel
from models.tasks import with_class_counts
from models.warm_start import warm_start


class NonFiniteLoss(UserError):
    """A task's training loss became NaN or infinite."""


class StopOnNonFiniteLoss(tf_keras.callbacks.Callback):
    """Stops training within ``every`` steps of a task's loss turning NaN or ±inf, naming the task."""

    def __init__(self, task_names: list[str], every: int = 20):
        super().__init__()
        self.task_names, self.every = list(task_names), every
        self.epoch = 0
        self._supports_tf_logs = True  # reads the loss as a tensor every ``every`` steps: no copy on other steps

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if batch % self.every == 0:
            self._check(logs, f"epoch {self.epoch + 1}, step {batch + 1}")

    def on_epoch_end(self, epoch, logs=None):
        self._check(logs, f"the end of epoch {epoch + 1}")

    def _check(self, logs, when):
        for name in self.task_names:
            value = (logs or {}).get(f"{name}_loss")
            if value is not None and not math.isfinite(float(value)):
                raise NonFiniteLoss(f"task '{name}': the training loss became {float(value)} at {when}; look for "
                                    "NaN or ±inf in the logs' features and labels, or lower model.learning_rate")


class SettleIdTables(tf_keras.callbacks.Callback):
    """Brings the id tables up to date with their optimizer's lazy decay (MultiTaskModel.settle_id_tables) before
    each validation reads them and when training ends, before the weights are kept or exported."""

    def on_test_begin(self, logs=None):
        self.model.settle_id_tables()

    def on_train_end(self, logs=None):
        self.model.settle_id_tables()


PROGRESS = logging.getLogger("mtl.progress")  # one line per epoch; `mtl run` shows these on the console


class EpochProgress(tf_keras.callbacks.Callback):
    """Adds ``examples_per_second`` (training steps only) to each epoch's logs, so TensorBoard and the run
    report see it, and logs one progress line per epoch."""

    def __init__(self, batch_size: int):
        super().__init__()
        self.batch_size = batch_size
        self.started = 0.0
        self.train_seconds = 0.0
        self.batches = 0
        self._supports_tf_logs = True  # counts batches only: Keras need not copy the logs out every step

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()
        self.batches = 0

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1

    def on_test_begin(self, logs=None):
        self.train_seconds = time.perf_counter() - self.started

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        seconds = self.train_seconds or time.perf_counter() - self.started
        logs["examples_per_second"] = self.batches * self.batch_size / seconds
        self.train_seconds = 0.0
        validation = f", val_loss {logs['val_loss']:.4f}" if "val_loss" in logs else ""
        PROGRESS.info(f"Trainer: epoch {epoch + 1}/{self.params['epochs']}, loss {logs.get('loss', float('nan')):.4f}"
                      f"{validation}, {logs['examples_per_second']:,.0f} examples/s")


def example_datasets(dataset_factory, train_files, eval_files, schema, model_config: ModelConfig):
    """(train, eval) tf.data datasets of transformed-example batches, through ``dataset_factory`` (the TFX data
    accessor's ``tf_dataset_factory(files, TensorFlowDatasetOptions, schema)``: tfxio reads in parallel and parses
    whole batches). A split read by steps repeats; one read whole (``train_steps`` or ``eval_steps`` left out) is
    one pass, which Keras starts again each epoch. A split whose parsed batches fit in ``model_config.cache_mb``
    is parsed once and then served from memory, the training batches in a new order each pass (parsing, not the
    model, set the pace: benchmarks/results/trainer-input.md). Called by run_fn and benchmarks/trainer_input.py."""

    def dataset(files, steps, shuffle):
        cached = estimated_parsed_mb(files) <= model_config.cache_mb
        data = dataset_factory(files, tfxio.TensorFlowDatasetOptions(
            batch_size=model_config.batch_size, shuffle=shuffle, shuffle_seed=model_config.seed,
            num_epochs=1 if cached or not steps else None), schema)
        if not cached:
            return data
        data = data.cache()
        if shuffle:
            data = data.shuffle(CACHED_SHUFFLE_BATCHES, seed=model_config.seed, reshuffle_each_iteration=True)
        return (data.repeat() if steps else data).prefetch(tf.data.AUTOTUNE)

    return (dataset(train_files, model_config.train_steps, shuffle=True),
            dataset(eval_files, model_config.eval_steps, shuffle=False))


CACHED_SHUFFLE_BATCHES = 1024  # cached batches are drawn in a random order from a window this wide
PARSED_PER_GZIP_BYTE = 3  # parsed batches take about 2 bytes per byte of Transform's gzip files: a margin of 1.5


def estimated_parsed_mb(patterns) -> float:
    """Megabytes the batches parsed from the files matching ``patterns`` (local or remote) will take, from the
    files' sizes; example_datasets compares it with model.cache_mb."""
    paths = [path for pattern in patterns for path in tf.io.gfile.glob(pattern)]
    return sum(tf.io.gfile.stat(path).length for path in paths) * PARSED_PER_GZIP_BYTE / 2 ** 20


def fit(model: MultiTaskModel, model_config: ModelConfig, train_dataset, eval_dataset, *, train_steps: int | None,
        eval_steps: int | None, log_dir: str | None = None, verbose: int = 2):
    """Trains for ``model_config.epochs`` epochs (each one pass over ``train_dataset``, or ``train_steps`` split
    in equal parts), keeping the weights of the best validation loss (over ``eval_steps`` batches, or the whole
    ``eval_dataset``). With ``model_config.per_head_selection`` it trains on while any head's validation loss
    still improves and also keeps each head's own best epoch. Returns (Keras History, BestEpochPerHead or None);
    raises NonFiniteLoss when a task's loss turns NaN. Called by run_fn and the benchmarks."""
    epochs = model_config.epochs
    names = [t.name for t in model.tasks]
    selection = BestEpochPerHead(names, model_config.early_stopping_patience,
                                 copy_id_tables=model_config.head_copies == HeadCopies.WHOLE_MODEL) \
        if model_config.per_head_selection else None
    callbacks = [SettleIdTables(), StopOnNonFiniteLoss(names), EpochProgress(model_config.batch_size),
                 selection or tf_keras.callbacks.EarlyStopping(patience=model_config.early_stopping_patience,
                                                               restore_best_weights=True)]
    if log_dir:
        callbacks.append(tf_keras.callbacks.TensorBoard(log_dir))  # epoch scalars: per-batch ones halve the speed
    steps_per_epoch = max(1, train_steps // epochs) if train_steps else None
    history = model.fit(train_dataset, epochs=epochs, steps_per_epoch=steps_per_epoch,
                        validation_data=eval_dataset, validation_steps=eval_steps, callbacks=callbacks,
                        verbose=verbose)
    if selection:
        PROGRESS.info(f"Trainer: {selection.summary()}")
    return history, selection


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    """Called by the TFX Trainer (by module path) with its FnArgs, whose ``custom_config`` holds the pipeline
    config (``config.to_custom_config``); trains and writes the SavedModel to ``fn_args.serving_model_dir``."""
    config = from_custom_config(fn_args.custom_config)
    strategy = make_strategy(config.model.distribution)  # first: a multi-worker strategy sets up TensorFlow itself
    tf_keras.utils.set_random_seed(config.model.seed)
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    config = with_class_counts(config, tf_transform_output)  # heads sized by the classes the labels name
    with strategy.scope():
        sizes = features.cardinalities(config.features, tf_transform_output)
        model = build_model(config, sizes)
        if config.model.warm_start and fn_args.base_model:
            model(_placeholder_batch(tf_transform_output))  # creates the variables to assign
            PROGRESS.info("Trainer: " + warm_start(model, fn_args.base_model, tf_transform_output,
                                                   list(config.features)).summary())
    train, evaluation = example_datasets(fn_args.data_accessor.tf_dataset_factory, fn_args.train_files,
                                         fn_args.eval_files, tf_transform_output.transformed_metadata.schema,
                                         config.model)
    chief = is_chief(strategy)
    _, selection = fit(model, config.model, train, evaluation, train_steps=fn_args.train_steps,
                       eval_steps=fn_args.eval_steps, log_dir=fn_args.model_run_dir if chief else None)
    with strategy.scope():  # the copies that serve the heads whose best epoch was not the one restored
        by_head = head_models(lambda: build_model(config, sizes,
                                                  id_layers_from=head_copy_layers_from(config.model, model)),
                              selection.head_weights if selection else {}, _placeholder_batch(tf_transform_output))
    export_dir = fn_args.serving_model_dir if chief else tempfile.mkdtemp(prefix="non-chief-export-")
    serving = signatures.export(model, tf_transform_output, list(config.features), export_dir,  # every worker
                                head_models=by_head)
    if not chief:  # saves (the save's collective ops); only the chief's is kept
        tf.io.gfile.rmtree(export_dir)
    elif config.serving.tflite:
        # beside the SavedModel, in the Model artifact
        write_lite_models(serving, tf_transform_output, config,
                          os.path.join(os.path.dirname(fn_args.serving_model_dir.rstrip("/")), lite.MODEL_DIR))


def write_lite_models(serving: signatures.ServingModule, tf_transform_output, config, folder: str) -> None:
    """Writes the TFLite files (``models.lite``); a model TFLite cannot convert gets ``lite.ERROR_FILE`` there
    instead, one line saying why, and the SavedModel still ships."""
    started = time.time()
    try:
        paths = lite.write(serving, tf_transform_output, list(config.features), folder)
    except Exception as error:  # the converter's errors have no common type; the SavedModel must not depend on it
        reason = " ".join(str(error).split())[:500]
        tf.io.gfile.makedirs(folder)
        with tf.io.gfile.GFile(os.path.join(folder, lite.ERROR_FILE), "w") as f:
            f.write(f"TFLite conversion failed: {reason}\n")
        PROGRESS.info(f"Trainer: no TFLite model: {reason}")
        return
    sizes = ", ".join(f"{os.path.basename(p)} {tf.io.gfile.stat(p).length / 1e6:.2f} MB" for p in paths)
    PROGRESS.info(f"Trainer: TFLite {sizes} in {time.time() - started:.1f} s")


def head_copy_layers_from(model_config: ModelConfig, model: MultiTaskModel) -> MultiTaskModel | None:
    """The model whose id layers the head copies share (``id_layers_from``): ``model`` when they keep no id tables
    of their own (``head_copies: dense_weights``), else None. Called by run_fn and the benchmarks."""
    return model if model_config.head_copies == HeadCopies.DENSE_WEIGHTS else None


def _placeholder_batch(tf_transform_output) -> dict[str, tf.Tensor]:
    """One example of zeros for every transformed feature: enough to build the model's variables."""
    return {name: tf.zeros([1, *spec.shape], spec.dtype)
            for name, spec in tf_transform_output.transformed_feature_spec().items()}
