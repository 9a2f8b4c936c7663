"""CurateSchema: adds to a schema what the pipeline config knows about the data, so that ExampleValidator judges
every span by it: labels' value domains and presence, finite numbers, serving vs training environments, and the
drift each feature may show against the previous span.

The schema it starts from is the accepted one (``data.schema_path``, or the schema `mtl` accepted on the first
run in an output folder, or `mtl schema accept`) when there is one, else the one SchemaGen inferred from this span.
"""

import json
import os

import tensorflow as tf
import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx import v1 as tfx

from config import ConfigError, FeatureKind, PipelineConfig, from_custom_config
from models.tasks import make_tasks

SCHEMA_FILE = "schema.pbtxt"
TRAINING, SERVING = "TRAINING", "SERVING"


def curate_schema(schema: schema_pb2.Schema, config: PipelineConfig) -> schema_pb2.Schema:
    """A copy of ``schema`` with, from ``config``: every label present in each split (min_count 1) and absent from
    the SERVING environment; integer labels inside their task's domain (the missing_value allowed); no string
    domain for a label logged as class names nor for a text feature (new intents and words are expected: Transform
    counts a class training never saw, and gives a new word an OOV id); NaN and ±inf disallowed in float features
    and labels; and a drift comparator per ``validation.drift`` entry (L-infinity for
    string features, Jensen-Shannon divergence for numbers)."""
    curated = schema_pb2.Schema()
    curated.CopyFrom(schema)
    del curated.default_environment[:]
    curated.default_environment.extend([TRAINING, SERVING])
    for task in make_tasks(config.tasks):
        label = _feature(curated, task.config.label_key)
        label.presence.min_count = 1
        if SERVING not in label.not_in_environment:
            label.not_in_environment.append(SERVING)
        if label.type == schema_pb2.INT and task.label_domain is not None:
            low, high = task.label_domain
            missing = task.config.missing_value
            label.int_domain.min = int(min(low, missing)) if missing is not None else low
            label.int_domain.max = high
        if label.type == schema_pb2.FLOAT:
            _disallow_non_finite(label)
        if task.config.text_labels:
            _allow_any_string(label)
    for feature_config in config.features:
        feature = _feature(curated, feature_config.name)
        if feature.type == schema_pb2.FLOAT:
            _disallow_non_finite(feature)
        if feature_config.kind == FeatureKind.TEXT:
            _allow_any_string(feature)
    for name, threshold in config.validation.drift.items():
        comparator = _feature(curated, name).drift_comparator
        if _feature(curated, name).type == schema_pb2.BYTES:
            comparator.infinity_norm.threshold = threshold
        else:
            comparator.jensen_shannon_divergence.threshold = threshold
    return curated


def _feature(schema: schema_pb2.Schema, name: str) -> schema_pb2.Feature:
    for feature in schema.feature:
        if feature.name == name:
            return feature
    raise ConfigError(f"the schema has no feature '{name}' that the config names; add it to the schema file, or "
                      "check the config's feature and label names")


def _allow_any_string(feature: schema_pb2.Feature) -> None:
    feature.ClearField("domain")
    feature.ClearField("string_domain")


def _disallow_non_finite(feature: schema_pb2.Feature) -> None:
    feature.float_domain.disallow_nan = True
    feature.float_domain.disallow_inf = True


def schema_file(uri: str) -> str:
    """The schema file inside a Schema artifact's folder."""
    (path,) = tf.io.gfile.glob(os.path.join(uri, "*.pbtxt"))
    return path


@tfx.dsl.components.component
def CurateSchema(
    schema: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Schema],
    curated_schema: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.Schema],
    pipeline_config: tfx.dsl.components.Parameter[str],
):
    """Writes curate_schema(schema, config) to ``curated_schema``; ``pipeline_config`` is the JSON of
    ``config.to_custom_config``."""
    config = from_custom_config(json.loads(pipeline_config))
    curated = curate_schema(tfdv.load_schema_text(schema_file(schema.uri)), config)
    tf.io.gfile.makedirs(curated_schema.uri)
    tfdv.write_schema_text(curated, os.path.join(curated_schema.uri, SCHEMA_FILE))
