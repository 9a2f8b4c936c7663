"""The version ledger of one model's serving base directory (``<serving_dir>/<model_name>/``): which pushed versions
are there, what each push recorded, and which of them TF Serving serves under the labels ``stable`` and ``canary``.

A model server started with ``--model_config_file=<base>/models.config`` serves what that file says: one model (its
name and absolute base path), a ``specific`` version policy that loads exactly the labelled versions (TF Serving lets
a label point only at a loaded version) and the ``version_labels`` map, so that clients ask for
``/v1/models/<name>/labels/stable``. Moving a label is a rewrite of that file and never touches a version folder:
a rollback points ``stable`` at an older version still on disk, and the next push gets a new, higher version number
(AtomicPusher's rule) and becomes stable. Every rewrite goes to a temporary file in the same folder that is then
renamed over the old one, so a server polling the file never reads half of it.

Each version folder carries ``assets.extra/push.json`` (when, from which run, each head's key metric), written by the
pusher into the staging folder before the version appears; versions pushed before it have none. Every path goes
through tf.io.gfile, so the base directory may be a URI (gs://...).
"""

import json
import os
import re
import uuid

import tensorflow as tf
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from config import UserError

PUSH_RECORD = "assets.extra/push.json"  # inside a version folder
MODEL_CONFIG = "models.config"  # inside the base directory
STABLE = "stable"
CANARY = "canary"

_VERSION_NAME = re.compile(r"\d+")


class ServingVersionError(UserError):
    """A label move that cannot be made (no such version, nothing older, nothing pushed yet); the one-line message
    says what to do."""


def write_push_record(version_dir: str, record: dict) -> None:
    """Writes ``record`` as JSON to ``<version_dir>/assets.extra/push.json``.

    Args:
        version_dir: the staging (or version) folder of one push.
        record: ``{"version": int, "pushed_at": ISO-8601 UTC, "run": str, "metrics": {head: {"metric": name,
            "value": float}}}``.
    """
    path = os.path.join(version_dir, PUSH_RECORD)
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.gfile.GFile(path, "w") as f:
        f.write(json.dumps(record, indent=2, sort_keys=True) + "\n")


def read_push_record(version_dir: str) -> dict | None:
    """The push record of ``version_dir``; None when it has none, or when the file is not a JSON object (the version
    is still served; only its history is lost). Any field may be missing."""
    path = os.path.join(version_dir, PUSH_RECORD)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path, "rb") as f:
        data = f.read()
    try:
        record = json.loads(data)
    except ValueError:  # not JSON, or not UTF-8
        return None
    return record if isinstance(record, dict) else None


def config_path(base_directory: str) -> str:
    """Where the model server config of ``base_directory`` lives: ``<base_directory>/models.config``."""
    return os.path.join(base_directory, MODEL_CONFIG)


def read_labels(base_directory: str) -> dict[str, int]:
    """The version labels in ``base_directory``'s models.config (``{"stable": 3, "canary": 4}``); {} when there is
    no models.config yet. Raises ServingVersionError when the file is not a model server config."""
    path = config_path(base_directory)
    if not tf.io.gfile.exists(path):
        return {}
    with tf.io.gfile.GFile(path) as f:
        text = f.read()
    try:
        config = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    except text_format.ParseError as e:
        raise ServingVersionError(f"{path}: not a TF Serving model config ({' '.join(str(e).split())}); fix it, or "
                                  "delete it and push again") from None
    models = config.model_config_list.config
    return dict(models[0].version_labels) if models else {}


def versions(base_directory: str) -> list[int]:
    """The complete versions in ``base_directory``, ascending: folders named by a number that hold a
    ``saved_model.pb`` (a push's hidden ``.staging-*`` folder is not one); [] when the folder does not exist."""
    if not tf.io.gfile.isdir(base_directory):
        return []
    names = (name.rstrip("/") for name in tf.io.gfile.listdir(base_directory))  # gs:// lists folders as "name/"
    return sorted(int(name) for name in names if _VERSION_NAME.fullmatch(name)
                  and tf.io.gfile.exists(os.path.join(base_directory, name, "saved_model.pb")))


def record_push(base_directory: str, model_name: str, version: int, *, canary: bool = False) -> dict[str, int]:
    """Labels the newly pushed ``version`` and rewrites models.config; returns the labels written. Called by the
    pusher once the version folder is in place.

    Args:
        base_directory: the model's serving base directory.
        model_name: the name TF Serving serves the model under.
        version: the pushed version; its folder must be complete.
        canary: False (default): ``version`` becomes stable (a canary older than it is dropped); True: it becomes
            the canary and stable stays, except on the very first push, which is always stable.
    """
    _require_version(base_directory, version)
    labels = read_labels(base_directory)
    label = CANARY if canary and STABLE in labels else STABLE
    return _write_config(base_directory, model_name, {**labels, label: version})


def rollback(base_directory: str, model_name: str, version: int | None = None) -> tuple[int, int]:
    """Points ``stable`` at ``version`` and rewrites models.config; no version folder is deleted. Returns the old
    and the new stable version.

    Args:
        base_directory: the model's serving base directory.
        model_name: the name TF Serving serves the model under.
        version: the version to serve as stable; None (default): the newest version older than the current stable.

    Raises ServingVersionError when nothing was pushed yet (no models.config), when ``version`` is not in the base
    directory, or when no version is older than the current stable. A canary that is not newer than the new stable
    loses its label.
    """
    labels = read_labels(base_directory)
    if STABLE not in labels:
        raise ServingVersionError(f"{config_path(base_directory)}: no stable version recorded (no models.config yet); "
                                  "push a model first")
    old = labels[STABLE]
    if version is None:
        older = [v for v in versions(base_directory) if v < old]
        if not older:
            raise ServingVersionError(f"{base_directory}: stable version {old} is the oldest there, nothing older to "
                                      "roll back to; name a VERSION to move stable to another one")
        version = older[-1]
    _require_version(base_directory, version)
    _write_config(base_directory, model_name, {**labels, STABLE: version})
    return old, version


def promote(base_directory: str, model_name: str) -> int:
    """Makes the canary version stable and removes the canary label; rewrites models.config and returns the new
    stable version. Raises ServingVersionError when there is no canary, or its folder is gone."""
    labels = read_labels(base_directory)
    if CANARY not in labels:
        raise ServingVersionError(f"{config_path(base_directory)}: no canary version to promote; push one as canary "
                                  "first")
    _require_version(base_directory, labels[CANARY])
    _write_config(base_directory, model_name, {STABLE: labels[CANARY]})
    return labels[CANARY]


def list_rows(base_directory: str) -> list[dict]:
    """One row per complete version, newest first: ``version``, ``pushed_at``, ``run`` and ``metrics`` from its push
    record (None and {} when it has none) and ``labels``, the names of the labels that point at it. The recorded
    values are as the file holds them: text for a person to see only as plain text."""
    labels = read_labels(base_directory)
    rows = []
    for version in reversed(versions(base_directory)):
        record = read_push_record(os.path.join(base_directory, str(version))) or {}
        metrics = record.get("metrics")
        rows.append({"version": version, "pushed_at": record.get("pushed_at"), "run": record.get("run"),
                     "metrics": {head: value for head, value in metrics.items() if isinstance(value, dict)}
                     if isinstance(metrics, dict) else {},
                     "labels": sorted(name for name, labelled in labels.items() if labelled == version)})
    return rows


def _require_version(base_directory: str, version: int) -> None:
    present = versions(base_directory)
    if version not in present:
        what_to_do = (f"pick one of: {', '.join(map(str, present))}" if present
                      else "no version is there; check the serving directory and the model name")
        raise ServingVersionError(f"{base_directory}: no complete version {version}; {what_to_do}")


def _write_config(base_directory: str, model_name: str, labels: dict[str, int]) -> dict[str, int]:
    """Rewrites models.config for ``labels`` (a canary not newer than stable dropped): the model, its absolute base
    path, a specific policy of exactly the labelled versions, the labels. Returns the labels written."""
    if CANARY in labels and labels[CANARY] <= labels[STABLE]:
        labels = {STABLE: labels[STABLE]}
    config = model_server_config_pb2.ModelServerConfig()
    model = config.model_config_list.config.add(name=model_name, base_path=_absolute(base_directory),
                                                model_platform="tensorflow")
    model.model_version_policy.specific.versions.extend(sorted(set(labels.values())))
    model.version_labels.update(labels)
    _write_atomically(config_path(base_directory), text_format.MessageToString(config))
    return labels


def _absolute(path: str) -> str:
    """Local paths made absolute (the server's working directory is not ours); URIs (gs://...) as they are."""
    return path if "://" in path else os.path.abspath(path)


def _write_atomically(path: str, text: str) -> None:
    """Writes ``text`` to a temporary file beside ``path``, then renames it over ``path``; on failure the temporary
    file is removed and ``path`` is as it was."""
    temporary = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        with tf.io.gfile.GFile(temporary, "w") as f:
            f.write(text)
        tf.io.gfile.rename(temporary, path, overwrite=True)
    except BaseException:
        if tf.io.gfile.exists(temporary):
            tf.io.gfile.remove(temporary)
        raise
