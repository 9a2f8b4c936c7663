"""Atomic, unique pushes: a version directory appears only complete, and never twice with one number."""

import os
import shutil

import pytest
import tensorflow as tf

from components.atomic_pusher import next_version, push_model


@pytest.fixture
def saved_model(tmp_path):
    """A small real SavedModel that answers f(x) = 2x."""
    module = tf.Module()
    module.double = tf.function(lambda x: 2.0 * x, input_signature=[tf.TensorSpec([None], tf.float32)])
    path = str(tmp_path / "model")
    tf.saved_model.save(module, path, signatures={"serving_default": module.double})
    return path


def _versions(base):
    return sorted(os.listdir(base))


def test_push_writes_a_loadable_version_and_leaves_no_staging(saved_model, tmp_path):
    base = str(tmp_path / "serving" / "recs")
    destination = push_model(saved_model, base, now=1_700_000_000)
    assert destination == os.path.join(base, "1700000000") and _versions(base) == ["1700000000"]
    served = tf.saved_model.load(destination).signatures["serving_default"]
    assert served(x=tf.constant([1.5]))["output_0"].numpy().tolist() == [3.0]


def test_two_pushes_in_one_second_get_two_versions(saved_model, tmp_path):
    base = str(tmp_path / "recs")
    first = push_model(saved_model, base, now=1_700_000_000.2)
    second = push_model(saved_model, base, now=1_700_000_000.7)
    assert [os.path.basename(first), os.path.basename(second)] == ["1700000000", "1700000001"]
    assert next_version(base, now=1_600_000_000) == 1_700_000_002  # never below what is there


def test_an_interrupted_copy_leaves_no_version_and_the_previous_one_intact(saved_model, tmp_path):
    base = str(tmp_path / "recs")
    previous = push_model(saved_model, base, now=1_700_000_000)

    def crash_midway(source, destination):  # copies the variables, then dies before saved_model.pb
        shutil.copytree(os.path.join(source, "variables"), os.path.join(destination, "variables"))
        raise KeyboardInterrupt("killed during the copy")

    with pytest.raises(KeyboardInterrupt):
        push_model(saved_model, base, now=1_700_000_100, copy=crash_midway)
    assert _versions(base) == ["1700000000"]  # no partial version, no staging folder left
    served = tf.saved_model.load(previous).signatures["serving_default"]
    assert served(x=tf.constant([2.0]))["output_0"].numpy().tolist() == [4.0]


def test_a_folder_without_a_saved_model_is_not_pushed(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no saved_model.pb to push"):
        push_model(str(tmp_path / "empty"), str(tmp_path / "recs"))
    assert not (tmp_path / "recs").exists()
