"""The on-device model: the served model as TFLite files on raw-feature inputs.

TFLite converts a lookup table but not a table filled from an asset file, and Transform's vocabularies are asset
files. So the on-device graph is the serving graph with Transform's part rebuilt from constants
(``models.features.on_device_transform``): each vocabulary a constant table with Transform's OOV hashing, each
z-score's mean and standard deviation read off the Transform graph by transforming two probe values; hash buckets
and bucket boundaries are constants already. The model and the heads' outputs are the serving module's own
(``ServingModule.predict``), so the outputs have the same names as ``serving_raw``'s. Its parity with the
SavedModel is checked on test events before a file ships (``components.serving_check``).

Two files: ``model.tflite`` (float32) and ``model_dynamic_range.tflite`` (weights stored as int8 and dequantized
by the kernels that read them: TFLite's dynamic-range quantization). Ops that TFLite has no kernel for (string
hashing for OOV buckets and the ``hash`` kind, tokenizing, lowercasing, bucket search) run as Select TF ops, in
the Flex delegate that the TensorFlow pip package's interpreter links and that an app adds as a dependency.
"""

import os
import tempfile

import numpy as np
import tensorflow as tf

from config import FeatureConfig
from models import features as feature_kinds
from models.signatures import RAW_SIGNATURE, ServingModule

MODEL_DIR = "Format-TFLite"  # the Trainer's TFLite files, beside Format-Serving in its Model artifact
ERROR_FILE = "conversion_error.txt"  # written there instead when conversion fails: one line saying why
FLOAT_FILE = "model.tflite"
QUANTIZED_FILE = "model_dynamic_range.tflite"
_PROBE = 1000.0  # the second probe value: far from the first, so the standard deviation is read to float precision


class TransformConstants:
    """Transform's vocabularies and statistics as constants for ``features.on_device_transform``: ``tables``
    holds the tables it made (the module that uses them must track them)."""

    def __init__(self, serving: ServingModule, tf_transform_output):
        self._output = tf_transform_output
        self._serving = serving
        self._probed = None
        self.tables = []

    def lookup(self, feature: FeatureConfig):
        tokens = self._output.vocabulary_by_name(feature.name)
        initializer = tf.lookup.KeyValueTensorInitializer(tf.constant(tokens, tf.string),
                                                          tf.range(len(tokens), dtype=tf.int64))
        table = (tf.lookup.StaticVocabularyTable(initializer, num_oov_buckets=feature.oov_buckets)
                 if feature.oov_buckets else tf.lookup.StaticHashTable(initializer, default_value=-1))
        self.tables.append(table)
        return table.lookup

    def standardization(self, feature: FeatureConfig, values) -> tuple[float, float]:
        probe, transformed = self._probe()
        x0, x1 = values(probe[feature.name]).numpy().astype(np.float64)
        t0, t1 = transformed[feature.name].numpy().reshape(-1).astype(np.float64)
        std = (x1 - x0) / (t1 - t0)
        return float(x0 - t0 * std), float(std)

    def _probe(self):
        """Two raw examples (numbers 0 and _PROBE, empty strings) and what the Transform graph makes of them."""
        if self._probed is None:
            probe = {name: tf.constant(["", ""]) if spec.dtype == tf.string
                     else tf.cast([0.0, _PROBE], spec.dtype) for name, spec in self._serving.raw_specs().items()}
            self._probed = probe, self._serving.tft_layer(self._serving.parse_raw(probe))
        return self._probed


class LiteModule(tf.Module):
    """``serving``'s model and outputs behind on-device transforms of the raw features ``features``."""

    def __init__(self, serving: ServingModule, tf_transform_output, features: list[FeatureConfig]):
        super().__init__()
        self.serving = serving
        constants = TransformConstants(serving, tf_transform_output)
        self._transforms = {f.name: feature_kinds.on_device_transform(f, constants) for f in features}
        spec = tf_transform_output.transformed_feature_spec()
        self._shapes = {f.name: [-1, *spec[f.name].shape] for f in features}
        self.tables = constants.tables

    def serve(self, features: dict[str, tf.Tensor]) -> dict:
        # Each model input in the shape Transform gives it: a Select TF op's output has no static shape, and without
        # the reshape TFLite's first batch-1 call would prepare the ops after it with a scalar there.
        transformed = {name: tf.reshape(transform(features[name]), self._shapes[name])
                       for name, transform in self._transforms.items()}
        return self.serving.predict(transformed, features)


def write(serving: ServingModule, tf_transform_output, features: list[FeatureConfig], folder: str) -> list[str]:
    """Converts the on-device model and writes ``FLOAT_FILE`` and ``QUANTIZED_FILE`` to ``folder``; returns their
    paths. Each has one signature, ``serving_raw``: one [batch] input per raw feature, the SavedModel's outputs.
    Raises tf.lite's ConverterError when an op cannot be converted."""
    module = LiteModule(serving, tf_transform_output, features)
    tf.io.gfile.makedirs(folder)
    paths = []
    with tempfile.TemporaryDirectory(prefix="lite-") as saved:  # a SavedModel keeps the signature's name
        function = tf.function(module.serve).get_concrete_function(serving.raw_specs())
        tf.saved_model.save(module, saved, signatures={RAW_SIGNATURE: function})
        for name, quantize in ((FLOAT_FILE, False), (QUANTIZED_FILE, True)):
            converter = tf.lite.TFLiteConverter.from_saved_model(saved, signature_keys=[RAW_SIGNATURE])
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
            if quantize:
                converter.optimizations = [tf.lite.Optimize.DEFAULT]
            paths.append(os.path.join(folder, name))
            with tf.io.gfile.GFile(paths[-1], "wb") as f:
                f.write(converter.convert())
    return paths


class LiteRunner:
    """Runs a TFLite file's ``serving_raw`` with TensorFlow's interpreter (Select TF ops included):
    ``runner({feature: [batch] array})`` -> {output: array}."""

    def __init__(self, path: str, num_threads: int | None = None):
        with tf.io.gfile.GFile(path, "rb") as f:
            self._interpreter = tf.lite.Interpreter(model_content=f.read(), num_threads=num_threads)
        self._runner = self._interpreter.get_signature_runner(RAW_SIGNATURE)

    def __call__(self, features: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self._runner(**features)
