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
    model.compile(optimizer=tf_keras.optimizers.Adam(config.model.learning_rate))
    return model


def _dataset(files, data_accessor, tf_transform_output, batch_size: int):
    return data_accessor.tf_dataset_factory(
        files, tfxio.TensorFlowDatasetOptions(batch_size=batch_size),
        tf_transform_output.transformed_metadata.schema)


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    """TFX Trainer entry point; ``fn_args.custom_config[CONFIG_KEY]`` is ``PipelineConfig.to_dict()``."""
    config = PipelineConfig.from_dict(fn_args.custom_config[CONFIG_KEY])
    tf_keras.utils.set_random_seed(config.model.seed)
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    batch_size = config.model.batch_size
    model = build_model(config, tf_transform_output)
    model.fit(
        _dataset(fn_args.train_files, fn_args.data_accessor, tf_transform_output, batch_size),
        steps_per_epoch=fn_args.train_steps,
        validation_data=_dataset(fn_args.eval_files, fn_args.data_accessor, tf_transform_output, batch_size),
        validation_steps=fn_args.eval_steps,
        callbacks=[tf_keras.callbacks.TensorBoard(fn_args.model_run_dir, update_freq=100)],
        verbose=2)
    signatures.export(model, tf_transform_output, config, model.tasks, fn_args.serving_model_dir)
