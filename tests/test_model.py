"""Layers' get_config round trips, and the multi-task model's masked training behaviour."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from helpers import CONFIG, assert_training_reduces_every_task_loss, batch, tiny_model

from config import Architecture, Balancing, FeatureKind, PipelineConfig, TaskType
from models import training
from models.builder import ARCHITECTURES, BALANCERS, build_model, make_architecture
from models.features import KINDS
from models.layers import MLP, DotInteraction, FactorInteraction, FeatureEncoder
from models.tasks import TASK_TYPES
from models.zoo.shared_bottom import SharedBottom


@pytest.mark.parametrize("layer", [
    FeatureEncoder({"device": 4}, {"device": 3}, ["price"], name="enc"),
    FeatureEncoder({"user": 3, "item": 2}, {"user": 2, "item": 2}, [], dot_interaction=["user", "item"]),
    DotInteraction(name="dot"),
    FactorInteraction({"user": 3, "item": 2}, 4, l2=1e-3, name="factors"),
    MLP([8, 4], name="mlp"),
    SharedBottom(["a", "b"], [8], name="sb"),
])
def test_get_config_round_trip(layer):
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


def test_dot_interaction_gives_each_pair_its_dot_product():
    a, b, c = tf.constant([[1.0, 2.0]]), tf.constant([[3.0, 4.0]]), tf.constant([[0.0, -1.0]])
    np.testing.assert_allclose(DotInteraction()([a, b, c]).numpy(), [[11.0, -2.0, -4.0]])


def test_encoder_appends_the_dot_product_of_the_named_embeddings():
    encoder = FeatureEncoder({"user": 3, "item": 2}, {"user": 2, "item": 2}, ["price"],
                             dot_interaction=["user", "item"])
    features = {"user": tf.constant([2, 0]), "item": tf.constant([1, 1]), "price": tf.constant([0.5, -1.0])}
    encoded = encoder(features).numpy()
    user = encoder.embeddings["user"].embeddings.numpy()[[2, 0]]
    item = encoder.embeddings["item"].embeddings.numpy()[[1, 1]]
    assert encoded.shape == (2, 2 + 2 + 1 + 1)  # item, user embeddings (sorted), price, user . item
    np.testing.assert_allclose(encoded[:, :4], np.concatenate([item, user], axis=1))
    np.testing.assert_allclose(encoded[:, 4], [0.5, -1.0])
    np.testing.assert_allclose(encoded[:, 5], (user * item).sum(axis=1), rtol=1e-6)


def test_factor_interaction_gives_the_elementwise_product_of_the_two_ids_factors():
    layer = FactorInteraction({"user": 3, "item": 2}, 2, l2=0.5)
    layer({"user": tf.constant([0]), "item": tf.constant([0])})  # builds the tables
    user_table, item_table = layer.factors
    user_table.set_weights([np.array([[1.0, 2.0], [3.0, 4.0], [0.0, 1.0]])])
    item_table.set_weights([np.array([[2.0, -1.0], [0.5, 3.0]])])
    product = layer({"user": tf.constant([1, 2]), "item": tf.constant([0, 1])}).numpy()
    np.testing.assert_allclose(product, [[6.0, -4.0], [0.0, 3.0]])  # [3*2, 4*-1], [0*0.5, 1*3]
    # The L2 prior on whole tables: 0.5 * (1+4+9+16+0+1) + 0.5 * (4+1+0.25+9)
    np.testing.assert_allclose(float(tf.add_n(layer.losses)), 0.5 * 31 + 0.5 * 14.25)


def test_a_task_embedding_is_read_by_that_tasks_tower_alone():
    model = tiny_model(task_embeddings={"interest": ("device",)}, task_embedding_l2=0.5)
    features = batch()
    with tf.GradientTape(persistent=True) as tape:
        losses = model.task_losses(features, model(features, training=True))
    table = model.task_encoders["interest"].trainable_variables
    assert [tuple(v.shape) for v in table] == [(4, 3)]  # device: 4 ids, embedding_dim 3
    assert model.towers["interest"].trainable_variables[0].shape[0] == 8 + 3  # shared layer, then its own embedding
    for name, loss in losses.items():
        assert (tape.gradient(loss, table)[0] is not None) == (name == "interest"), name
    np.testing.assert_allclose(float(tf.add_n(model.task_encoders["interest"].losses)),
                               0.5 * np.sum(table[0].numpy() ** 2), rtol=1e-6)


def test_architecture_from_config():
    assert isinstance(make_architecture(CONFIG.model, ["click"]), SharedBottom)


@pytest.mark.parametrize("names, registry", [(TaskType, TASK_TYPES), (Architecture, ARCHITECTURES),
                                             (Balancing, BALANCERS), (FeatureKind, KINDS)])
def test_every_registered_name_has_exactly_one_implementation(names, registry):
    assert set(registry) == set(names)


def test_outputs_one_prediction_per_task():
    outputs = tiny_model()(batch())
    assert {k: tuple(v.shape) for k, v in outputs.items()} == {"click": (16,), "watch_time": (16,),
                                                                "interest": (16, 3)}


def test_missing_labels_do_not_change_the_gradient():
    model = tiny_model()
    features = batch()
    model(features)
    changed = dict(features, watch_time_label=tf.where(features["watch_time_weight"] > 0,
                                                       features["watch_time_label"], 99.0))

    def gradients(inputs):
        with tf.GradientTape() as tape:
            loss = model.total_loss(model.task_losses(inputs, model(inputs, training=True)))
        return tape.gradient(loss, model.trainable_variables)

    for a, b in zip(gradients(features), gradients(changed), strict=True):
        np.testing.assert_allclose(tf.convert_to_tensor(a), tf.convert_to_tensor(b), rtol=1e-6)


def test_per_example_normalization_weighs_each_task_by_the_share_of_the_batch_with_its_label():
    features = batch()  # every click and interest label present, about half the watch times
    share = float(tf.reduce_mean(features["watch_time_weight"]))
    assert 0.0 < share < 1.0
    model = tiny_model(loss_normalization="per_example")
    losses = model.task_losses(features, model(features))
    objective = model.objective_losses(features, losses)
    assert {k: float(v) for k, v in objective.items()} == pytest.approx(
        {"click": float(losses["click"]), "interest": float(losses["interest"]),
         "watch_time": share * float(losses["watch_time"])})
    assert tiny_model().objective_losses(features, losses) is losses  # per_label: the means, unchanged


def test_per_example_normalization_trains_every_task():
    assert_training_reduces_every_task_loss(tiny_model(loss_normalization="per_example"))


def test_training_reduces_every_task_loss():
    assert_training_reduces_every_task_loss(tiny_model())


def test_fit_builds_an_unbuilt_model():
    model = tiny_model()
    history = model.fit(tf.data.Dataset.from_tensors(batch(32)).repeat(), steps_per_epoch=3, verbose=0)
    assert np.isfinite(history.history["loss"][-1])


def test_a_nan_loss_stops_training_and_names_the_task():
    model = tiny_model()
    features = dict(batch(32), watch_time_label=tf.fill([32], float("nan")), watch_time_weight=tf.ones([32]))
    dataset = tf.data.Dataset.from_tensors(features).repeat()
    # By module: TFX's Trainer reloads models.training when an earlier test ran a pipeline in this process.
    with pytest.raises(training.NonFiniteLoss,
                       match=r"task 'watch_time': the training loss became nan at epoch 1, step 1"):
        training.fit(model, CONFIG.model, dataset, dataset, train_steps=100, eval_steps=1, verbose=0)


@pytest.mark.parametrize("sharing, readers", [("hard", {""}), ("soft", {"intent", "slots"}),
                                              ("by_level", {"", "slots"})])
def test_text_sharing_decides_which_heads_read_which_sequence_encoder(sharing, readers):
    config = PipelineConfig.from_dict({
        "name": "tiny-assistant",
        "features": [{"name": "text", "kind": "text", "max_tokens": 4, "embedding_dim": 4, "encoder": "cnn",
                      "encoder_units": 4, "sharing": sharing}, {"name": "channel", "kind": "vocabulary"}],
        "tasks": [{"name": "intent", "type": "multiclass", "label_key": "intent", "classes": ["a", "b", "c"]},
                  {"name": "slots", "type": "sequence_labeling", "label_key": "slots", "text_feature": "text",
                   "classes": ["date", "city"]}]})
    tf_keras.utils.set_random_seed(0)
    model = build_model(config, {"text": 10, "channel": 3})
    features = {"text": tf.constant([[3, 5, 1, 0], [2, 0, 0, 0]], tf.int64), "channel": tf.constant([1, 2], tf.int64)}
    with tf.GradientTape(persistent=True) as tape:
        totals = {head: tf.reduce_sum(output * tf.range(1.0, output.shape[-1] + 1))  # not a constant sum
                  for head, output in model(features).items()}
    encoders = model.text_encoders["text"].encoders
    assert set(encoders) == readers
    for head in ("intent", "slots"):
        for reader, encoder in encoders.items():
            reads = reader in ("", head)  # the shared encoder feeds every head's tower
            gradient = tape.gradient(totals[head], encoder.trainable_variables)
            assert all((g is not None) == reads for g in gradient), (head, reader)


def _tiny_tagger(encoder: str, max_tokens: int, classes=("date", "city"), text=None, task=None):
    """A model of one text feature (10 token ids) and one tagger, ``slots``, over its tokens; ``text`` and ``task``
    add settings to the feature's and the task's config."""
    config = PipelineConfig.from_dict({
        "name": "tiny-tagger",
        "features": [{"name": "text", "kind": "text", "max_tokens": max_tokens, "embedding_dim": 4,
                      "encoder": encoder, "encoder_units": 4, **(text or {})}],
        "tasks": [{"name": "slots", "type": "sequence_labeling", "label_key": "slots", "text_feature": "text",
                   "classes": list(classes), **(task or {})}]})
    tf_keras.utils.set_random_seed(0)
    return build_model(config, {"text": 10})


def test_a_tagger_gives_padding_outside_with_probability_one():
    model = _tiny_tagger("gru", max_tokens=4)
    tags = model({"text": tf.constant([[3, 5, 1, 0], [2, 0, 0, 0]], tf.int64)})["slots"].numpy()
    assert tags.shape == (2, 4, 5)
    np.testing.assert_array_equal(tags[0, 3], [1, 0, 0, 0, 0])
    np.testing.assert_array_equal(tags[1, 1:], np.tile([1, 0, 0, 0, 0], (3, 1)))
    assert (tags[0, :3, 0] < 1).all() and tags[1, 0, 0] < 1  # real tokens: the head's own softmax
    np.testing.assert_allclose(tags.sum(axis=-1), 1.0, rtol=1e-6)


def test_a_tagger_given_only_empty_utterances_tags_every_position_outside():
    # The tower and head run on the real tokens' rows; a batch with none gives them zero rows, in training too.
    model = _tiny_tagger("cnn", max_tokens=3, classes=("date",), text={"char_ngram_buckets": 10,
                                                                     "char_ngrams_per_token": 2}, task={"tower": [8]})
    features = {"text": tf.zeros([2, 9], tf.int64), "slots_label": tf.zeros([2, 3], tf.int64),
                "slots_weight": tf.zeros([2, 3])}
    tags = model(features)["slots"].numpy()
    np.testing.assert_array_equal(tags, np.tile([1, 0, 0], (2, 3, 1)))
    rows, positions = model(features, training=True)["slots"]
    assert rows.shape == (0, 3) and positions.shape == (0, 2)
    assert float(model.task_losses(features, model(features, training=True))["slots"]) == 0.0


def test_a_tagger_trains_on_its_real_tokens_rows_with_the_loss_of_its_served_tags():
    # In training the tagger's prediction is its real tokens' rows and their places; without dropout the loss and
    # the metric from them are those of the served [batch, tokens, tags] prediction.
    model = _tiny_tagger("cnn", max_tokens=4)
    features = {"text": tf.constant([[3, 5, 1, 0], [0, 0, 0, 0], [2, 0, 0, 0]], tf.int64),
                "slots_label": tf.constant([[1, 2, 0, 0], [0, 0, 0, 0], [3, 0, 0, 0]], tf.int64),
                "slots_weight": tf.constant([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]])}
    served = model(features)["slots"]
    rows, positions = model(features, training=True)["slots"]
    assert positions.numpy().tolist() == [[0, 0], [0, 1], [0, 2], [2, 0]]
    np.testing.assert_allclose(rows.numpy(), tf.gather_nd(served, positions).numpy(), rtol=1e-6)
    trained = model.task_losses(features, {"slots": (rows, positions)})["slots"]
    expected = -np.log(served.numpy()[[0, 0, 2], [0, 1, 0], [1, 2, 3]]).mean()  # the three weighted tokens
    assert float(trained) == pytest.approx(expected, rel=1e-5)
    assert float(model.task_losses(features, {"slots": served})["slots"]) == pytest.approx(expected, rel=1e-5)
