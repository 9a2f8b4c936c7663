"""The real pipeline, every component, under LocalDagRunner on small generated logs.

One module-scoped first run (blessed, pushed), a second run whose candidate is deliberately worse on the click
head (not blessed, not pushed), and a run on logs that break a curated schema (stopped before Transform).
"""

import dataclasses
import glob
import json
import os
import re
import shutil

import numpy as np
import pytest
import tensorflow as tf
from browser import ARTIFACTS, Browser, find_chromium, visible
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tensorflow_serving.apis import prediction_log_pb2

from components import serving_check, serving_versions
from components.anomaly_gate import AnomaliesFound
from components.serving_probe import raw_inputs
from config import DEFAULT_CONFIG, BeamConfig, PipelineConfig, ServingConfig, TaskConfig
from data.world import LogSpec
from data.writer import generate_logs
from models import lite
from models.tasks import make_tasks
from pipeline.cli.main import main
from pipeline.guards.retrain import SpanAlreadyTrained
from pipeline.guards.schema_store import accepted_schema_path
from pipeline.metadata import artifact_span, run_ids
from pipeline.reports.head_limits import head_limits
from pipeline.reports.html_page import PLOTTED_SLICES
from pipeline.reports.markdown import BAYES_ROW, format_report
from pipeline.reports.run_report import OVERALL, load_run_report
from pipeline.reports.write import write_reports
from pipeline.runners import run_local

pytestmark = pytest.mark.e2e

EVENTS = 10_000


@dataclasses.dataclass
class Run:
    root: str
    config: PipelineConfig

    @property
    def output_dir(self):
        return os.path.join(self.root, "outputs")

    @property
    def serving_dir(self):
        return os.path.join(self.root, "serving")

    def execute(self, config=None):
        """A run on the module's logs; every run after the first trains the same span again, on purpose."""
        return load_run_report(*run_local(config or self.config, output_dir=self.output_dir,
                                         serving_dir=self.serving_dir, force=True))

    def versions(self):
        """The pushed version folders (the model config beside them is not one)."""
        return sorted(name for name in os.listdir(os.path.join(self.serving_dir, self.config.name))
                      if name.isdigit())

    def test_examples(self):
        """The test split (the Evaluator's) of the first ingestion (every run here ingests the same logs)."""
        outputs = glob.glob(os.path.join(self.output_dir, "pipeline_root", "ImportExampleGen", "examples", "*"))
        first = min(outputs, key=lambda path: int(os.path.basename(path)))
        return [tf.train.Example.FromString(r.numpy()) for r in tf.data.TFRecordDataset(
            glob.glob(os.path.join(first, "Split-test", "*")), compression_type="GZIP")]


def _small_config(log_root) -> PipelineConfig:
    """The default config on small logs: ~200 test conversions are too few for value floors on the sparse heads,
    so only click keeps its floor; every head keeps its no-regression tolerance. Beam runs inside each
    component's process (beam.workers 1), as the default does on 10,000 events; the first run uses worker
    processes. Every run trains from scratch (no warm start), so
    that a candidate made worse on purpose stays worse. Only the first run converts to TFLite (the tests of the
    TFLite files read its push) and computes confidence intervals; the serving check sends 200 events and 50
    batch-1 requests per signature."""
    config = PipelineConfig.from_yaml(DEFAULT_CONFIG)
    no_floor = {t.name: dataclasses.replace(t.blessing, bound=None) for t in config.tasks if t.name != "click"}
    tasks = tuple(dataclasses.replace(t, blessing=no_floor[t.name]) if t.name in no_floor else t
                  for t in config.tasks)
    return config.replace(tasks=tasks, data=dataclasses.replace(config.data, log_root=str(log_root)),
                          model=dataclasses.replace(config.model, train_steps=500, epochs=5, eval_steps=8,
                                                    warm_start=False),
                          beam=BeamConfig(workers=1),
                          evaluation=dataclasses.replace(config.evaluation, confidence_intervals=False),
                          serving=ServingConfig(tflite=False, check_events=200, latency_requests=50))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    generate_logs(LogSpec(num_events=EVENTS, num_users=300, num_items=150, seed=7), root / "logs", [1])
    return Run(str(root), _small_config(root / "logs"))


@pytest.fixture(scope="module")
def first(run):
    """The first run: Beam in two DirectRunner worker processes (the default picks processes only from 800,000
    events per span; this covers that path)."""
    return run.execute(run.config.replace(beam=BeamConfig(workers=2),
                                          serving=dataclasses.replace(run.config.serving, tflite=True),
                                          evaluation=dataclasses.replace(run.config.evaluation,
                                                                         confidence_intervals=True)))


def _present(example: tf.train.Example, key: str) -> bool:
    feature = example.features.feature.get(key)
    values = feature and (feature.int64_list.value or feature.float_list.value)
    return bool(values) and values[0] != -1


def test_every_head_has_metrics_overall_and_per_slice(run, first):
    for task in run.config.tasks:
        assert (OVERALL, task.name) in first.metrics
        for device in ("mobile", "desktop", "tablet"):
            assert (f"device={device}", task.name) in first.metrics
        assert any(s.startswith("item_category=") and h == task.name for s, h in first.metrics)


def test_the_trainer_never_reads_a_test_event_nor_the_evaluator_a_validation_event(run, first):
    transformed = glob.glob(os.path.join(run.output_dir, "pipeline_root", "Transform", "transformed_examples", "*",
                                         "Split-*"))
    assert {os.path.basename(path) for path in transformed} == {"Split-train", "Split-eval"}
    store = metadata_store.MetadataStore(metadata_store_pb2.ConnectionConfig(
        sqlite=metadata_store_pb2.SqliteMetadataSourceConfig(filename_uri=os.path.join(run.output_dir,
                                                                                        "metadata.db"))))
    properties = {}
    for execution in store.get_executions():
        for name in ("train_args", "eval_args", "example_splits"):
            if name in execution.custom_properties:  # TFX records exec properties there, protos as JSON
                properties[name] = json.loads(execution.custom_properties[name].string_value)
    assert properties["train_args"]["splits"] == ["train"] and properties["eval_args"]["splits"] == ["eval"]
    assert properties["example_splits"] == ["test"]  # and its example counts are the test split's (below)


def test_every_head_has_a_confidence_interval_around_its_metrics_on_every_slice(run, first):
    for (slice_name, head), values in first.metrics.items():
        task = next(t for t in make_tasks(run.config.tasks) if t.name == head)
        lower, upper = first.intervals[(slice_name, head)][task.key_metric_name]
        if slice_name == OVERALL:
            assert lower <= values[task.key_metric_name] <= upper, head
        elif lower == lower and values[task.key_metric_name] == values[task.key_metric_name]:
            # NaN where a jackknife bucket of a small slice has no label of a kind (or AUC has one class)
            assert lower <= values[task.key_metric_name] <= upper, (slice_name, head)
    overall = first.intervals[(OVERALL, "click")]["auc"]
    small = min((values["example_count"], name) for (name, head), values in first.metrics.items() if head == "click")
    wide = first.intervals[(small[1], "click")]["auc"]
    assert wide[1] - wide[0] > overall[1] - overall[0]  # the smallest slice knows its AUC least well


def test_example_count_per_head_equals_present_labels(run, first):
    examples = run.test_examples()
    counts = {t.name: sum(_present(e, t.label_key) for e in examples) for t in run.config.tasks}
    assert counts["click"] == len(examples) > counts["interest"] > counts["conversion"] == counts["watch_time"] > 0
    for name, count in counts.items():
        assert first.metrics[(OVERALL, name)]["example_count"] == count, name


def test_heads_learn(run, first):
    assert first.metrics[(OVERALL, "click")]["auc"] > 0.56  # ~1,000 test events: 3 standard errors above 0.5
    interests = [e.features.feature["interest"].int64_list.value for e in run.test_examples()]
    classes = np.bincount([v[0] for v in interests if v and v[0] >= 0])
    majority = classes.max() / classes.sum()
    assert first.metrics[(OVERALL, "interest")]["sparse_categorical_accuracy"] > majority + 0.02


def test_report_puts_each_head_next_to_its_bayes_limit(run, first):
    limits = head_limits(first, run.config)
    assert set(limits) == {t.name for t in run.config.tasks}
    assert 0.7 < limits["click"]["auc"] and first.metrics[(OVERALL, "click")]["auc"] < limits["click"]["auc"]
    assert limits["watch_time"]["root_mean_squared_error"] < first.metrics[(OVERALL, "watch_time")][
        "root_mean_squared_error"]
    assert 0.2 < limits["interest"]["sparse_categorical_accuracy"] < 1.0
    overall_rows = [line for line in format_report(first, limits).splitlines() if line.startswith(f"| {BAYES_ROW}")]
    assert len(overall_rows) == len(run.config.tasks)


def test_first_run_is_blessed_and_pushed_model_answers_requests(run, first):
    assert first.blessed, first.failures
    (version,) = run.versions()
    assert first.pushed_model == os.path.join(run.serving_dir, run.config.name, version)
    serve = tf.saved_model.load(first.pushed_model).signatures["serving_default"]
    requests = [e.SerializeToString() for e in run.test_examples()[:8]]
    outputs = serve(examples=tf.constant(requests))
    assert sorted(outputs) == sorted(t.name for t in run.config.tasks)
    assert outputs["click"].shape == (8,) and outputs["interest"].shape == (8, 5)
    assert np.all((outputs["click"].numpy() > 0) & (outputs["click"].numpy() < 1))
    np.testing.assert_allclose(outputs["interest"].numpy().sum(axis=1), 1.0, rtol=1e-5)
    saved = [name for name, _ in tf.train.list_variables(os.path.join(first.pushed_model, "variables", "variables"))]
    assert any(name.startswith("model/variables/") for name in saved)
    assert not [name for name in saved if "optimizer" in name]  # no Adam moments: the weights alone


def test_served_model_treats_a_non_finite_input_as_missing(run, first):
    serve = tf.saved_model.load(first.pushed_model).signatures["serving_default"]
    example = run.test_examples()[0]
    variants = []
    for price in (float("inf"), float("nan"), 0.0):  # 0.0: what a missing number becomes
        changed = tf.train.Example.FromString(example.SerializeToString())
        changed.features.feature["price"].float_list.value[:] = [price]
        variants.append(changed.SerializeToString())
    outputs = serve(examples=tf.constant(variants))
    for name, values in outputs.items():
        assert np.all(np.isfinite(values.numpy())), name
        np.testing.assert_allclose(values.numpy()[0], values.numpy()[2], rtol=1e-6)  # inf scores as missing
        np.testing.assert_allclose(values.numpy()[1], values.numpy()[2], rtol=1e-6)  # NaN scores as missing


def test_a_span_already_trained_is_refused_unless_forced(run, first, capsys):
    served_before = run.versions()
    args = ["run", "--log-root", run.config.data.log_root, "--output-dir", run.output_dir,
            "--serving-dir", run.serving_dir]
    assert main(args) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert re.search(rf"span 1 of {re.escape(run.config.data.log_root)} was already trained by run \S+.*, which "
                     r"pushed as version \d+; run the next span when it lands, or pass --force", line), line
    assert run.versions() == served_before
    with pytest.raises(SpanAlreadyTrained, match=f"already trained by run {first.run_id}"):
        run_local(run.config, output_dir=run.output_dir, serving_dir=run.serving_dir)


def test_candidate_worse_on_one_head_is_not_blessed_nor_pushed(run, first):
    tasks = tuple(dataclasses.replace(t, loss_weight=0.0) if t.name == "click" else t for t in run.config.tasks)
    second = run.execute(run.config.replace(tasks=tasks, evaluation=dataclasses.replace(run.config.evaluation,
                                                                                        confidence_intervals=True)))
    assert second.blessed is False and "click" in second.failed_heads
    # an untrained click head: its change, and its one-sided bound, below no change (besides its AUC below the bound)
    (line,) = [f for f in second.failures if f.startswith("click/auc changed by")]
    assert re.fullmatch(r"click/auc changed by -0\.\d+ \(95% interval -0\.\d+ to -0\.\d+, paired on the same test "
                        r"events\) against the baseline: worse than its tolerance 0\.01, and its one-sided 95% bound "
                        r"-0\.\d+ lies below no change \(blessing\.evidence: interval\)", line), line
    assert second.pushed_model is None
    assert len(run.versions()) == 1


def test_anomalies_stop_the_run_before_transform(run, first, tmp_path):
    schemas = glob.glob(os.path.join(run.output_dir, "pipeline_root", "SchemaGen", "schema", "*", "schema.pbtxt"))
    schema = min(schemas, key=lambda path: int(path.split(os.sep)[-2]))  # the first run's, as a curated schema
    broken = tmp_path / "logs" / "span-1"
    broken.mkdir(parents=True)
    with tf.io.TFRecordWriter(str(broken / "events.tfrecord.gz"), "GZIP") as writer:
        for example in run.test_examples():  # a device the schema's domain has never seen
            example.features.feature["device"].bytes_list.value[:] = [b"smart_tv"]
            writer.write(example.SerializeToString())
    config = run.config.replace(data=dataclasses.replace(run.config.data, log_root=str(tmp_path / "logs"),
                                                         schema_path=schema))
    with pytest.raises(AnomaliesFound, match="feature 'device'"):
        run_local(config, output_dir=str(tmp_path / "outputs"), serving_dir=str(tmp_path / "serving"))
    assert not os.path.exists(tmp_path / "outputs" / "pipeline_root" / "Transform")
    assert not os.path.exists(tmp_path / "serving")


def test_the_first_run_accepts_its_schema_and_a_drifted_span_stops_before_transform(run, first, tmp_path):
    accepted = accepted_schema_path(run.output_dir)
    assert "feature {" in open(accepted).read()
    drifted = tmp_path / "logs" / "span-1"
    drifted.mkdir(parents=True)
    with tf.io.TFRecordWriter(str(drifted / "events.tfrecord.gz"), "GZIP") as writer:
        for example in run.test_examples():  # every impression on mobile: a device mix the last span never had
            example.features.feature["device"].bytes_list.value[:] = [b"mobile"]
            writer.write(example.SerializeToString())
    served_before = run.versions()
    config = run.config.replace(data=dataclasses.replace(run.config.data, log_root=str(tmp_path / "logs")))
    for _ in range(2):  # the rejected span never becomes the baseline: trying it again fails again
        with pytest.raises(AnomaliesFound, match=r"split 'train', feature 'device': moved 0\.\d+ \(L_INFTY\) from "
                                                 r"the last validated span, above validation.drift 0.05"):
            run_local(config, output_dir=run.output_dir, serving_dir=run.serving_dir)
    assert run.versions() == served_before


def test_a_non_default_model_runs_end_to_end(run, tmp_path):
    """MMoE, uncertainty weighting, user . item interaction, per-example loss normalisation, a fusion output and
    a multilabel head, through every component to a served model."""
    model = dataclasses.replace(run.config.model, architecture="mmoe", experts=3, expert_layers=(32,),
                                balancing="uncertainty", dot_interaction=("user_id", "item_id"),
                                loss_normalization="per_example",
                                fusion={"click": 1.0, "conversion": 2.0, "watch_time": 0.5})
    reactions = TaskConfig(name="reactions", type="multilabel", label_key="reactions", num_classes=4, tower=(16,))
    other = Run(str(tmp_path), run.config.replace(model=model, tasks=(*run.config.tasks, reactions)))
    report = other.execute()
    assert {head for _, head in report.metrics} == {t.name for t in other.config.tasks}
    assert report.metrics[(OVERALL, "click")]["auc"] > 0.56
    examples = other.test_examples()
    clicked = sum(_present(e, "reactions") for e in examples)
    assert clicked == sum(e.features.feature["click"].int64_list.value[0] for e in examples)
    assert report.metrics[(OVERALL, "reactions")]["example_count"] == clicked
    assert report.metrics[(OVERALL, "reactions")]["auc"] > 0.6  # micro AUC over 4 reactions of unequal rates
    assert report.blessed, report.failures
    outputs = tf.saved_model.load(report.pushed_model).signatures["serving_default"](
        examples=tf.constant([e.SerializeToString() for e in examples[:4]]))
    assert outputs["reactions"].shape == (4, 4)
    watch_time = tf.math.log1p(tf.maximum(outputs["watch_time"], 0.0))
    expected = (outputs["click"] + 2.0 * outputs["conversion"] + 0.5 * watch_time).numpy()
    np.testing.assert_allclose(outputs["fusion_score"].numpy(), expected, rtol=1e-5)


def _spans_transform_read(metadata_path: str) -> list[int]:
    """The spans of the Examples the newest run's Transform consumed, read from MLMD."""
    connection = metadata_store_pb2.ConnectionConfig()
    connection.sqlite.filename_uri = metadata_path
    store = metadata_store.MetadataStore(connection)
    latest = max(store.get_contexts_by_type("pipeline_run"), key=lambda c: c.create_time_since_epoch)
    (transform,) = [e for e in store.get_executions_by_context(latest.id)
                    if store.get_execution_types_by_id([e.type_id])[0].name.endswith("Transform")]
    inputs = [e.artifact_id for e in store.get_events_by_execution_ids([transform.id])
              if e.type == metadata_store_pb2.Event.INPUT]
    examples = [a for a in store.get_artifacts_by_id(inputs)
                if store.get_artifact_types_by_id([a.type_id])[0].name == "Examples"]
    return sorted(artifact_span(a) for a in examples)


def test_training_window_covers_the_newest_ingested_spans(tmp_path):
    generate_logs(LogSpec(num_events=3000, num_users=300, num_items=150, seed=3), tmp_path / "logs", [1, 2])
    config = _small_config(tmp_path / "logs")
    window = Run(str(tmp_path), config.replace(data=dataclasses.replace(config.data, span="1")))
    window.execute()
    assert _spans_transform_read(os.path.join(window.output_dir, "metadata.db")) == [1]
    window.execute(config.replace(data=dataclasses.replace(config.data, train_spans=2)))  # ingests span 2
    assert _spans_transform_read(os.path.join(window.output_dir, "metadata.db")) == [1, 2]


def _nan_watch_time(example):
    if "watch_time" in example.features.feature:
        example.features.feature["watch_time"].float_list.value[:] = [float("nan")]


def _without_price(example):
    del example.features.feature["price"]


@pytest.mark.parametrize("fault, fragment", [
    (None, "(the latest span): no files match"),
    (_nan_watch_time, "label 'watch_time' of task 'watch_time' (regression) has"),
    (_without_price, "no event has the feature 'price'"),
])
def test_bad_data_stops_before_any_component_and_the_served_model_keeps_answering(run, first, tmp_path, capsys,
                                                                                    fault, fragment):
    """On the first run's output and serving folders: one line, exit 2, nothing pushed, the served model intact."""
    served_before = run.versions()
    logs = tmp_path / "logs"
    shutil.copytree(run.config.data.log_root, logs)
    span_dir = logs / "span-2"
    span_dir.mkdir()
    if fault:
        with tf.io.TFRecordWriter(str(span_dir / "events.tfrecord.gz"), "GZIP") as writer:
            for example in run.test_examples():
                fault(example)
                writer.write(example.SerializeToString())
    code = main(["run", "--log-root", str(logs), "--output-dir", run.output_dir, "--serving-dir", run.serving_dir])
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and str(span_dir) in line and fragment in line, line
    assert run.versions() == served_before
    serve = tf.saved_model.load(first.pushed_model).signatures["serving_default"]
    outputs = serve(examples=tf.constant([e.SerializeToString() for e in run.test_examples()[:3]]))
    assert np.all(np.isfinite(outputs["click"].numpy()))


def test_the_html_report_opens_in_a_browser_with_every_head_and_plot(run, first):
    reports = write_reports(os.path.join(run.output_dir, "metadata.db"), run.config, run.output_dir, first.run_id)
    assert os.path.exists(os.path.join(first.evaluation_uri, "report.html"))
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("Chromium is not installed: `apt-get install chromium` (CI installs it)")
    with Browser(chromium) as browser:
        browser.load(f"file://{reports.html_path}")
        assert browser.errors() == []
        assert browser.evaluate(visible("#verdict tr[id^='verdict-']")) == len(run.config.tasks)
        assert browser.evaluate(visible("#verdict .interval")) == len(run.config.tasks)  # no baseline: no change
        for task in run.config.tasks:
            assert browser.evaluate(visible(f"#head-{task.name}")) == 1, task.name
            # the per-slice chart and TFMA's plot (calibration curve, or confusion matrix for multiclass) for the
            # overall slice and the first PLOTTED_SLICES slices
            slices = len({name for name, head in first.metrics if head == task.name})
            assert browser.evaluate(visible(f"#head-{task.name} svg.chart, #head-{task.name} table.confusion")) == (
                1 + min(slices, 1 + PLOTTED_SLICES)), task.name
            assert browser.evaluate(visible(f"#head-{task.name} .few")) >= 1  # item categories of ~100 events
        assert browser.evaluate(visible("#data table")) == 1 and browser.evaluate(visible("#training svg")) >= 4
        os.makedirs(ARTIFACTS, exist_ok=True)
        browser.screenshot(os.path.join(ARTIFACTS, "report.png"))
    assert os.path.getsize(os.path.join(ARTIFACTS, "report.png")) > 10_000


def test_mtl_runs_lists_every_recorded_run_newest_first(run, first, capsys):
    assert main(["runs", "--output-dir", run.output_dir]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    recorded = run_ids(os.path.join(run.output_dir, "metadata.db"))
    assert len(recorded) >= 3 and len(lines) == 1 + len(recorded)
    assert [line.split()[0] for line in lines[1:]] == recorded
    (row,) = [line for line in lines if line.startswith(first.run_id)]
    assert row.rstrip().endswith(os.path.basename(first.pushed_model))


def test_json_and_example_signatures_give_the_same_scores(run, first, tmp_path, capsys):
    examples = run.test_examples()[:6]
    with open(tmp_path / "events.jsonl", "w") as f:
        for example in examples:
            row = {}
            for feature in run.config.features:
                values = example.features.feature[feature.name]
                value = getattr(values, values.WhichOneof("kind")).value[0]
                row[feature.name] = value.decode() if isinstance(value, bytes) else value
            f.write(json.dumps(row) + "\n")
    with tf.io.TFRecordWriter(str(tmp_path / "events.tfrecord.gz"), "GZIP") as writer:
        for example in examples:
            writer.write(example.SerializeToString())
    scores = {}
    for flag, path in (("--jsonl", "events.jsonl"), ("--tfrecord", "events.tfrecord.gz")):
        assert main(["predict", "--model", first.pushed_model, flag, str(tmp_path / path)]) == 0
        scores[flag] = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert len(scores["--jsonl"]) == len(scores["--tfrecord"]) == 6
    for from_json, from_example in zip(scores["--jsonl"], scores["--tfrecord"], strict=True):
        assert sorted(from_json) == sorted(t.name for t in run.config.tasks)
        for head in from_json:
            np.testing.assert_allclose(from_json[head], from_example[head], rtol=1e-5, atol=1e-6)


def test_bad_prediction_requests_end_with_one_line_naming_the_line_and_feature(run, first, tmp_path, capsys):
    (example,) = run.test_examples()[:1]
    good = {}
    for feature in run.config.features:
        values = example.features.feature[feature.name]
        value = getattr(values, values.WhichOneof("kind")).value[0]
        good[feature.name] = value.decode() if isinstance(value, bytes) else value
    cases = [({**good, "price": [19.9, 5.0]}, r":1: feature 'price' must be one value, a number, got \[19.9, 5.0\]"),
             (5, r":1: expected a JSON object of raw features .*got 5"),
             (None, r":1: expected a JSON object of raw features .*got null"),
             ([1, 2], r":1: expected a JSON object of raw features .*got \[1, 2\]"),
             ({**good, "device": 3}, r":1: feature 'device' must be one value, text, got 3")]
    for line, message in cases:
        path = tmp_path / "bad.jsonl"
        path.write_text(json.dumps(line) + "\n")
        assert main(["predict", "--model", first.pushed_model, "--jsonl", str(path)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and re.search(message, err), err
    path = tmp_path / "extra.jsonl"
    path.write_text(json.dumps({**good, "click": 1}) + "\n")
    assert main(["predict", "--model", first.pushed_model, "--jsonl", str(path)]) == 0
    assert "ignored key(s) the model does not read: ['click'] (first on line 1" in capsys.readouterr().err
    lacking = tf.train.Example()
    lacking.CopyFrom(example)
    del lacking.features.feature["price"]
    for records, message in (([lacking.SerializeToString()], r"record 1: lacks feature 'price'"),
                             ([example.SerializeToString(), b"\xff\xfe garbage"], r"record 2: not a serialized")):
        path = tmp_path / "bad.tfrecord"
        with tf.io.TFRecordWriter(str(path)) as writer:
            for record in records:
                writer.write(record)
        assert main(["predict", "--model", first.pushed_model, "--tfrecord", str(path)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and re.search(message, err), err


def _artifact(run, component: str, name: str, first: bool = True) -> str:
    """The uri of a component's output artifact in the module's runs: the first one written, or the newest."""
    uris = glob.glob(os.path.join(run.output_dir, "pipeline_root", component, name, "*"))
    return (min if first else max)(uris, key=lambda path: int(os.path.basename(path)))


def test_a_push_carries_warmup_requests_that_replay_tflite_files_and_the_model_config(run, first):
    version = os.path.basename(first.pushed_model)
    assert first.serving_check.startswith("passed: 200 events, batch-1 p99 ")
    warmup = os.path.join(first.pushed_model, "assets.extra", serving_check.WARMUP_FILE)
    records = [prediction_log_pb2.PredictionLog.FromString(r.numpy()) for r in tf.data.TFRecordDataset(warmup)]
    model = tf.saved_model.load(first.pushed_model)
    replayed = []
    for record in records:
        request = record.predict_log.request
        assert request.model_spec.name == run.config.name
        inputs = {key: tf.make_ndarray(proto) for key, proto in request.inputs.items()}
        outputs = model.signatures[request.model_spec.signature_name](**inputs)
        assert all(np.isfinite(outputs[t.name].numpy()).all() for t in run.config.tasks)
        replayed.append((request.model_spec.signature_name, len(next(iter(inputs.values())))))
    assert sorted(replayed) == [("serving_default", 1), ("serving_default", 16), ("serving_raw", 1),
                                ("serving_raw", 16)]
    base = os.path.dirname(first.pushed_model)
    assert serving_versions.read_labels(base) == {"stable": int(version)}
    record = serving_versions.read_push_record(first.pushed_model)
    assert record["metrics"]["click"] == {"metric": "auc", "value": first.metrics[(OVERALL, "click")]["auc"]}
    # The TFLite files that passed parity ship and give the served scores on test events, from raw features alone;
    # a file that did not pass says why (on 200 events one flipped argmax moves interest's accuracy by 0.0056).
    with open(os.path.join(_artifact(run, "ServingCheck", "infra_blessing"), serving_check.CHECK_FILE)) as f:
        parity = json.load(f)["tflite"]
    if serving_check.NO_SELECT_OPS_REASON in parity[lite.FLOAT_FILE].get("reason", ""):
        # TF 2.21 (the TFX 1.21 stack): its Python interpreter cannot run the Select TF ops, so nothing ships
        assert parity["shipped"] == []
        assert not os.path.exists(os.path.join(first.pushed_model, serving_check.LITE_DIR))
        return
    assert lite.FLOAT_FILE in parity["shipped"]
    for head in parity[lite.FLOAT_FILE]["heads"].values():
        assert abs(head["tflite"] - head["saved_model"]) <= run.config.serving.tflite_tolerance
    assert sorted(os.listdir(os.path.join(first.pushed_model, serving_check.LITE_DIR))) == sorted(parity["shipped"])
    if lite.QUANTIZED_FILE not in parity["shipped"]:
        assert parity[lite.QUANTIZED_FILE]["reason"].startswith(f"{lite.QUANTIZED_FILE} not shipped: parity fails on ")
    events = [e.SerializeToString() for e in run.test_examples()[:64]]
    raw_signature = model.signatures["serving_raw"]
    raw = raw_inputs(events, {k: s.dtype for k, s in raw_signature.structured_input_signature[1].items()})
    served = raw_signature(**raw)
    for name in parity["shipped"]:
        runner = lite.LiteRunner(os.path.join(first.pushed_model, serving_check.LITE_DIR, name))
        one = runner({k: v[:1] for k, v in raw.items()})  # a first call of batch 1, as an app makes it
        assert one["interest"].shape == (1, 5)
        on_device = runner(raw)
        for task in run.config.tasks:
            np.testing.assert_allclose(on_device[task.name], served[task.name].numpy(),
                                       atol=1e-4 if name == lite.FLOAT_FILE else 0.05)


def test_a_candidate_over_its_latency_slo_is_not_pushed_and_says_by_how_much(run, first):
    before = run.versions()
    # blessed whatever a retrained head's seed noise does (conversion moves ~0.02 AUC on ~200 test labels)
    tasks = tuple(dataclasses.replace(t, blessing=dataclasses.replace(t.blessing, tolerance=1.0, bound=None))
                  for t in run.config.tasks)
    config = run.config.replace(tasks=tasks, serving=dataclasses.replace(run.config.serving, latency_slo_ms=0.001))
    slow = run.execute(config)
    assert slow.blessed, slow.failures
    assert re.fullmatch(r"FAILED: serving_default's batch-1 p99 latency is [\d.]+ ms, over serving\.latency_slo_ms "
                        r"= 0\.001 ms \(50 requests\)", slow.serving_check), slow.serving_check
    assert slow.pushed_model is None and run.versions() == before
    assert serving_versions.read_labels(os.path.join(run.serving_dir, run.config.name)) == {"stable": int(before[-1])}


class _NaNModel(tf.Module):
    """A candidate that loads and answers, with NaN for every score."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def serve(self, examples):
        return {"click": tf.fill(tf.shape(examples), float("nan"))}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="user_id")])
    def serve_raw(self, user_id):
        return {"click": tf.fill(tf.shape(user_id), float("nan"))}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def labels(self, examples):
        return {"click_label": tf.zeros(tf.shape(examples)), "click_weight": tf.ones(tf.shape(examples))}


def test_a_candidate_that_cannot_load_or_gives_nan_fails_the_serving_check_with_one_line(run, first, tmp_path):
    examples = _artifact(run, "ImportExampleGen", "examples")
    broken = tmp_path / "broken"
    shutil.copytree(_artifact(run, "Trainer", "model"), broken)
    (broken / serving_check.SERVING_MODEL_DIR / "saved_model.pb").write_bytes(b"not a SavedModel")
    with pytest.raises(serving_check.CheckFailed,
                       match=r"^a fresh process could not load the model or answer a request: \w+"):
        serving_check.check(run.config, str(broken), examples, str(tmp_path / "out-broken"))
    nan = _NaNModel()
    tf.saved_model.save(nan, str(tmp_path / "nan" / serving_check.SERVING_MODEL_DIR),
                        signatures={"serving_default": nan.serve, "serving_raw": nan.serve_raw,
                                    "transform_features": nan.labels})
    with pytest.raises(serving_check.CheckFailed,
                       match=r"^serving_default gives a non-finite 'click' for 200 of 200 test events$"):
        serving_check.check(run.config, str(tmp_path / "nan"), examples, str(tmp_path / "out-nan"))
