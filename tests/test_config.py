"""The typed config: loading, round trip, and clear errors on bad input."""

import json

import pytest
import yaml

from pipeline.config import DEFAULT_CONFIG, ConfigError, PipelineConfig


@pytest.fixture
def default_dict():
    with open(DEFAULT_CONFIG) as f:
        return yaml.safe_load(f)


def test_default_config_describes_the_bundled_logs():
    config = PipelineConfig.from_yaml(DEFAULT_CONFIG)
    assert [t.name for t in config.tasks] == ["click", "conversion", "watch_time", "interest"]
    assert {t.type for t in config.tasks} == {"binary", "regression", "multiclass"}
    assert config.features[0].name == "user_id" and config.features[0].is_categorical
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
    (lambda d: d["tasks"][0].pop("label_key"), r"config.tasks\[0\]: .*label_key"),
    (lambda d: d.update(name="Recs_v2"), r"name 'Recs_v2' must match"),
    (lambda d: d["tasks"][3].update(type="multilabel", num_classes=0), "task 'interest': multilabel needs num_classes"),
    (lambda d: d["model"].update(fusion={"interest": 1.0}), "model.fusion takes binary and regression tasks"),
    (lambda d: d["data"].update(train_spans=0), "data.train_spans must be >= 1"),
    (lambda d: d["model"].update(loss_normalization="sum"), "model.loss_normalization 'sum' not in"),
    (lambda d: d["model"].update(dot_interaction=["user_id"]), "model.dot_interaction needs at least two"),
    (lambda d: d["model"].update(dot_interaction=["user_id", "price"]), "'price' is not a categorical feature"),
    (lambda d: d["model"].update(dot_interaction=["user_id", "device"]), "needs equal embedding_dim, got"),
])
def test_bad_config_names_the_problem(default_dict, mutate, message):
    mutate(default_dict)
    with pytest.raises(ConfigError, match=message):
        PipelineConfig.from_dict(default_dict)
