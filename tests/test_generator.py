"""Tests for the synthetic log generator (data/world.py, data/writer.py, data/truth.py)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from config import TaskConfig
from data.truth import TRUTH_FILE, TRUTH_OF_LABEL, load_truth
from data.world import FEATURE_DTYPES, LABEL_DTYPES, REACTIONS, LogSpec, entity_index, generate_span
from data.writer import EVENTS_FILE, generate_logs, write_span
from models.tasks import make_task

SMALL = LogSpec(num_events=2_000, num_users=300, num_items=150, num_categories=6, seed=7)
TF_DTYPES = {"bytes": tf.string, "int": tf.int64, "float": tf.float32}
# The generator's labels as tasks, each scoring the truth behind its label: the Bayes limit (or noise floor).
LABEL_TASKS = {"click": {"type": "binary"}, "conversion": {"type": "binary"}, "watch_time": {"type": "regression"},
               "interest": {"type": "multiclass", "num_classes": 5}, "reactions": {"type": "multilabel",
                                                                                 "num_classes": 4}}


def bayes_limits(truth: dict, labels: dict) -> dict[str, float]:
    """{label: its task's key metric of the truth behind it, over the events where the label is present}."""
    limits = {}
    for name, label in labels.items():
        task = make_task(TaskConfig(name=name, label_key=name, **LABEL_TASKS[name]))
        present = task.present(label)
        limits[name] = task.score(label, present.astype(float), truth[TRUTH_OF_LABEL[name]])
    return limits


def _read_examples(span_dir: Path) -> list[tf.train.Example]:
    records = tf.data.TFRecordDataset(str(span_dir / EVENTS_FILE), compression_type="GZIP")
    return [tf.train.Example.FromString(record.numpy()) for record in records]


def _values(example: tf.train.Example, key: str) -> list | None:
    """The value list of a feature, or None when the key is absent."""
    if key not in example.features.feature:
        return None
    feature = example.features.feature[key]
    return list(getattr(feature, feature.WhichOneof("kind")).value)


@pytest.fixture(scope="module")
def small_span(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tf.train.Example]]:
    span_dir = write_span(generate_span(SMALL, 3), tmp_path_factory.mktemp("logs"), 3)
    return span_dir, _read_examples(span_dir)


def test_layout_and_truth_round_trip(small_span):
    span_dir, examples = small_span
    assert span_dir.name == "span-3"
    assert sorted(p.name for p in span_dir.iterdir()) == sorted([EVENTS_FILE, TRUTH_FILE])
    truth = load_truth(span_dir)
    assert [_values(e, "event_id")[0] for e in examples] == truth["event_id"].tolist()
    assert truth["interest_probs"].shape == (SMALL.num_events, SMALL.num_interests)
    np.testing.assert_allclose(truth["interest_probs"].sum(axis=1), 1.0)
    assert ((truth["p_click"] > 0) & (truth["p_click"] < 1)).all()
    assert ((truth["p_conversion"] > 0) & (truth["p_conversion"] < 1)).all()
    assert (truth["watch_time_mean"] > 0).all()
    assert truth["reaction_probs"].shape == (SMALL.num_events, len(REACTIONS))
    picked = [truth["event_id"][i] for i in (5, 0, 5)]
    rows = load_truth(span_dir, picked)
    assert rows["event_id"].tolist() == picked
    np.testing.assert_array_equal(rows["p_click"], truth["p_click"][[5, 0, 5]])


def test_same_spec_gives_identical_bytes_and_other_seed_differs(tmp_path):
    paths = [
        generate_logs(spec, tmp_path / name, [2])[0]
        for name, spec in [("a", SMALL), ("b", SMALL), ("c", replace(SMALL, seed=8))]
    ]
    for file in (EVENTS_FILE, TRUTH_FILE):
        contents = [(path / file).read_bytes() for path in paths]
        assert contents[0] == contents[1]
        assert contents[0] != contents[2]


def _attributes_by_id(events, key: str, names: tuple[str, ...]) -> dict[bytes, set[tuple]]:
    """Every combination of the ``names`` features seen with each value of ``key``."""
    table = defaultdict(set)
    for row, value in enumerate(events.features[key].tolist()):
        table[value].add(tuple(events.features[name][row] for name in names))
    return table


def test_spans_share_the_world_but_not_the_events():
    first, second = generate_span(SMALL, 0), generate_span(SMALL, 1)
    fixed = {
        "item_id": ("item_category", "price", "item_popularity"),
        "user_id": ("country", "user_activity"),
    }
    for key, names in fixed.items():
        a, b = _attributes_by_id(first, key, names), _attributes_by_id(second, key, names)
        common = a.keys() & b.keys()
        assert len(common) > 50
        assert all(len(a[k]) == 1 and a[k] == b[k] for k in common)
    assert not set(first.features["event_id"].tolist()) & set(second.features["event_id"].tolist())
    assert (first.features["user_id"] != second.features["user_id"]).mean() > 0.9
    assert (first.labels["click"] != second.labels["click"]).any()


def test_written_examples_have_the_schema_and_label_presence(small_span):
    span_dir, examples = small_span
    for example in examples:
        keys = set(example.features.feature)
        assert set(FEATURE_DTYPES) | {"click"} <= keys
        clicked = _values(example, "click") == [1]
        assert ("conversion" in keys) == clicked
        assert ("watch_time" in keys) == clicked
        assert ("reactions" in keys) == clicked
        if clicked:
            assert _values(example, "conversion")[0] in (0, 1)
            assert _values(example, "watch_time")[0] >= 0
            assert len(_values(example, "reactions")) == len(REACTIONS)
            assert set(_values(example, "reactions")) <= {0, 1}
    interest_missing = np.mean([_values(e, "interest") is None for e in examples])
    assert 0.07 < interest_missing < 0.13
    # Everything parses with TF's own parser under the documented dtypes.
    spec = {k: tf.io.FixedLenFeature([], TF_DTYPES[dtype]) for k, dtype in FEATURE_DTYPES.items()}
    spec.update({k: tf.io.VarLenFeature(TF_DTYPES[dtype]) for k, dtype in LABEL_DTYPES.items()})
    records = tf.data.TFRecordDataset(str(span_dir / EVENTS_FILE), compression_type="GZIP")
    batch = tf.io.parse_example(next(iter(records.batch(SMALL.num_events))), spec)
    hours = batch["hour"].numpy()
    assert hours.min() >= 0 and hours.max() <= 23
    assert set(batch["device"].numpy().tolist()) <= {b"mobile", b"desktop", b"tablet"}
    assert (batch["price"].numpy() > 0).all() and (batch["user_activity"].numpy() > 0).all()


def test_written_values_match_the_events_in_memory(small_span):
    _, examples = small_span
    events = generate_span(SMALL, 3)
    for name in ("event_id", "item_category", "hour", "price"):
        written = [_values(e, name)[0] for e in examples]
        assert written == events.features[name].tolist()
    written_reactions = [_values(e, "reactions") or [np.nan] * len(REACTIONS) for e in examples]
    np.testing.assert_array_equal(np.array(written_reactions, np.float32), events.labels["reactions"])
    watch = events.labels["watch_time"]
    written_watch = [(_values(e, "watch_time") or [np.nan])[0] for e in examples]
    np.testing.assert_array_equal(np.array(written_watch, np.float32), watch)


def test_minus_one_fraction_one_writes_every_missing_label_as_minus_one(tmp_path):
    spec = replace(SMALL, num_events=500, minus_one_fraction=1.0)
    examples = _read_examples(write_span(generate_span(spec, 0), tmp_path, 0))
    unclicked = [e for e in examples if _values(e, "click") == [0]]
    assert unclicked
    assert all(_values(e, "conversion") == [-1] for e in unclicked)
    assert all(_values(e, "watch_time") == [-1.0] for e in unclicked)
    assert all(_values(e, "reactions") == [-1] * len(REACTIONS) for e in unclicked)
    interest = [_values(e, "interest") for e in examples]
    assert None not in interest and [-1] in interest


def test_minus_one_fraction_only_changes_how_missing_labels_are_marked():
    half = generate_span(replace(SMALL, minus_one_fraction=0.5), 0)
    plain = generate_span(SMALL, 0)
    missing = plain.labels["click"] == 0
    conversion = half.labels["conversion"]
    assert 0.4 < (conversion[missing] == -1).mean() < 0.6
    assert np.isnan(conversion[missing & (conversion != -1)]).all()
    np.testing.assert_array_equal(conversion[~missing], plain.labels["conversion"][~missing])
    assert bayes_limits(half.truth, half.labels) == bayes_limits(plain.truth, plain.labels)


def test_default_spec_lands_in_the_target_ranges():
    spec = LogSpec()
    events = generate_span(spec, 0)
    labels, truth = events.labels, events.truth
    clicked = labels["click"] == 1
    limits = bayes_limits(truth, labels)
    assert 0.15 <= clicked.mean() <= 0.25
    assert 0.08 <= labels["conversion"][clicked].mean() <= 0.2
    assert 0.75 <= limits["click"] <= 0.85
    assert 0.7 <= limits["conversion"] <= 0.85
    assert 0.5 <= labels["watch_time"][clicked].mean() <= 4.0
    # Gamma noise floor: E[(y - mean)^2] = mean^2 / shape.
    expected_rmse = np.sqrt(np.mean(truth["watch_time_mean"][clicked] ** 2 / 2.0))
    assert limits["watch_time"] == pytest.approx(expected_rmse, rel=0.1)
    assert 1.0 / spec.num_interests < limits["interest"] < 0.9
    reaction_rates = labels["reactions"][clicked].mean(axis=0)
    assert reaction_rates.argmax() == REACTIONS.index("like") and (reaction_rates > 0.05).all()
    assert 0.7 <= limits["reactions"] <= 0.9


@pytest.mark.parametrize(
    "bad",
    [
        {"num_events": 0},
        {"num_users": -1},
        {"num_items": 0},
        {"num_categories": 0},
        {"num_interests": 0},
        {"latent_dim": 0},
        {"seed": -1},
        {"minus_one_fraction": -0.1},
        {"minus_one_fraction": 1.5},
    ],
)
def test_bad_spec_raises(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        LogSpec(**bad)


def test_entity_index_parses_logged_ids():
    np.testing.assert_array_equal(entity_index(np.array([b"u00042", b"i00007"])), [42, 7])


def test_negative_span_raises():
    with pytest.raises(ValueError, match="span"):
        generate_span(SMALL, -1)


def test_a_world_of_many_users_has_power_law_activity():
    spec = LogSpec(num_events=50_000, num_users=100_000, num_items=10_000)
    counts = np.bincount(entity_index(generate_span(spec, 1).features["user_id"]), minlength=spec.num_users)
    seen = counts[counts > 0]
    assert (seen == 1).mean() > 0.6  # a long tail seen once
    assert np.sort(counts)[::-1][:1_000].sum() > 0.2 * spec.num_events  # the top 1% of users: over 20% of events


def test_generate_logs_takes_the_worlds_size(tmp_path):
    from pipeline.cli.main import main

    assert main(["generate-logs", "--out", str(tmp_path), "--events", "500", "--users", "40", "--items", "7"]) == 0
    examples = _read_examples(tmp_path / "span-1")
    users = {_values(e, "user_id")[0] for e in examples}
    items = {_values(e, "item_id")[0] for e in examples}
    assert len(users) <= 40 and len(items) == 7 and all(len(u) == 6 for u in users)
