"""The typed config: loading, round trip, and clear errors on bad input."""

import json

import pytest
import yaml

from config import DEFAULT_CONFIG, ConfigError, PipelineConfig
from models.builder import check_model_config
from models.features import is_categorical


@pytest.fixture
def default_dict():
    with open(DEFAULT_CONFIG) as f:
        return yaml.safe_load(f)


def test_default_config_describes_the_bundled_logs():
    config = PipelineConfig.from_yaml(DEFAULT_CONFIG)
    assert [t.name for t in config.tasks] == ["click", "conversion", "watch_time", "interest"]
    assert {t.type for t in config.tasks} == {"binary", "regression", "multiclass"}
    assert config.features[0].name == "user_id" and is_categorical(config.features[0])
    assert config.tasks[0].blessing.bound == 0.55


def test_round_trip_through_json(default_dict):
    config = PipelineConfig.from_dict(default_dict)
    assert PipelineConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["tasks"][0].update(kind="binary"), r"config.tasks\[0\]: unknown key\(s\) \['kind'\]"),
    (lambda d: d["tasks"][0].update(type="ranking"), "task 'click': type 'ranking' not in"),
    (lambda d: d["features"][2].update(kind="onehot"), "feature 'item_category': kind 'onehot' not in"),
    (lambda d: d["features"].append(dict(d["features"][0])), r"duplicate feature name\(s\): \['user_id'\]"),
    (lambda d: d["tasks"][3].update(num_classes=1), "task 'interest': multiclass needs num_classes >= 2"),
    (lambda d: d["tasks"][1].update(loss_weight=-1.0), "task 'conversion': loss_weight must be >= 0"),
    (lambda d: d["evaluation"].update(slices=["os"]), "evaluation slice 'os' is not a declared feature"),
    (lambda d: d["tasks"][0].update(label_key="device"), "task 'click': label 'device' is a feature"),
    (lambda d: d["data"].update(span="yesterday"), "data.span 'yesterday' is not 'latest' or N"),
    (lambda d: d["features"][5].update(boundaries=[9, 3]), "feature 'hour': bucketized needs sorted"),
    (lambda d: d["features"][0].update(char_ngram_buckets=1000),
     "feature 'user_id': char_ngram_buckets is for a text feature, not kind 'vocabulary'"),
    (lambda d: d["features"].append({"name": "query", "kind": "text", "char_ngram_buckets": 1}),
     r"feature 'query': char_ngram_buckets must be >= 2 \(0: no n-grams\), got 1"),
    (lambda d: d["features"].append({"name": "query", "kind": "text", "char_ngram_buckets": 100,
                                     "char_ngram_sizes": []}),
     r"feature 'query': char_ngram_sizes must list lengths in \[1, 16\], got \[\]"),
    (lambda d: d["features"].append({"name": "query", "kind": "text", "char_ngram_buckets": 100,
                                     "char_ngrams_per_token": 0}),
     r"feature 'query': char_ngrams_per_token must be in \[1, 64\], got 0"),
    (lambda d: d["features"].append({"name": "query", "kind": "text", "hash_buckets": 100, "token_dropout": 0.1}),
     r"feature 'query': token_dropout reads tokens as OOV ids, which only a text feature's vocabulary has \(not "
     r"hash_buckets\)"),
    (lambda d: d["features"][0].update(token_dropout=0.1),
     r"feature 'user_id': token_dropout reads tokens as OOV ids, which only a text feature's vocabulary has"),
    (lambda d: d["features"].append({"name": "query", "kind": "text", "token_dropout": 1.0}),
     r"feature 'query': token_dropout must be in \[0, 1\), got 1.0"),
    (lambda d: d["features"][0].update(oov_by_shape=True),
     r"feature 'user_id': oov_by_shape picks a text token's OOV bucket by its shape, which only a text feature's "
     r"vocabulary has \(not hash_buckets\)"),
    (lambda d: d["features"].append({"name": "query", "kind": "text", "hash_buckets": 100, "oov_by_shape": True}),
     r"feature 'query': oov_by_shape picks a text token's OOV bucket by its shape"),
    (lambda d: d["features"][0].update(encoder_dropout=0.1),
     "feature 'user_id': encoder_dropout is for a text feature, not kind 'vocabulary'"),
    (lambda d: d["features"].append({"name": "query", "kind": "text", "encoder_dropout": 1.0}),
     r"feature 'query': encoder_dropout must be in \[0, 1\), got 1.0"),
    (lambda d: d["features"].append({"name": "query", "kind": "text", "sharing": "by_level"}),
     "feature 'query': sharing by_level gives each head that tags its tokens an encoder of its own, but no "
     "sequence_labeling task names it as text_feature: use sharing: hard"),
    (lambda d: (d["features"].append({"name": "query", "kind": "text", "sharing": "by_level"}),
                d["tasks"][3].update(text_feature="query")),
     "feature 'query': sharing by_level gives each head that tags its tokens an encoder of its own, but no "
     "sequence_labeling task names it as text_feature: use sharing: hard"),
    (lambda d: d["validation"].update(transform_statistics="on"),
     r"config.validation.transform_statistics: expected true or false"),
    (lambda d: d["validation"].update(value_counts="approximate"),
     r"validation.value_counts 'approximate' not in \['exact', 'sketch'\]"),
    (lambda d: d["tasks"][0].pop("label_key"), r"config.tasks\[0\]: .*label_key"),
    (lambda d: d.update(name="Recs_v2"), r"name 'Recs_v2' must match"),
    (lambda d: d["tasks"][3].update(type="multilabel", num_classes=0), "task 'interest': multilabel needs num_classes"),
    (lambda d: d["model"].update(batch_size="big"), r"config.model.batch_size: expected an integer, got 'big'"),
    (lambda d: d["model"].update(batch_size=True), r"config.model.batch_size: expected an integer, got True"),
    (lambda d: d["model"].update(batch_size=0), r"model.batch_size must be >= 1, got 0"),
    (lambda d: d["model"].update(learning_rate="fast"), r"config.model.learning_rate: expected a number, got 'fast'"),
    (lambda d: d["tasks"][0]["blessing"].update(bound="high"),
     r"config.tasks\[0\].blessing.bound: expected a number, got 'high'"),
    (lambda d: d["tasks"][0].update(tower=[32, "wide"]), r"config.tasks\[0\].tower\[1\]: expected an integer"),
    (lambda d: d["tasks"][0].update(dropout=1.5), r"task 'click': dropout must be in \[0, 1\)"),
    (lambda d: d["model"].update(jit_compile="yes"), r"config.model.jit_compile: expected true or false"),
    (lambda d: d["model"].update(fusion={"click": "a lot"}), r"config.model.fusion.click: expected a number"),
    (lambda d: d["model"].update(architecture="transformer"), r"model.architecture 'transformer' not in \['shared_b"),
    (lambda d: d["model"].update(balancing="magic"), r"model.balancing 'magic' not in \['fixed'"),
    (lambda d: d.update(features={"user_id": "vocabulary"}), r"config.features: expected a list"),
    (lambda d: d["data"].update(train_spans=0), "data.train_spans must be >= 1"),
    (lambda d: d["model"].update(loss_normalization="sum"), "model.loss_normalization 'sum' not in"),
    (lambda d: d["model"].update(dot_interaction=["user_id"]), "model.dot_interaction needs at least two"),
    (lambda d: d["model"].update(dot_interaction=["user_id", "price"]), "'price' is not a categorical feature"),
    (lambda d: d["model"].update(dot_interaction=["user_id", "device"]), "needs equal embedding_dim, got"),
    (lambda d: d["model"].update(factorization=["user_id"]), "model.factorization names two different categorical"),
    (lambda d: d["model"].update(factorization=["user_id", "price"]), r"got \['user_id', 'price'\]"),
    (lambda d: d["model"].update(factor_dim=0), "model.factor_dim must be >= 1, got 0"),
    (lambda d: d["model"].update(factor_l2=-1.0), "model.factor_l2"),
    (lambda d: d["model"].update(task_embedding_l2=-1.0), "model.task_embedding_l2"),
    (lambda d: d["model"].update(task_embeddings={"intrest": ["user_id"]}), "model.task_embeddings: 'intrest' is not"),
    (lambda d: d["model"].update(task_embeddings={"interest": ["price"]}),
     r"model.task_embeddings.interest: expected categorical features to embed for that task alone, got \['price'\]"),
    (lambda d: d["model"].update(task_embeddings={"interest": "user_id"}),
     r"config.model.task_embeddings.interest: expected a list, got 'user_id'"),
])
def test_bad_config_names_the_problem(default_dict, mutate, message):
    """Checked when the config loads, or (rules of the task types and feature kinds) by check_model_config, which
    preflight runs before any component starts."""
    mutate(default_dict)
    with pytest.raises(ConfigError, match=message):
        check_model_config(PipelineConfig.from_dict(default_dict))


def test_numbers_are_accepted_where_the_type_allows_them(default_dict):
    default_dict["model"]["learning_rate"] = 1  # an int where a float is expected
    default_dict["data"]["span"] = 2  # a span number written without quotes
    config = PipelineConfig.from_dict(default_dict)
    assert config.model.learning_rate == 1.0 and isinstance(config.model.learning_rate, float)
    assert config.data.span == "2"


@pytest.mark.parametrize("text, message", [
    ("name: [unclosed\n", r"bad.yaml: not valid YAML at line 2, column 1"),
    ("- just\n- a list\n", r"bad.yaml: config: expected a mapping, got list"),
])
def test_a_bad_file_names_itself_and_the_place(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        PipelineConfig.from_yaml(path)


def test_a_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="nothing.yaml: cannot read the config file"):
        PipelineConfig.from_yaml(tmp_path / "nothing.yaml")


@pytest.mark.parametrize("beam, message", [
    ({"args": ["runner=DataflowRunner"]}, "beam.args: 'runner=DataflowRunner' is not a --flag=value"),
    ({"workers": -1}, "beam.workers must be >= 0"),
])
def test_bad_beam_settings(default_dict, beam, message):
    default_dict["beam"] = beam
    with pytest.raises(ConfigError, match=message):
        PipelineConfig.from_dict(default_dict)


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["tasks"][0].update(name="a/b"), r"task name 'a/b' must be letters, digits and underscores"),
    (lambda d: d["tasks"][0].update(name=".."), r"task name '\.\.' must be"),
    (lambda d: d["tasks"][0].update(name="../../../../escape"), r"task name '\.\./\.\./\.\./\.\./escape' must be"),
    (lambda d: d["tasks"][0].update(label_key="click label"), r"task 'click': label_key name 'click label' must"),
    (lambda d: d["features"][0].update(name="user/id"), r"feature name 'user/id' must be"),
    (lambda d: d["tasks"][0].update(name="x" * 65), r"task name 'x{65}' must be"),
])
def test_names_that_reach_paths_and_metric_keys_are_safe(default_dict, mutate, message):
    mutate(default_dict)
    with pytest.raises(ConfigError, match=message):
        PipelineConfig.from_dict(default_dict)
