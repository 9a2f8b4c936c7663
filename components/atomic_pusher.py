"""AtomicPusher: ships a blessed model into TF Serving's layout so that a version directory appears only when it
is complete, under a version number no earlier push has used.

TFX 1.16's Pusher copies straight into ``<base>/<unix time>/`` (``saved_model.pb`` last, no rename): a crash
mid-copy leaves a newest version that a model server watching the base directory tries to load, and two pushes in
one second record a push that never wrote its model. Here the model is copied into a hidden staging folder beside
the versions (``<base>/.staging-<version>-<random>``, same filesystem; TF Serving ignores names that are not
numbers) and then renamed to ``<base>/<version>`` in one step. The version is the current unix time, or one more
than the newest version already there if that is not earlier. The PushedModel artifact carries the same
``pushed``, ``pushed_destination`` and ``pushed_version`` properties as TFX's Pusher.

A model ships only when the blessing gate (``components.blessing_gate``) blessed it and the serving check
(``components.serving_check``) passed it.
Before the rename the staging copy gets what the check made: the TF Serving warm-up records
(``assets.extra/tf_serving_warmup_requests``) and the TFLite files that passed parity (``tflite/``), and the
push record (``components.serving_versions``: when, from which Trainer output, each head's key metric). After it,
the TF Serving model config beside the versions labels the new version ``stable`` (``canary`` with
``serving.canary``).
"""

import datetime
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable

import tensorflow as tf
from tfx import v1 as tfx

from components import serving_check, serving_versions
from config import from_custom_config
from models.evaluation.results import overall_key_metrics
from models.tasks import make_tasks


def next_version(base_directory: str, now: float | None = None) -> int:
    """The version number for a new push: the unix time, or the newest existing version + 1 if that is later."""
    existing = [int(name.rstrip("/")) for name in _listdir(base_directory) if re.fullmatch(r"\d+/?", name)]
    return max([int(now if now is not None else time.time()), *(v + 1 for v in existing)])


def push_model(model_dir: str, base_directory: str, *, now: float | None = None,
               copy: Callable[[str, str], None] | None = None,
               complete: Callable[[str, int], None] | None = None) -> str:
    """Copies the SavedModel in ``model_dir`` to ``base_directory/<version>`` atomically; returns that path.

    ``copy(source, destination)`` copies a folder (default: shutil.copytree locally, tf.io.gfile elsewhere);
    ``complete(staging, version)`` adds to the copy before it appears (default: nothing). If either fails, the
    staging folder is removed and no version appears. Called by AtomicPusher.
    """
    if not tf.io.gfile.exists(os.path.join(model_dir, "saved_model.pb")):
        raise FileNotFoundError(f"{model_dir}: no saved_model.pb to push")
    tf.io.gfile.makedirs(base_directory)
    version = next_version(base_directory, now)
    staging = os.path.join(base_directory, f".staging-{version}-{uuid.uuid4().hex[:8]}")
    try:
        (copy or _copy_dir)(model_dir, staging)
        if complete:
            complete(staging, version)
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


def _extras(check_uri: str, record: dict) -> Callable[[str, int], None]:
    """The ``complete`` step of a push: the serving check's warm-up records and TFLite files, and the record."""

    def complete(staging: str, version: int) -> None:
        extra = os.path.join(staging, "assets.extra")
        tf.io.gfile.makedirs(extra)
        tf.io.gfile.copy(os.path.join(check_uri, serving_check.WARMUP_FILE),
                         os.path.join(extra, serving_check.WARMUP_FILE))
        lite_files = os.path.join(check_uri, serving_check.LITE_DIR)
        if tf.io.gfile.isdir(lite_files):
            _copy_dir(lite_files, os.path.join(staging, serving_check.LITE_DIR))
        serving_versions.write_push_record(staging, {**record, "version": version})

    return complete


@tfx.dsl.components.component
def AtomicPusher(
    model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model],
    model_blessing: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ModelBlessing],
    infra_blessing: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.InfraBlessing],
    model_evaluation: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ModelEvaluation],
    pushed_model: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.PushedModel],
    base_directory: tfx.dsl.components.Parameter[str],
    pipeline_config: tfx.dsl.components.Parameter[str],
):
    """Pushes ``model`` to ``base_directory/<version>`` if the blessing gate blessed it and the serving check passed
    it; records the outcome and labels the version in the model config."""
    if not (model_blessing.get_int_custom_property("blessed") and infra_blessing.get_int_custom_property("blessed")):
        pushed_model.set_int_custom_property("pushed", 0)
        return
    config = from_custom_config(json.loads(pipeline_config))
    record = {"pushed_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
              "run": model.uri, "metrics": overall_key_metrics(model_evaluation.uri, make_tasks(config.tasks))}
    destination = push_model(os.path.join(model.uri, serving_check.SERVING_MODEL_DIR), base_directory,
                             complete=_extras(infra_blessing.uri, record))
    version = int(os.path.basename(destination))
    serving_versions.record_push(base_directory, config.name, version, canary=config.serving.canary)
    pushed_model.set_int_custom_property("pushed", 1)
    pushed_model.set_string_custom_property("pushed_destination", destination)
    pushed_model.set_string_custom_property("pushed_version", str(version))
