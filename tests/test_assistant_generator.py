"""Tests for the customer-service assistant's log generator (data/assistant.py, through data/writer.py and
data/truth.py, and `mtl generate-logs --world assistant`) and its best achievable scores
(pipeline/reports/assistant_limits.py)."""

from __future__ import annotations

import itertools
import unicodedata
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from data.assistant import (
    CHANNELS,
    FEATURE_DTYPES,
    FILLERS,
    INTENTS,
    KEYWORDS,
    LABEL_DTYPES,
    MAX_KEYWORDS,
    MAX_TOKENS,
    PUNCTUATION,
    SENTIMENTS,
    SLOT_TYPES,
    TEMPLATES,
    AssistantSpec,
    build_assistant_world,
    generate_assistant_span,
    keyword_marginals,
)
from data.truth import NAMES_OF_COLUMN, TRUTH_FILE, load_truth
from data.writer import EVENTS_FILE, generate_logs, write_span
from pipeline.reports.assistant_limits import best_achievable, tag_ids

SMALL = AssistantSpec(num_events=2_000, seed=7)
TAGS = {b"O"} | {f"{p}-{s}".encode() for p in "BI" for s in SLOT_TYPES}


@pytest.fixture(scope="module")
def default_span():
    """A span of the default spec (10,000 events): the rates and the tails are checked on it."""
    return generate_assistant_span(AssistantSpec(), 1)


@pytest.fixture(scope="module")
def small_span(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    span_dir = write_span(generate_assistant_span(SMALL, 2), tmp_path_factory.mktemp("assistant"), 2)
    records = tf.data.TFRecordDataset(str(span_dir / EVENTS_FILE), compression_type="GZIP")
    return span_dir, [tf.train.Example.FromString(r.numpy()).features.feature for r in records]


def _values(feature, key: str) -> list[bytes] | None:
    return list(feature[key].bytes_list.value) if key in feature else None


def _present(column: np.ndarray) -> np.ndarray:
    return np.array([value is not None for value in column])


def _slot_values(tokens: list[str], tags) -> list[tuple[str, str]]:
    """(type, lowercased value) of each span of well-formed BIO tags."""
    spans = []
    for token, tag in zip(tokens, (t.decode() if isinstance(t, bytes) else t for t in tags), strict=True):
        if tag.startswith("B-"):
            spans.append([tag[2:], token.lower()])
        elif tag.startswith("I-"):
            spans[-1][1] += " " + token.lower()
    return [tuple(span) for span in spans]


def test_same_spec_gives_identical_bytes_and_other_seed_differs(tmp_path):
    paths = [generate_logs(spec, tmp_path / name, [3])[0]
             for name, spec in [("a", SMALL), ("b", SMALL), ("c", replace(SMALL, seed=8))]]
    for file in (EVENTS_FILE, TRUTH_FILE):
        contents = [(path / file).read_bytes() for path in paths]
        assert contents[0] == contents[1]
        assert contents[0] != contents[2]


def test_spans_share_the_world_but_not_the_events():
    world = build_assistant_world(SMALL)
    np.testing.assert_array_equal(world.template_probs, build_assistant_world(SMALL).template_probs)
    first, second = generate_assistant_span(SMALL, 0), generate_assistant_span(SMALL, 1)
    np.testing.assert_array_equal(first.features["text"], generate_assistant_span(SMALL, 0).features["text"])
    assert not set(first.features["event_id"].tolist()) & set(second.features["event_id"].tolist())
    assert (first.features["text"] != second.features["text"]).mean() > 0.5
    # The posterior of a template is the world's, whichever span it is drawn in.
    posterior = {}
    for events in (first, second):
        for text, probs in zip(events.features["text"], events.truth["intent_probs"], strict=True):
            posterior.setdefault(text, probs)
            np.testing.assert_array_equal(posterior[text], probs)


def test_written_examples_have_the_columns_and_match_memory(small_span):
    span_dir, examples = small_span
    events = generate_assistant_span(SMALL, 2)
    truth = load_truth(span_dir)
    assert [_values(e, "event_id")[0] for e in examples] == truth["event_id"].tolist()
    for i, example in enumerate(examples):
        assert set(FEATURE_DTYPES) <= set(example) <= set(FEATURE_DTYPES) | set(LABEL_DTYPES)
        assert _values(example, "text") == [events.features["text"][i]]
        assert _values(example, "channel")[0] in CHANNELS
        for label in LABEL_DTYPES:
            value = events.labels[label][i]
            expected = None if value is None else list(value) if isinstance(value, tuple) else [value]
            assert _values(example, label) == expected
    # TF's own parser reads every column as strings.
    spec = {k: tf.io.FixedLenFeature([], tf.string) for k in FEATURE_DTYPES}
    spec.update({k: tf.io.VarLenFeature(tf.string) for k in LABEL_DTYPES})
    records = tf.data.TFRecordDataset(str(span_dir / EVENTS_FILE), compression_type="GZIP")
    batch = tf.io.parse_example(next(iter(records.batch(SMALL.num_events))), spec)
    assert batch["text"].shape == (SMALL.num_events,)
    assert tf.sparse.to_dense(batch["slots"]).shape[1] <= MAX_TOKENS


def test_tokens_and_tags_line_up(default_span):
    texts, clean = default_span.features["text"], default_span.truth["slots_clean"]
    logged = default_span.labels["slots"]
    for text, clean_tags, tags in zip(texts, clean, logged, strict=True):
        utterance = text.decode("utf-8")
        tokens = utterance.split(" ")
        assert tokens == utterance.split() and 1 <= len(tokens) <= MAX_TOKENS
        # Each token is all letters / digits / marks, or one punctuation mark: a word-and-punctuation tokenizer
        # cuts the same tokens as whitespace.
        for token in tokens:
            assert token in PUNCTUATION or all(unicodedata.category(c)[0] in "LNM" for c in token), token
        clean_tags = clean_tags.split()
        assert len(clean_tags) == len(tokens) and set(clean_tags) <= TAGS
        for before, tag in zip([b"O"] + clean_tags, clean_tags, strict=False):
            if tag.startswith(b"I-"):
                assert before[2:] == tag[2:], (utterance, clean_tags)  # I-X only after B-X or I-X
        if tags is not None:
            assert len(tags) == len(tokens) and set(tags) <= TAGS
    assert any(not t.isascii() for t in texts)  # UTF-8 (são paulo, zürich, josé)
    assert any(t != t.lower() for t in texts) and any(w.isupper() and len(w) > 2 for t in texts for w in t.split())


def test_lengths_have_a_long_tail_and_one_word_utterances(default_span):
    lengths = np.array([len(t.split()) for t in default_span.features["text"]])
    assert ((lengths >= 4) & (lengths <= 20)).mean() > 0.7
    assert 0.03 < (lengths == 1).mean() < 0.15
    assert (lengths > 30).sum() > 50 and lengths.max() <= MAX_TOKENS
    one_word = Counter(t.lower() for t, n in zip(default_span.features["text"], lengths, strict=True) if n == 1)
    assert {b"hi", b"agent"} <= set(one_word)


def test_label_missing_rates_follow_the_spec(default_span):
    spec, labels = AssistantSpec(), default_span.labels
    assert abs((~_present(labels["intent"])).mean() - spec.intent_missing_rate) < 0.01
    assert abs(_present(labels["keywords"]).mean() - spec.keywords_rate) < 0.03
    assert abs(_present(labels["sentiment"]).mean() - spec.sentiment_rate) < 0.03
    assert abs(_present(labels["slots"]).mean() - spec.slots_rate) < 0.03
    keywords = [k for k in labels["keywords"] if k is not None]
    assert all(1 <= len(k) <= MAX_KEYWORDS and len(set(k)) == len(k) for k in keywords)
    assert {w for k in keywords for w in k} == {k.encode() for k in KEYWORDS}
    assert {s for s in labels["sentiment"] if s is not None} == {s.encode() for s in SENTIMENTS}


def test_intents_are_many_and_long_tailed(default_span):
    intents = [i for i in default_span.labels["intent"] if i is not None]
    shares = np.array(sorted(Counter(intents).values(), reverse=True)) / len(intents)
    assert len(INTENTS) >= 20 and len(shares) == len(INTENTS)
    assert 0.1 < shares[0] < 0.3 and shares[-1] < 0.006 and shares[:5].sum() > 0.5 and shares[-10:].sum() < 0.08
    assert sum(len(t.tokens) == 1 and len(t.intents) == 1 for t in TEMPLATES) >= 4


def test_a_random_four_to_one_split_leaves_unseen_slot_values(default_span):
    texts, slots = default_span.features["text"], default_span.labels["slots"]
    annotated = np.flatnonzero(_present(slots))
    train = set(np.random.default_rng(0).permutation(annotated)[: 4 * len(annotated) // 5].tolist())
    seen, evaluated = set(), []
    for i in annotated.tolist():
        values = _slot_values(texts[i].decode().split(), slots[i])
        if i in train:
            seen.update(values)
        else:
            evaluated += values
    by_type = Counter(t for t, _ in evaluated)
    unseen = Counter(t for t, v in evaluated if (t, v) not in seen)
    assert set(by_type) == set(SLOT_TYPES)
    for slot in SLOT_TYPES:
        assert unseen[slot] / by_type[slot] >= 0.1, (slot, unseen[slot], by_type[slot])
    assert any(" " in v for t, v in evaluated if t == "city")  # multi-token values


def test_truth_probabilities_and_the_labels_drawn_from_them(default_span):
    truth, labels = default_span.truth, default_span.labels
    n = len(truth["event_id"])
    assert truth["intent_probs"].shape == (n, len(INTENTS)) and truth["keyword_probs"].shape == (n, len(KEYWORDS))
    np.testing.assert_allclose(truth["intent_probs"].sum(axis=1), 1.0)
    np.testing.assert_allclose(truth["sentiment_probs"].sum(axis=1), 1.0)
    keyword_probs = truth["keyword_probs"]
    assert ((keyword_probs > 0) & (keyword_probs < 1)).all()
    assert (keyword_probs.sum(axis=1) >= 1 - 1e-9).all() and (keyword_probs.sum(axis=1) <= MAX_KEYWORDS).all()
    for column, names in NAMES_OF_COLUMN.items():
        assert names in truth and column in truth
    names = truth["intent_names"].tolist()
    for i in np.flatnonzero(_present(labels["intent"])):
        probs = truth["intent_probs"][i]
        assert probs[names.index(labels["intent"][i])] > 0
        if probs.max() == 1.0:
            assert labels["intent"][i] == names[probs.argmax()]
    ambiguous = truth["intent_probs"].max(axis=1) < 1
    assert 0.05 < ambiguous.mean() < 0.25
    # Label frequencies match the truth's probabilities on the labelled events.
    for label, column, classes in (("sentiment", "sentiment_probs", SENTIMENTS),
                                   ("keywords", "keyword_probs", KEYWORDS)):
        rows = np.flatnonzero(_present(labels[label]))
        hits = np.array([[c.encode() in np.atleast_1d(labels[label][i]) for c in classes] for i in rows])
        np.testing.assert_allclose(hits.mean(axis=0), truth[column][rows].mean(axis=0), atol=0.03)
    # Annotation noise: a few spans dropped or retyped, the rest as clean.
    rows = np.flatnonzero(_present(labels["slots"]))
    same = np.mean([tuple(truth["slots_clean"][i].split()) == labels["slots"][i] for i in rows])
    assert 0.85 < same < 0.99


def test_keyword_marginals_are_exact():
    p = np.random.default_rng(3).uniform(0.02, 0.9, (4, 5))
    exact = np.zeros_like(p)
    for row in range(len(p)):
        total = 0.0
        for subset in itertools.product([0, 1], repeat=p.shape[1]):
            chosen = np.array(subset, bool)
            if 1 <= chosen.sum() <= MAX_KEYWORDS:
                weight = np.prod(np.where(chosen, p[row], 1 - p[row]))
                exact[row] += weight * chosen
                total += weight
        exact[row] /= total
    np.testing.assert_allclose(keyword_marginals(p), exact)


def test_voice_has_more_fillers_and_no_punctuation(default_span):
    texts, channels = default_span.features["text"], default_span.features["channel"]

    def filler_share(channel: bytes) -> float:
        words = [w for t, c in zip(texts, channels, strict=True) if c == channel for w in t.decode().split()]
        return np.mean([w in FILLERS for w in words])

    assert filler_share(b"voice") > 2 * filler_share(b"app")
    assert not any(w in PUNCTUATION for t, c in zip(texts, channels, strict=True) if c == b"voice"
                   for w in t.decode().split())


def test_best_achievable_is_below_one_where_labels_are_noisy(small_span):
    span_dir, _ = small_span
    scores = best_achievable(span_dir)
    assert set(scores) == {"intent_accuracy", "sentiment_accuracy", "keyword_auc", "slot_f1"}
    assert 0.85 < scores["intent_accuracy"] < 1.0  # shared templates
    assert 0.9 < scores["slot_f1"] < 1.0  # annotation noise
    assert 0.45 < scores["sentiment_accuracy"] < 0.9
    assert 0.65 < scores["keyword_auc"] < 0.95


def test_tag_ids_follow_the_span_scorers_scheme():
    tags, valid = tag_ids([[b"O", b"B-city", b"I-city"], [b"B-date"]], [b"date", b"city"])
    np.testing.assert_array_equal(tags, [[0, 3, 4], [1, 0, 0]])
    np.testing.assert_array_equal(valid, [[True, True, True], [True, False, False]])


def test_load_truth_by_event_keeps_the_name_tables(small_span):
    span_dir, _ = small_span
    truth = load_truth(span_dir)
    picked = [truth["event_id"][i] for i in (4, 1, 4)]
    rows = load_truth(span_dir, picked)
    np.testing.assert_array_equal(rows["intent_probs"], truth["intent_probs"][[4, 1, 4]])
    for names in NAMES_OF_COLUMN.values():
        np.testing.assert_array_equal(rows[names], truth[names])
    assert rows["slot_types"].tolist() == [s.encode() for s in SLOT_TYPES]


@pytest.mark.parametrize("bad", [{"num_events": 0}, {"seed": -1}, {"slots_rate": 1.5}, {"typo_rate": -0.1},
                                 {"rare_value_share": 2.0}])
def test_bad_spec_raises(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        AssistantSpec(**bad)


def test_cli_writes_the_assistant_spans_and_refuses_recommendation_flags(tmp_path, capsys):
    from pipeline.cli.main import main

    assert main(["generate-logs", "--world", "assistant", "--out", str(tmp_path), "--events", "300",
                 "--spans", "1", "2", "3"]) == 0
    for span in (1, 2, 3):
        assert sorted(p.name for p in (tmp_path / f"span-{span}").iterdir()) == sorted([EVENTS_FILE, TRUTH_FILE])
        assert len(load_truth(tmp_path / f"span-{span}")["event_id"]) == 300
    capsys.readouterr()
    assert main(["generate-logs", "--world", "assistant", "--out", str(tmp_path / "no"), "--users", "40"]) == 2
    error = capsys.readouterr().err.strip()
    assert "--users" in error and "\n" not in error and not (tmp_path / "no").exists()
