"""Bad logs, paths and settings stop `mtl run` in seconds, before any component starts, with exit code 2 and
one line that names the culprit; nothing but the run's log is written to the output folder, nothing to serving."""

import dataclasses
import gzip
import shutil

import pytest
import tensorflow as tf
from helpers import GOOD_LOG_EVENTS

from config import DEFAULT_CONFIG, PipelineConfig, UserError
from data.writer import EVENTS_FILE
from pipeline.cli.main import main
from pipeline.guards.preflight import check_logs


def _examples(good_logs) -> list[tf.train.Example]:
    path = str(good_logs / "span-1" / EVENTS_FILE)
    return [tf.train.Example.FromString(r.numpy()) for r in tf.data.TFRecordDataset(path, compression_type="GZIP")]


def _write(root, examples, span=1):
    span_dir = root / f"span-{span}"
    span_dir.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(span_dir / EVENTS_FILE), "GZIP") as writer:
        for example in examples:
            writer.write(example.SerializeToString())
    return span_dir / EVENTS_FILE


def _run(tmp_path, capsys, *args):
    """`mtl run` on the given arguments; returns (exit code, stderr lines)."""
    code = main(["run", "--output-dir", str(tmp_path / "out"), "--serving-dir", str(tmp_path / "serving"), *args])
    return code, capsys.readouterr().err.strip().splitlines()


def _assert_stopped(tmp_path, code, lines, *fragments):
    """Exit code 2, one line naming every fragment; no pipeline started (only the run's log may exist)."""
    assert code == 2
    assert len(lines) == 1, lines
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    written = {p.name for p in (tmp_path / "out").iterdir()} if (tmp_path / "out").exists() else set()
    assert written <= {"logs"} and not (tmp_path / "serving").exists()


def _mutated(good_logs, tmp_path, mutate, every=1):
    """The good span with ``mutate(example)`` applied to every ``every``-th event, written under tmp_path/logs."""
    examples = _examples(good_logs)
    for example in examples[::every]:
        mutate(example)
    path = _write(tmp_path / "logs", examples)
    return str(tmp_path / "logs"), str(path)


def test_good_logs_pass_and_say_what_will_be_ingested(good_logs):
    config = PipelineConfig.from_yaml(DEFAULT_CONFIG)
    ingestion = check_logs(config.replace(data=dataclasses.replace(config.data, log_root=str(good_logs))))
    assert ingestion.span == 1
    assert ingestion.events == {str(good_logs / "span-1" / EVENTS_FILE): GOOD_LOG_EVENTS}


def test_presplit_logs_need_train_eval_and_test_folders(good_logs, tmp_path):
    examples = _examples(good_logs)
    for split, part in (("train", examples[:200]), ("eval", examples[200:])):
        folder = tmp_path / "logs" / "span-1" / split
        folder.mkdir(parents=True)
        with tf.io.TFRecordWriter(str(folder / EVENTS_FILE), "GZIP") as writer:
            for example in part:
                writer.write(example.SerializeToString())
    config = PipelineConfig.from_yaml(DEFAULT_CONFIG)
    config = config.replace(data=dataclasses.replace(config.data, log_root=str(tmp_path / "logs"), presplit=True))
    with pytest.raises(UserError) as refused:
        check_logs(config)
    assert str(refused.value) == (
        f"{tmp_path / 'logs' / 'span-1'}: no files match 'test/*'; presplit logs need train/, eval/ (the Trainer's "
        "validation) and test/ (the Evaluator's) folders: move part of eval/ into test/, or set data.presplit: "
        "false to split every span by hash")
    (tmp_path / "logs" / "span-1" / "eval").rename(tmp_path / "logs" / "span-1" / "test")
    shutil.copytree(tmp_path / "logs" / "span-1" / "test", tmp_path / "logs" / "span-1" / "eval")
    assert sorted(check_logs(config).events.values()) == [100, 100, 200]


def test_missing_log_root(tmp_path, capsys):
    code, lines = _run(tmp_path, capsys, "--log-root", str(tmp_path / "nowhere"))
    _assert_stopped(tmp_path, code, lines, f"data.log_root {tmp_path / 'nowhere'}: no such folder")


def test_empty_latest_span_is_not_skipped_for_an_older_one(good_logs, tmp_path, capsys):
    shutil.copytree(good_logs, tmp_path / "logs")
    (tmp_path / "logs" / "span-2").mkdir()
    code, lines = _run(tmp_path, capsys, "--log-root", str(tmp_path / "logs"))
    _assert_stopped(tmp_path, code, lines, f"{tmp_path / 'logs' / 'span-2'} (the latest span): no files match")


def test_a_span_that_does_not_exist(good_logs, tmp_path, capsys):
    code, lines = _run(tmp_path, capsys, "--log-root", str(good_logs), "--span", "5")
    _assert_stopped(tmp_path, code, lines, "data.span 5:", "span-5 does not exist (spans there: 1)")


@pytest.mark.parametrize("damage, reason", [
    (lambda data: data[: len(data) // 2], "truncated or corrupt: Compressed file ended before the end-of-stream"),
    (lambda data: data[:-8], "truncated or corrupt"),  # the gzip trailer cut off: TensorFlow alone reads it all
    (lambda data: gzip.compress(gzip.decompress(data)[:-10]), "its last record is cut short"),
    (lambda data: gzip.decompress(data), "not gzip-compressed"),
    (lambda data: gzip.compress(b""), "holds no events"),
])
def test_unreadable_files_are_named(good_logs, tmp_path, capsys, damage, reason):
    (tmp_path / "logs" / "span-1").mkdir(parents=True)
    path = tmp_path / "logs" / "span-1" / EVENTS_FILE
    path.write_bytes(damage((good_logs / "span-1" / EVENTS_FILE).read_bytes()))
    code, lines = _run(tmp_path, capsys, "--log-root", str(tmp_path / "logs"))
    _assert_stopped(tmp_path, code, lines, str(path), reason)


def _set_float(name, value):
    def mutate(example):
        example.features.feature[name].float_list.value[:] = [value]
    return mutate


def _set_int(name, value):
    def mutate(example):
        example.features.feature[name].int64_list.value[:] = [value]
    return mutate


def _as_bytes(name):
    def mutate(example):
        value = example.features.feature[name].float_list.value[0]
        example.features.feature[name].bytes_list.value[:] = [str(value).encode()]
    return mutate


@pytest.mark.parametrize("mutate, every, fragments", [
    (lambda e: e.features.feature.pop("user_activity"), 1, ["no event has the feature 'user_activity'"]),
    (_as_bytes("price"), 1, ["feature 'price' (kind log) is logged as text"]),
    (_set_float("price", float("inf")), 7, ["feature 'price' (kind log) has 43 non-finite value(s)"]),
    (_set_float("watch_time", float("nan")), 7,
     ["label 'watch_time' of task 'watch_time' (regression) has 43 non-finite"]),
    (_set_int("click", 2), 50, ["label 'click' of task 'click' (binary) has value 2 (6 such)", "[0, 1]"]),
    (_set_int("interest", 7), 50, ["label 'interest' of task 'interest' (multiclass) has value 7", "[0, 4]"]),
    (lambda e: e.features.feature.pop("conversion", None), 1,
     ["no event has the label 'conversion' of task 'conversion' (binary)"]),
    (_set_int("conversion", -1), 1, ["label 'conversion' of task 'conversion' (binary) is the missing value -1 in "
                                     "every event; its head could neither train nor be judged"]),
])
def test_bad_values_name_file_feature_and_value(good_logs, tmp_path, capsys, mutate, every, fragments):
    log_root, path = _mutated(good_logs, tmp_path, mutate, every)
    code, lines = _run(tmp_path, capsys, "--log-root", log_root)
    _assert_stopped(tmp_path, code, lines, path, *fragments)


def test_serving_dir_that_is_not_a_folder(good_logs, tmp_path, capsys):
    (tmp_path / "a_file").write_text("")
    code = main(["run", "--log-root", str(good_logs), "--output-dir", str(tmp_path / "out"),
                 "--serving-dir", str(tmp_path / "a_file" / "models")])
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and f"{tmp_path / 'a_file'} is not a writable folder" in line
    assert not (tmp_path / "out" / "pipeline_root").exists()


@pytest.mark.parametrize("text, fragment", [
    ("name: [unclosed\n", "not valid YAML at line 2"),
    (open(DEFAULT_CONFIG).read().replace("batch_size: 512", 'batch_size: "big"'),
     "config.model.batch_size: expected an integer, got 'big'"),
])
def test_bad_config_file_is_one_line(good_logs, tmp_path, capsys, text, fragment):
    (tmp_path / "my.yaml").write_text(text)
    code, lines = _run(tmp_path, capsys, "--config", str(tmp_path / "my.yaml"), "--log-root", str(good_logs))
    _assert_stopped(tmp_path, code, lines, str(tmp_path / "my.yaml"), fragment)
