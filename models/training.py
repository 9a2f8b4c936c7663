"""The Trainer component's run_fn: builds the multi-task model from the config, trains it, exports it."""

import tensorflow_transform as tft
import tf_keras
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

from models import features, signatures, tasks
from models.multitask_model import MultiTaskModel
from models.preprocessing import CONFIG_KEY
from pipeline.config import PipelineConfig


def build_model(config: PipelineConfig, tf_transform_output) -> MultiTaskModel:
    """The compiled, untrained model, sized by Transform's vocabularies."""
    cardinalities = {f.name: features.cardinality(f, tf_transform_output)
                     for f in config.features if f.is_categorical}
    model = MultiTaskModel(config, tasks.make_tasks(config), cardinalities)
    model.compile(optimizer=tf_keras.optimizers.Adam(config.model.learning_rate), jit_compile=config.model.jit_compile)
    return model


def fit(model: MultiTaskModel, config: PipelineConfig, train_dataset, eval_dataset, *, train_steps: int,
        eval_steps: int, log_dir: str | None = None, verbose: int = 2):
    """Trains in ``config.model.epochs`` epochs of equal steps, keeping the weights of the best validation loss."""
    epochs = config.model.epochs
    callbacks = [tf_keras.callbacks.EarlyStopping(patience=config.model.early_stopping_patience,
                                                  restore_best_weights=True)]
    if log_dir:
        callbacks.append(tf_keras.callbacks.TensorBoard(log_dir, update_freq=100))
    return model.fit(train_dataset, epochs=epochs, steps_per_epoch=max(1, train_steps // epochs),
                     validation_data=eval_dataset, validation_steps=eval_steps, callbacks=callbacks, verbose=verbose)


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    """TFX Trainer entry point; ``fn_args.custom_config[CONFIG_KEY]`` is ``PipelineConfig.to_dict()``."""
    config = PipelineConfig.from_dict(fn_args.custom_config[CONFIG_KEY])
    tf_keras.utils.set_random_seed(config.model.seed)
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    model = build_model(config, tf_transform_output)

    def dataset(files):
        return fn_args.data_accessor.tf_dataset_factory(
            files, tfxio.TensorFlowDatasetOptions(batch_size=config.model.batch_size),
            tf_transform_output.transformed_metadata.schema)

    fit(model, config, dataset(fn_args.train_files), dataset(fn_args.eval_files), train_steps=fn_args.train_steps,
        eval_steps=fn_args.eval_steps, log_dir=fn_args.model_run_dir)
    signatures.export(model, tf_transform_output, config, model.tasks, fn_args.serving_model_dir)
