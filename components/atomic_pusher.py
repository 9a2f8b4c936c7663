"""AtomicPusher: ships a blessed model into TF Serving's layout so that a version directory appears only when it
is complete, under a version number no earlier push has used.

TFX 1.16's Pusher copies straight into ``<base>/<unix time>/`` (``saved_model.pb`` last, no rename): a crash
mid-copy leaves a newest version that a model server watching the base directory tries to load, and two pushes in
one second record a push that never wrote its model. Here the model is copied into a hidden staging folder beside
the versions (``<base>/.staging-<version>-<random>``, same filesystem; TF Serving ignores names that are not
numbers) and then renamed to ``<base>/<version>`` in one step. The version is the current unix time, or one more
than the newest version already there if that is not earlier. The PushedModel artifact carries the same
``pushed``, ``pushed_destination`` and ``pushed_version`` properties as TFX's Pusher.
"""

import os
import re
import shutil
import time
import uuid
from collections.abc import Callable

import tensorflow as tf
from tfx import v1 as tfx

SERVING_MODEL_DIR = "Format-Serving"  # where the Trainer writes the SavedModel inside its Model artifact


def next_version(base_directory: str, now: float | None = None) -> int:
    """The version number for a new push: the unix time, or the newest existing version + 1 if that is later."""
    existing = [int(name.rstrip("/")) for name in _listdir(base_directory) if re.fullmatch(r"\d+/?", name)]
    return max([int(now if now is not None else time.time()), *(v + 1 for v in existing)])


def push_model(model_dir: str, base_directory: str, *, now: float | None = None,
               copy: Callable[[str, str], None] | None = None) -> str:
    """Copies the SavedModel in ``model_dir`` to ``base_directory/<version>`` atomically; returns that path.

    ``copy(source, destination)`` copies a folder (default: shutil.copytree locally, tf.io.gfile elsewhere); if
    it fails, the staging folder is removed and no version appears. Called by AtomicPusher.
    """
    if not tf.io.gfile.exists(os.path.join(model_dir, "saved_model.pb")):
        raise FileNotFoundError(f"{model_dir}: no saved_model.pb to push")
    tf.io.gfile.makedirs(base_directory)
    version = next_version(base_directory, now)
    staging = os.path.join(base_directory, f".staging-{version}-{uuid.uuid4().hex[:8]}")
    try:
        (copy or _copy_dir)(model_dir, staging)
        tf.io.gfile.rename(staging, os.path.join(base_directory, str(version)))
    except BaseException:
        if tf.io.gfile.exists(staging):
            tf.io.gfile.rmtree(staging)
        raise
    return os.path.join(base_directory, str(version))


def _listdir(path: str) -> list[str]:
    return tf.io.gfile.listdir(path) if tf.io.gfile.isdir(path) else []


def _copy_dir(source: str, destination: str) -> None:
    if "://" not in source and "://" not in destination:
        shutil.copytree(source, destination)
        return
    for folder, _, files in tf.io.gfile.walk(source):
        target = os.path.join(destination, os.path.relpath(folder, source))
        tf.io.gfile.makedirs(target)
        for name in files:
            tf.io.gfile.copy(os.path.join(folder, name), os.path.join(target, name))


@tfx.dsl.components.component
def AtomicPusher(
    model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model],
    model_blessing: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ModelBlessing],
    pushed_model: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.PushedModel],
    base_directory: tfx.dsl.components.Parameter[str],
):
    """Pushes ``model`` to ``base_directory/<version>`` if the Evaluator blessed it; records the outcome."""
    if not model_blessing.get_int_custom_property("blessed"):
        pushed_model.set_int_custom_property("pushed", 0)
        return
    destination = push_model(os.path.join(model.uri, SERVING_MODEL_DIR), base_directory)
    pushed_model.set_int_custom_property("pushed", 1)
    pushed_model.set_string_custom_property("pushed_destination", destination)
    pushed_model.set_string_custom_property("pushed_version", os.path.basename(destination))
