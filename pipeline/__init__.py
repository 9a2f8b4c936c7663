"""Pipeline definition, typed config, runners and the `mtl` command line."""

import os

# Keras 2 (tf_keras) must be chosen before TensorFlow is first imported; tf.Transform sets it too late.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
