"""The Transform component's preprocessing_fn, derived from the pipeline config.

Outputs one model input per declared feature and, per task, ``<task>_label`` (a valid value everywhere) and
``<task>_weight`` (0.0 where the log has no label; per token for a per-token task). At serving time the labels are
not fed, and tf.Transform prunes the label outputs.
"""

from config import from_custom_config
from models import features, tasks, text


def preprocessing_fn(inputs, custom_config):
    """Called by tf.Transform (TFX Transform, by module path) with the raw feature dict and the component's
    ``custom_config`` (``config.to_custom_config``); returns the dict of transformed features, labels and weights."""
    config = from_custom_config(custom_config)
    by_name = {feature.name: feature for feature in config.features}
    outputs = {}
    for feature in config.features:
        outputs[feature.name] = features.transform_feature(feature, inputs[feature.name])
    for task in tasks.make_tasks(config.tasks):
        raw = inputs[task.config.label_key]
        if task.per_token:  # tagged tokens: those of its text feature, as the feature cuts them
            feature = by_name[task.config.text_feature]
            label = task.encode_label(raw, text.tokens(inputs[feature.name], feature), feature.max_tokens)
        else:
            label = task.encode_label(raw)
        outputs[task.label_feature], outputs[task.weight_feature] = label
    return outputs
