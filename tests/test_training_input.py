"""The Trainer's input: one pass per epoch or repeated by steps, and parsed once and served from memory when the
split fits model.cache_mb."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx_bsl.public import tfxio

from config import ModelConfig
from data.writer import write_examples
from models.training import PARSED_PER_GZIP_BYTE, estimated_parsed_mb, example_datasets


def _factory(files, options, schema):
    return tfxio.TFExampleRecord(file_pattern=files, schema=schema,
                                 telemetry_descriptors=["test"]).TensorFlowDataset(options)


@pytest.fixture
def split(tmp_path):
    """200 examples with ids 0..199 in two gzip files, and their schema."""
    for shard in range(2):
        write_examples({"id": np.arange(200)}, tmp_path / f"part-{shard}.gz", rows=range(shard, 200, 2))
    schema = schema_pb2.Schema()
    feature = schema.feature.add(name="id", type=schema_pb2.INT)
    feature.shape.SetInParent()
    feature.presence.min_fraction = 1.0
    return [str(tmp_path / "part-*.gz")], schema, tmp_path


def _passes(dataset, count):
    """The ids of each batch, for ``count`` passes over ``dataset``."""
    return [[batch["id"].numpy().tolist() for batch in dataset] for _ in range(count)]


def test_estimated_size_is_the_files_size_times_the_parsing_factor(split):
    files, _, folder = split
    on_disk = sum(path.stat().st_size for path in folder.glob("part-*.gz"))
    assert estimated_parsed_mb(files) == pytest.approx(on_disk * PARSED_PER_GZIP_BYTE / 2 ** 20)


def test_a_cached_split_is_read_once_and_reshuffled_by_batch_each_pass(split):
    files, schema, folder = split
    train, evaluation = example_datasets(_factory, files, files, schema, ModelConfig(batch_size=10))
    first, second = _passes(train, 2)
    assert sorted(sum(first, [])) == sorted(sum(second, [])) == list(range(200))  # every example once per pass
    assert first != second and sorted(first) == sorted(second)  # the same batches, in a new order
    assert sorted(sum(_passes(evaluation, 1)[0], [])) == list(range(200))
    for path in folder.glob("part-*.gz"):
        path.unlink()
    (third,) = _passes(train, 1)  # from memory: the files are gone
    assert sorted(third) == sorted(first)
    assert _passes(evaluation, 1)[0] == _passes(evaluation, 1)[0]  # in order, from memory too


def test_with_the_cache_off_every_pass_reads_the_files(split):
    files, schema, folder = split
    train, _ = example_datasets(_factory, files, files, schema, ModelConfig(batch_size=10, cache_mb=0))
    (first,) = _passes(train, 1)
    assert sorted(sum(first, [])) == list(range(200))
    for path in folder.glob("part-*.gz"):
        path.unlink()
    with pytest.raises(tf.errors.NotFoundError):
        _passes(train, 1)


@pytest.mark.parametrize("cache_mb", [0, 1024])
def test_a_split_read_by_steps_repeats(split, cache_mb):
    files, schema, _ = split
    config = dataclasses.replace(ModelConfig(batch_size=10, cache_mb=cache_mb), train_steps=50, eval_steps=5)
    train, _ = example_datasets(_factory, files, files, schema, config)
    ids = np.concatenate([batch["id"].numpy() for batch in train.take(50)])  # 500 examples: 2.5 passes
    assert len(ids) == 500 and np.bincount(ids, minlength=200).min() >= 2
