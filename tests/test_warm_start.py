"""Warm start: embedding rows follow their token, everything else is copied where its place and shape agree."""

import numpy as np
import tensorflow as tf
from helpers import CONFIG, batch, tiny_model

from models.warm_start import TokenRows, _embedded_feature, carry_rows, variable_paths, warm_start


def test_a_token_that_moves_from_row_3_to_row_7_keeps_its_embedding():
    old_tokens = [b"t0", b"t1", b"t2", b"moves", b"t4", b"dropped", b"t6", b"t7"]
    new_tokens = [b"t7", b"t0", b"new", b"t1", b"t2", b"t4", b"t6", b"moves"]
    old = np.arange(10 * 2, dtype=np.float32).reshape(10, 2)  # 8 tokens, then 2 OOV buckets
    new = np.full((10, 2), -1.0, np.float32)
    carried, kept = carry_rows(old, new, TokenRows.between(old_tokens, new_tokens), oov_buckets=2)
    np.testing.assert_array_equal(carried[7], old[3])  # 'moves'
    np.testing.assert_array_equal(carried[0], old[7])  # 't7'
    np.testing.assert_array_equal(carried[2], [-1.0, -1.0])  # 'new' keeps its initial value
    assert not any(np.array_equal(row, old[5]) for row in carried)  # 'dropped' is gone
    np.testing.assert_array_equal(carried[8:], old[8:])  # the OOV buckets, bucket by bucket
    assert kept == 7


def test_a_text_features_padding_row_stays_and_its_token_rows_move_by_token():
    old = np.array([[0.5], [1.0], [2.0], [9.0]])  # padding, tokens a, b, one OOV bucket
    new = np.array([[-0.5], [0.0], [0.0], [0.0]])  # padding, tokens b, a, the OOV bucket
    carried, kept = carry_rows(old, new, TokenRows.between([b"a", b"b"], [b"b", b"a"]), oov_buckets=1,
                               first_row=1)
    np.testing.assert_array_equal(carried, [[-0.5], [2.0], [1.0], [9.0]])
    assert kept == 2


def test_a_larger_vocabulary_carries_its_old_tokens_and_its_oov_buckets():
    old = np.array([[1.0], [2.0], [9.0]])  # tokens a, b; one OOV bucket
    carried, kept = carry_rows(old, np.zeros((4, 1)), TokenRows.between([b"a", b"b"], [b"c", b"b", b"a"]),
                               oov_buckets=1)
    np.testing.assert_array_equal(carried, [[0.0], [2.0], [1.0], [9.0]])
    assert kept == 2


def test_paths_ignore_keras_layer_numbers_and_the_model_root():
    first, second = tiny_model(), tiny_model()  # the second's layers are numbered on: dense_2, model_1
    first(batch(2))
    second(batch(2))
    assert [v.name for v in first.weights] != [v.name for v in second.weights]
    assert list(variable_paths(first.weights)) == list(variable_paths(second.weights))


def test_factor_tables_follow_their_tokens_like_embeddings():
    assert _embedded_feature("/feature_encoder/user_id_embedding/embeddings") == "user_id"
    assert _embedded_feature("/factor_interaction/item_id_factors/embeddings") == "item_id"
    assert _embedded_feature("/interest_feature_encoder/user_id_embedding/embeddings") == "user_id"  # its own
    assert _embedded_feature("/click_tower/dense/kernel") is None


class _TransformOutput:
    def __init__(self, vocabularies):
        self.vocabularies = vocabularies

    def vocabulary_by_name(self, name):
        return self.vocabularies[name]


def test_warm_start_from_a_saved_model_carries_tokens_and_copies_the_rest(tmp_path):
    old = tiny_model()
    old(batch(2))
    module = tf.Module()
    module.model = old
    tf.saved_model.save(module, str(tmp_path))
    (tmp_path / "assets").mkdir(exist_ok=True)
    (tmp_path / "assets" / "device").write_bytes(b"phone\ndesktop\ntablet\n")  # 3 tokens + 1 OOV bucket = 4 rows
    new = tiny_model()
    new(batch(2))
    old_embedding = old.encoder.embeddings["device"].embeddings.numpy()
    new_initial = new.encoder.embeddings["device"].embeddings.numpy()
    report = warm_start(new, str(tmp_path), _TransformOutput({"device": [b"tablet", b"tv", b"phone"]}),
                        list(CONFIG.features))
    embedding = new.encoder.embeddings["device"].embeddings.numpy()
    np.testing.assert_array_equal(embedding[0], old_embedding[2])  # tablet
    np.testing.assert_array_equal(embedding[1], new_initial[1])  # tv: new
    np.testing.assert_array_equal(embedding[2], old_embedding[0])  # phone
    np.testing.assert_array_equal(embedding[3], old_embedding[3])  # the OOV bucket
    assert report.tokens_kept == {"device": 2}
    for name in ("click", "watch_time", "interest"):
        for before, after in zip(old.heads[name].weights, new.heads[name].weights, strict=True):
            np.testing.assert_array_equal(after.numpy(), before.numpy())
    assert report.copied and not report.fresh


def test_every_table_of_a_feature_moves_by_its_tokens(tmp_path):
    old = tiny_model(task_embeddings={"interest": ["device"]})  # device: the shared table and interest's own
    old(batch(2))
    module = tf.Module()
    module.model = old
    tf.saved_model.save(module, str(tmp_path))
    (tmp_path / "assets").mkdir(exist_ok=True)
    (tmp_path / "assets" / "device").write_bytes(b"phone\ndesktop\ntablet\n")
    new = tiny_model(task_embeddings={"interest": ["device"]})
    new(batch(2))

    def tables(model):
        return {path: variables[0] for path, variables in variable_paths(model.weights).items()
                if _embedded_feature(path) == "device"}

    assert len(tables(new)) == 2
    initial = {path: table.numpy() for path, table in tables(new).items()}
    report = warm_start(new, str(tmp_path), _TransformOutput({"device": [b"tablet", b"tv", b"phone"]}),
                        list(CONFIG.features))
    for path, table in tables(new).items():
        before = tables(old)[path].numpy()
        np.testing.assert_array_equal(table.numpy(), [before[2], initial[path][1], before[0], before[3]], path)
    assert report.tokens_kept == {"device": 2}


def test_the_oov_buckets_carry_over_when_no_token_is_shared():
    old = np.array([[1.0], [9.0]])  # token a; one OOV bucket
    carried, kept = carry_rows(old, np.zeros((2, 1)), TokenRows.between([b"a"], [b"b"]), oov_buckets=1)
    np.testing.assert_array_equal(carried, [[0.0], [9.0]])
    assert kept == 0
