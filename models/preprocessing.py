"""The Transform component's preprocessing_fn, derived from the pipeline config.

Outputs one model input per declared feature and, per task, ``<task>_label`` (a valid value everywhere) and
``<task>_weight`` (0.0 where the log has no label). At serving time the labels are not fed, and tf.Transform
prunes the label outputs.
"""

from models import features, tasks
from pipeline.config import PipelineConfig

CONFIG_KEY = "pipeline"


def preprocessing_fn(inputs, custom_config):
    """tf.Transform entry point; ``custom_config[CONFIG_KEY]`` is ``PipelineConfig.to_dict()``."""
    config = PipelineConfig.from_dict(custom_config[CONFIG_KEY])
    outputs = {f.name: features.transform_feature(f, inputs[f.name]) for f in config.features}
    for task in tasks.make_tasks(config):
        outputs[task.label_feature], outputs[task.weight_feature] = task.encode_label(inputs[task.config.label_key])
    return outputs
