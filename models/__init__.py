"""User code that TFX runs by module path: ``preprocessing`` (Transform's preprocessing_fn), ``training``
(the Trainer's run_fn) and what they are built from: task types, feature kinds, layers, the architectures in
``zoo``, loss balancing, warm start, signatures, and ``evaluation`` (how the Evaluator judges each head)."""

import config  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
