"""The same create_pipeline compiles for Kubeflow Pipelines v2, to a spec the KFP proto parses."""

import json

from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from pipeline.cli import main

COMPONENTS = ["ImportExampleGen", "previous_statistics_resolver", "StatisticsGen", "SchemaGen", "CurateSchema",
              "ExampleValidator", "AnomalyGate", "Transform", "Trainer", "latest_blessed_model_resolver", "Evaluator",
              "Pusher"]


def test_compiles_to_a_pipeline_spec_with_every_component(tmp_path):
    output = tmp_path / "pipeline.json"
    assert main(["compile-kubeflow", "--output", str(output), "--image", "registry.example/mtl:1",
                 "--pipeline-root", "gs://bucket/root", "--serving-dir", "gs://bucket/serving",
                 "--log-root", "gs://bucket/logs"]) == 0
    job = json.loads(output.read_text())
    spec = json_format.ParseDict(job["pipelineSpec"], pipeline_spec_pb2.PipelineSpec(), ignore_unknown_fields=True)
    tasks = spec.root.dag.tasks
    for name in COMPONENTS:
        assert any(task.startswith(name) for task in tasks), name
    assert spec.pipeline_info.name == "recs-multitask"
    text = output.read_text()
    assert "models.preprocessing.preprocessing_fn" in text and "models.training.run_fn" in text
    assert "registry.example/mtl:1" in text and "gs://bucket/logs" in text
    assert any(t.startswith("AnomalyGate") for t in tasks["Transform"].dependent_tasks)
    assert any(t.startswith("previous_statistics_resolver") for t in tasks["StatisticsGen"].dependent_tasks)
    assert "AtomicPusher" in tasks["Pusher"].component_ref.name or "AtomicPusher" in text


def test_span_window_is_refused_with_a_clear_error(tmp_path, capsys):
    output = tmp_path / "pipeline.json"
    assert main(["compile-kubeflow", "--output", str(output), "--train-spans", "3"]) == 2
    assert "data.train_spans > 1" in capsys.readouterr().err
    assert not output.exists()


def test_beam_args_reach_every_beam_component_in_the_spec(tmp_path):
    output = tmp_path / "pipeline.json"
    assert main(["compile-kubeflow", "--output", str(output), "--beam-arg=--runner=DataflowRunner",
                 "--beam-arg=--region=europe-west4"]) == 0
    executors = json.loads(output.read_text())["pipelineSpec"]["deploymentSpec"]["executors"]
    for component in ("ImportExampleGen", "StatisticsGen", "Transform", "Evaluator"):
        args = executors[f"{component}_executor"]["container"]["args"]
        assert args[-2:] == ["--runner=DataflowRunner", "--region=europe-west4"], component
        assert not any(a.startswith("--direct_") for a in args), component  # another runner: no DirectRunner flags


def test_without_a_runner_the_spec_runs_beam_on_every_core_of_the_pod(tmp_path):
    output = tmp_path / "pipeline.json"
    assert main(["compile-kubeflow", "--output", str(output)]) == 0
    args = json.loads(output.read_text())["pipelineSpec"]["deploymentSpec"]["executors"]["Evaluator_executor"]
    assert args["container"]["args"][-2:] == ["--direct_running_mode=multi_processing", "--direct_num_workers=0"]
