"""The exported SavedModel: ``serving_default`` and ``serving_raw`` for scoring, ``transform_features`` for TFMA.

``serving_default`` takes serialized tf.Examples, parses only the declared features and returns one named output
per task (and, for a head whose label is text, ``<task>_classes``: the name of each probability, or for a
sequence_labeling head ``<task>_tags``: each token's most likely tag, and ``<task>_tokens``: the tokens they tag).
``serving_raw`` takes the same raw features as named tensors, one value per example each (what TF Serving's REST
API builds from ``{"instances": [{"user_id": "u_1", "device": "mobile", ...}]}``), and returns the same outputs;
the Transform graph runs inside the model in both. ``transform_features`` takes serialized tf.Examples, parses only
the labels (and the text that a sequence_labeling head's tags line up with) and returns ``<task>_label`` (as the
loss reads it) and ``<task>_weight`` (0.0 where the label is missing), which the EvalConfig names as label and
example-weight keys.
"""

import tensorflow as tf

from config import FeatureConfig
from models import text
from models.multitask_model import FUSION_OUTPUT, MultiTaskModel
from models.tasks import class_names

SERVING_SIGNATURE = "serving_default"
RAW_SIGNATURE = "serving_raw"
TRANSFORM_SIGNATURE = "transform_features"
_EXAMPLES = tf.TensorSpec([None], tf.string, name="examples")


class ServingModule(tf.Module):
    """Holds the trained model and the Transform graph together, so serving skew cannot creep in. A head named in
    ``head_models`` is served by that model instead (its own best epoch: models.head_selection); warm start reads
    ``model`` alone."""

    def __init__(self, model: MultiTaskModel, tf_transform_output, features: list[FeatureConfig],
                 head_models: dict[str, MultiTaskModel] | None = None):
        super().__init__()
        self.model = model
        self.head_models = dict(head_models or {})
        self._names = {}  # {task: [units] names} of the heads whose labels are text
        for task in model.tasks:
            names = class_names(task, tf_transform_output)
            if names is not None:
                self._names[task.name] = tf.constant(task.served_names(names))
        self.tft_layer = tf_transform_output.transform_features_layer()
        raw_spec = tf_transform_output.raw_feature_spec()
        self._feature_spec = {f.name: raw_spec[f.name] for f in features}
        by_name = {f.name: f for f in features}
        self._tagged = {t.name: by_name[t.config.text_feature] for t in model.tasks if t.per_token}
        self._label_spec = {t.config.label_key: raw_spec[t.config.label_key] for t in model.tasks}
        self._label_spec.update({t.config.text_feature: raw_spec[t.config.text_feature] for t in model.tasks
                                 if t.per_token})  # its tags line up with the feature's tokens
        self._label_outputs = [key for t in model.tasks for key in (t.label_feature, t.weight_feature)]

    @tf.function(input_signature=[_EXAMPLES])
    def serve(self, examples):
        parsed = tf.io.parse_example(examples, self._feature_spec)
        return self.predict(self.tft_layer(parsed), parsed)

    def predict(self, transformed: dict, raw: dict) -> dict:
        """Every served output from the transformed features (and the raw ones that tagging heads' tokens come
        from): what ``serving_default``, ``serving_raw`` and the on-device model (``models.lite``) return."""
        outputs = self.model(transformed)
        served = {}  # one pass per distinct model
        for name, model in self.head_models.items():
            if id(model) not in served:
                served[id(model)] = model(transformed)
            outputs[name] = served[id(model)][name]
        if self.head_models and FUSION_OUTPUT in outputs:  # from the heads as served
            outputs[FUSION_OUTPUT] = self.model.fusion_score(outputs)
        for task in self.model.tasks:
            if task.name in self._names:
                tokens = transformed[task.config.text_feature] if task.per_token else None
                outputs.update(task.named_outputs(outputs[task.name], self._names[task.name], tokens))
        for name, feature in self._tagged.items():  # the tokens a tagging head's tags belong to
            cut = text.tokens(raw[feature.name], feature)[:, :feature.max_tokens]
            outputs[f"{name}_tokens"] = cut.to_tensor("", shape=[None, feature.max_tokens])
        return outputs

    def raw_signature(self):
        """The concrete function behind ``serving_raw``: one [batch] tensor per raw feature, named after it."""
        return tf.function(self._serve_raw).get_concrete_function(self.raw_specs())

    def raw_specs(self) -> dict[str, tf.TensorSpec]:
        """The inputs of ``serving_raw`` (and of the on-device model): one [batch] tensor per raw feature."""
        return {name: tf.TensorSpec([None], spec.dtype, name=name) for name, spec in self._feature_spec.items()}

    def parse_raw(self, features: dict[str, tf.Tensor]) -> dict:
        """One [batch] tensor per raw feature -> the features as tf.io.parse_example gives them to Transform."""
        parsed = {}
        for name, spec in self._feature_spec.items():
            values = features[name]
            if isinstance(spec, tf.io.FixedLenFeature):
                parsed[name] = tf.reshape(values, [-1, *spec.shape])
            else:  # a feature the logs sometimes omit: every request carries it, so every row has its value
                rows = tf.range(tf.size(values, out_type=tf.int64))
                parsed[name] = tf.SparseTensor(tf.stack([rows, tf.zeros_like(rows)], axis=1), values,
                                               tf.stack([tf.size(values, out_type=tf.int64), 1]))
        return parsed

    def _serve_raw(self, features):
        parsed = self.parse_raw(features)
        return self.predict(self.tft_layer(parsed), parsed)

    @tf.function(input_signature=[_EXAMPLES])
    def transform_features(self, examples):
        transformed = self.tft_layer(tf.io.parse_example(examples, self._label_spec))
        outputs = {key: transformed[key] for key in self._label_outputs}
        for task in self.model.tasks:  # the labels as the loss and the metrics read them
            outputs[task.label_feature] = task.targets(outputs[task.label_feature])
        return outputs


def export(model: MultiTaskModel, tf_transform_output, features: list[FeatureConfig], export_dir: str,
           head_models: dict[str, MultiTaskModel] | None = None) -> ServingModule:
    """Writes the SavedModel with both signatures to ``export_dir`` and returns the module it saved; run_fn calls
    it after training. ``features`` are the raw features ``serving_default`` parses (the config's); ``head_models``
    serve the heads they name."""
    module = ServingModule(model, tf_transform_output, features, head_models)
    tf.saved_model.save(module, export_dir, signatures={SERVING_SIGNATURE: module.serve,
                                                        RAW_SIGNATURE: module.raw_signature(),
                                                        TRANSFORM_SIGNATURE: module.transform_features})
    return module
