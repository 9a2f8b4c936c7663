"""The assistant (config/assistant.yaml) through the real pipeline, every component, under LocalDagRunner on small
generated assistant logs: blessed and pushed; the served model names its classes and tags its tokens; `mtl predict`
prints the tagged spans; the report shows intents by name and each slot type's F1; bad tags stop the run in
preflight with one line."""

import dataclasses
import glob
import json
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
from browser import ARTIFACTS, Browser, find_chromium, visible

from components import serving_check
from config import PipelineConfig
from data.assistant import AssistantSpec
from data.writer import EVENTS_FILE, generate_logs
from models import lite
from pipeline.cli.main import main
from pipeline.reports.html_page import CONFUSION_CLASSES
from pipeline.reports.run_report import OVERALL, load_run_report
from pipeline.reports.write import write_reports
from pipeline.runners import run_local

pytestmark = pytest.mark.e2e

CONFIG = os.path.join(os.path.dirname(__file__), "..", "config", "assistant.yaml")


def _config(log_root) -> PipelineConfig:
    """The assistant config on small logs: a few epochs at a higher learning rate."""
    config = PipelineConfig.from_yaml(CONFIG)
    return config.replace(data=dataclasses.replace(config.data, log_root=str(log_root)),
                          model=dataclasses.replace(config.model, epochs=8, early_stopping_patience=2,
                                                    learning_rate=0.008, warm_start=False))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("assistant")
    generate_logs(AssistantSpec(num_events=4_000), root / "logs", [1])
    config = _config(root / "logs")
    metadata_path, run_id = run_local(config, output_dir=str(root / "out"), serving_dir=str(root / "serving"))
    reports = write_reports(metadata_path, config, str(root / "out"), run_id)
    return root, config, load_run_report(metadata_path, run_id), reports


def _pushed(root, config):
    (version,) = [name for name in os.listdir(root / "serving" / config.name) if name.isdigit()]
    return str(root / "serving" / config.name / version)


def test_the_assistant_run_is_blessed_and_pushed_with_every_head_learned(run):
    root, config, report, _ = run
    assert report.blessed and report.pushed_model
    overall = {head: values for (slice_name, head), values in report.metrics.items() if slice_name == OVERALL}
    assert overall["intent"]["sparse_categorical_accuracy"] > 0.6
    assert overall["slots"]["span_f1"] > 0.5 and overall["slots"]["token_accuracy"] > 0.9
    assert overall["keywords"]["auc"] > 0.6
    assert overall["intent"]["unseen_label_count"] >= 0


def test_the_assistant_ships_tflite_files_that_name_classes_and_tag_tokens_as_served(run):
    root, config, report, _ = run
    assert report.serving_check.startswith("passed: ")
    version = _pushed(root, config)
    model = tf.saved_model.load(version).signatures["serving_raw"]
    text = ["play some jazz in the kitchen", "", "cancel my order from yesterday please"]
    served = model(text=tf.constant(text), channel=tf.constant(["app", "web", "app"]))
    with open(glob.glob(os.path.join(root, "out", "pipeline_root", "ServingCheck", "infra_blessing", "*",
                                     serving_check.CHECK_FILE))[0]) as f:
        parity = json.load(f)["tflite"]
    if serving_check.NO_SELECT_OPS_REASON in parity[lite.FLOAT_FILE].get("reason", ""):
        # TF 2.21 (the TFX 1.21 stack): its Python interpreter cannot run the Select TF ops, so nothing ships
        assert parity["shipped"] == [] and not os.path.exists(os.path.join(version, serving_check.LITE_DIR))
        return
    shipped = os.listdir(os.path.join(version, serving_check.LITE_DIR))  # those that passed parity
    assert lite.FLOAT_FILE in shipped and sorted(shipped) == sorted(parity["shipped"])
    for name in shipped:
        runner = lite.LiteRunner(os.path.join(version, "tflite", name))
        assert runner({"text": np.array(text[:1], dtype=object), "channel": np.array(["app"], dtype=object)}
                      )["slots_tags"].shape == (1, 64)  # a first call of batch 1, as an app makes it
        on_device = runner(
            {"text": np.array(text, dtype=object), "channel": np.array(["app", "web", "app"], dtype=object)})
        assert on_device["slots_tokens"].tolist() == served["slots_tokens"].numpy().tolist()
        assert on_device["intent_classes"].tolist() == served["intent_classes"].numpy().tolist()
        np.testing.assert_allclose(on_device["intent"], served["intent"].numpy(),
                                   atol=1e-5 if name == lite.FLOAT_FILE else 0.05)


def test_the_served_model_names_its_classes_and_tags_its_tokens(run):
    root, config, report, _ = run
    model = tf.saved_model.load(_pushed(root, config))
    out = model.signatures["serving_raw"](text=tf.constant(["Cancel order 12345 please", ""]),
                                          channel=tf.constant(["app", "web"]))
    output = tft.TFTransformOutput(report.transform_graph_uri)
    intents = [name.decode() for name in output.vocabulary_by_name("intent_classes")]
    assert [n.decode() for n in out["intent_classes"].numpy()[0]] == intents
    np.testing.assert_allclose(out["intent"].numpy().sum(axis=1), 1.0, rtol=1e-5)
    assert [n.decode() for n in out["sentiment_classes"].numpy()[0]] == ["negative", "neutral", "positive"]
    tokens = [t.decode() for t in out["slots_tokens"].numpy()[0] if t]
    tags = [t.decode() for t in out["slots_tags"].numpy()[0]]
    assert tokens == ["cancel", "order", "12345", "please"]
    assert all(tag for tag in tags[:4]) and not any(tags[4:])  # a tag per token, none at padding
    assert not any(out["slots_tags"].numpy()[1])  # an empty utterance has nothing to tag
    assert out["slots"].shape[1:] == (64, 2 * len(output.vocabulary_by_name("slots_classes")) + 1)


def test_mtl_predict_prints_the_tagged_spans(run, tmp_path, capsys):
    root, config, _, _ = run
    requests = tmp_path / "requests.jsonl"
    requests.write_text(json.dumps({"text": "where is my order 48213", "channel": "web"}) + "\n")
    assert main(["predict", "--model", _pushed(root, config), "--jsonl", str(requests)]) == 0
    (line,) = capsys.readouterr().out.strip().splitlines()
    row = json.loads(line)
    assert row["slots_tokens"] == ["where", "is", "my", "order", "48213"] and len(row["slots_tags"]) == 5
    assert all({"type", "text", "start", "end"} == set(span) for span in row["slots_spans"])
    assert row["intent_classes"][int(np.argmax(row["intent"]))] in {
        "track_order", "cancel_order", "refund_request", "change_order", "return_item"}


def test_the_report_names_intents_and_shows_each_slot_types_f1(run):
    _, _, _, reports = run
    page = open(reports.html_path).read()
    assert "spans per slot type" in page and "<td>product</td>" in page
    assert "<th>track_order</th>" in page  # the confusion matrix by name
    assert "Bayes limit" in reports.markdown  # the truth's best, next to each head


def test_the_assistant_report_opens_in_a_browser_with_intents_by_name_and_each_slot_types_f1(run):
    root, config, report, reports = run
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("Chromium is not installed: `apt-get install chromium` (CI installs it)")
    output = tft.TFTransformOutput(report.transform_graph_uri)
    intents = {name.decode() for name in output.vocabulary_by_name("intent_classes")}
    slot_types = {name.decode() for name in output.vocabulary_by_name("slots_classes")}

    def cells(table):
        """The text of each row's cells, headers included, of the first element matching ``table``."""
        return browser.evaluate(f"Array.from(document.querySelector({json.dumps(table)}).rows)"
                                ".map(r => Array.from(r.cells).map(c => c.textContent.trim()))")

    with Browser(chromium) as browser:
        browser.load(f"file://{reports.html_path}")
        assert browser.errors() == []
        # a wide confusion matrix scrolls in its own box: the page itself never scrolls sideways
        assert browser.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        assert browser.evaluate(visible("#verdict tr[id^='verdict-']")) == len(config.tasks)
        for task in config.tasks:
            assert browser.evaluate(visible(f"#head-{task.name}")) == 1, task.name
        # the confusion matrices (overall and plotted slices): the most frequent intents, by name, rows as columns
        assert browser.evaluate(visible("#head-intent table.confusion")) >= 1
        matrix = cells("#head-intent table.confusion")
        columns, rows = matrix[0][1:], [row[0] for row in matrix[1:]]
        assert columns == rows and 2 <= len(columns) <= CONFUSION_CLASSES and set(columns) <= intents
        assert all(len(row) == 1 + len(columns) for row in matrix)
        assert browser.evaluate("(t => t.offsetWidth <= t.parentElement.clientWidth)("
                                "document.querySelector('#head-intent table.confusion'))")  # class names upright
        # one row per slot type, by name, with its counts and an F1 in [0, 1] wherever it has spans
        assert browser.evaluate(visible("#head-slots table.spans")) == 1
        table = cells("#head-slots table.spans")[1:]
        assert {row[0] for row in table} == slot_types and all(len(row) == 7 for row in table)
        annotated = [row for row in table if int(row[1].replace(",", "")) > 0]
        assert annotated and all(0.0 <= float(row[6]) <= 1.0 for row in annotated)
        assert all(int(row[3].replace(",", "")) <= min(int(row[1].replace(",", "")), int(row[2].replace(",", "")))
                   for row in annotated)  # correct spans: at most the annotated and the predicted ones
        os.makedirs(ARTIFACTS, exist_ok=True)
        browser.screenshot(os.path.join(ARTIFACTS, "assistant-report.png"))
    assert os.path.getsize(os.path.join(ARTIFACTS, "assistant-report.png")) > 10_000


def test_tags_that_disagree_with_the_tokens_stop_the_run_with_one_line(run, tmp_path, capsys):
    root, config, _, _ = run
    path = root / "logs" / "span-1" / EVENTS_FILE
    examples = [tf.train.Example.FromString(r.numpy()) for r in tf.data.TFRecordDataset(str(path), "GZIP")]
    broken = next(e for e in examples if "slots" in e.features.feature)
    broken.features.feature["slots"].bytes_list.value.append(b"O")
    span = tmp_path / "logs" / "span-1"
    span.mkdir(parents=True)
    with tf.io.TFRecordWriter(str(span / EVENTS_FILE), "GZIP") as writer:
        for example in examples:
            writer.write(example.SerializeToString())
    code = main(["run", "--config", CONFIG, "--log-root", str(tmp_path / "logs"), "--output-dir",
                 str(tmp_path / "out"), "--serving-dir", str(tmp_path / "serving")])
    lines = capsys.readouterr().err.strip().splitlines()
    event_id = broken.features.feature["event_id"].bytes_list.value[0].decode()
    assert code == 2 and len(lines) == 1
    assert f"(event_id {event_id})" in lines[0] and "task 'slots' has" in lines[0] and "tokens of 'text'" in lines[0]
    assert not (tmp_path / "serving").exists()
