"""The same create_pipeline compiles for Kubeflow Pipelines v2, to a spec the KFP proto parses."""

import json
import os
from pathlib import Path

import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from config import DEFAULT_CONFIG
from pipeline.cli.main import main
from pipeline.runners import IMAGE_SETUP_FILE

COMPONENTS = ["ImportExampleGen", "previous_statistics_resolver", "StatisticsGen", "SchemaGen", "CurateSchema",
              "ExampleValidator", "AnomalyGate", "Transform", "Trainer", "latest_blessed_model_resolver", "Evaluator",
              "BlessingGate", "ServingCheck", "Pusher"]


def _constant(task: dict, parameter: str, kind: str):
    """The constant value of a compiled task's input parameter (``kind``: stringValue, intValue), whichever way the
    KFP version writes it."""
    value = task["inputs"]["parameters"][parameter]["runtimeValue"]
    constant = value.get("constantValue", value.get("constant"))
    return constant[kind] if isinstance(constant, dict) else constant


def test_compiles_to_a_pipeline_spec_with_every_component(tmp_path):
    output = tmp_path / "pipeline.json"
    assert main(["compile-kubeflow", "--output", str(output), "--image", "registry.example/mtl:1",
                 "--pipeline-root", "gs://bucket/root", "--serving-dir", "gs://bucket/serving",
                 "--log-root", "gs://bucket/logs"]) == 0
    job = json.loads(output.read_text())
    spec = json_format.ParseDict(job["pipelineSpec"], pipeline_spec_pb2.PipelineSpec())  # strict: no unknown field
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
    assert any(t.startswith("ServingCheck") for t in tasks["Pusher"].dependent_tasks)
    assert any(t.startswith("BlessingGate") for t in tasks["ServingCheck"].dependent_tasks)
    assert any(t.startswith("Evaluator") for t in tasks["BlessingGate"].dependent_tasks)
    evaluator = job["pipelineSpec"]["root"]["dag"]["tasks"]["Evaluator"]
    assert json.loads(_constant(evaluator, "example_splits", "stringValue")) == ["test"]  # the test split alone


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
        assert args[-3:] == ["--runner=DataflowRunner", "--region=europe-west4", f"--setup_file={IMAGE_SETUP_FILE}"], \
            component  # Dataflow's workers install this project (its head metrics) from the image's setup.py
        assert not any(a.startswith("--direct_") for a in args), component  # another runner: no DirectRunner flags


def test_without_a_runner_the_spec_runs_beam_on_every_core_of_the_pod(tmp_path):
    output = tmp_path / "pipeline.json"
    assert main(["compile-kubeflow", "--output", str(output)]) == 0
    executors = json.loads(output.read_text())["pipelineSpec"]["deploymentSpec"]["executors"]
    for component in ("ImportExampleGen", "StatisticsGen", "Transform", "Evaluator"):
        assert executors[f"{component}_executor"]["container"]["args"][-3:] == [
            "--direct_running_mode=multi_processing", "--direct_num_workers=0",
            f"--setup_file={IMAGE_SETUP_FILE}"], component  # the image's project: no pod builds an sdist of TFX


def test_the_image_holds_the_setup_file_the_spec_names_unless_the_user_names_another(tmp_path):
    dockerfile = (Path(__file__).parents[1] / "Dockerfile").read_text()
    project_dir = os.path.dirname(IMAGE_SETUP_FILE)
    assert f"WORKDIR {project_dir}" in dockerfile and f"COPY . {project_dir}" in dockerfile
    output = tmp_path / "pipeline.json"
    assert main(["compile-kubeflow", "--output", str(output), "--beam-arg=--extra_package=gs://b/mtl.tar.gz"]) == 0
    args = json.loads(output.read_text())["pipelineSpec"]["deploymentSpec"]["executors"]["Evaluator_executor"]
    assert not any(a.startswith("--setup_file") for a in args["container"]["args"])  # the user's choice stands


def test_vertex_training_runs_the_trainer_as_a_multi_worker_custom_job(tmp_path):
    config = yaml.safe_load(DEFAULT_CONFIG.read_text())
    config["model"]["distribution"] = "multi_worker"
    config["vertex_training"] = {"project": "my-project", "region": "europe-west4", "workers": 3,
                                 "image": "europe-docker.pkg.dev/my-project/mtl/mtl-pipeline:1",
                                 "machine_type": "n1-highmem-8"}
    (tmp_path / "vertex.yaml").write_text(yaml.safe_dump(config))
    output = tmp_path / "pipeline.json"
    assert main(["compile-kubeflow", "--config", str(tmp_path / "vertex.yaml"), "--output", str(output)]) == 0
    spec = json.loads(output.read_text())["pipelineSpec"]
    executor = spec["deploymentSpec"]["executors"]["Trainer_executor"]["container"]
    assert "google_cloud_ai_platform.trainer.executor" in " ".join(executor["args"])
    constant = spec["root"]["dag"]["tasks"]["Trainer"]["inputs"]["parameters"]["custom_config"]["runtimeValue"]
    custom_config = json.loads(constant["constantValue"]["stringValue"])
    assert custom_config["ai_platform_enable_vertex"] is True
    assert custom_config["ai_platform_vertex_region"] == "europe-west4"
    training = custom_config["ai_platform_training_args"]
    assert training["project"] == "my-project"
    pools = training["job_spec"]["worker_pool_specs"]  # a Vertex CustomJob, as TFX's runner takes it
    assert [pool["replica_count"] for pool in pools] == [1, 2]  # the chief, then the other two workers
    assert {pool["machine_spec"]["machine_type"] for pool in pools} == {"n1-highmem-8"}
    assert {pool["container_spec"]["image_uri"] for pool in pools} == {config["vertex_training"]["image"]}
    assert custom_config["pipeline"]["model"]["distribution"] == "multi_worker"  # run_fn's config rides along


def test_vertex_training_with_several_workers_needs_the_multi_worker_strategy(tmp_path, capsys):
    config = yaml.safe_load(DEFAULT_CONFIG.read_text())
    config["vertex_training"] = {"project": "p", "region": "r", "image": "i", "workers": 2}
    (tmp_path / "vertex.yaml").write_text(yaml.safe_dump(config))
    assert main(["compile-kubeflow", "--config", str(tmp_path / "vertex.yaml"),
                 "--output", str(tmp_path / "pipeline.json")]) == 2
    assert "set model.distribution: multi_worker" in capsys.readouterr().err


def test_the_assistant_config_compiles_with_its_text_feature_and_heads(tmp_path):
    output = tmp_path / "assistant.json"
    assert main(["compile-kubeflow", "--config", str(DEFAULT_CONFIG.parent / "assistant.yaml"), "--output",
                 str(output), "--image", "registry.example/mtl:1", "--pipeline-root", "gs://bucket/root",
                 "--serving-dir", "gs://bucket/serving", "--log-root", "gs://bucket/assistant"]) == 0
    job = json.loads(output.read_text())
    spec = json_format.ParseDict(job["pipelineSpec"], pipeline_spec_pb2.PipelineSpec())
    assert spec.pipeline_info.name == "assistant-multitask"
    assert all(any(task.startswith(name) for task in spec.root.dag.tasks) for name in COMPONENTS)
    text = output.read_text()
    assert "HeadSpanF1" in text and "sequence_labeling" in text and "label_vocabulary" in text


def _statistics_options(spec_file):
    """The StatisticsGen task's StatsOptions in a compiled spec, as TFDV reads them back (TFDV's defaults when the
    spec names none)."""
    import tensorflow_data_validation as tfdv

    task = json.loads(spec_file.read_text())["pipelineSpec"]["root"]["dag"]["tasks"]["StatisticsGen"]
    if "stats_options_json" not in task["inputs"]["parameters"]:
        return tfdv.StatsOptions()
    return tfdv.StatsOptions.from_json(_constant(task, "stats_options_json", "stringValue"))


def test_statistics_sketch_value_counts_in_the_default_config_and_count_exactly_when_asked(tmp_path):
    default, exact = tmp_path / "default.json", tmp_path / "exact.json"
    config = yaml.safe_load(DEFAULT_CONFIG.read_text())
    config["validation"]["value_counts"] = "exact"
    (tmp_path / "exact.yaml").write_text(yaml.safe_dump(config))
    assert main(["compile-kubeflow", "--output", str(default)]) == 0
    assert main(["compile-kubeflow", "--config", str(tmp_path / "exact.yaml"), "--output", str(exact)]) == 0
    assert _statistics_options(default).use_sketch_based_topk_uniques
    assert not _statistics_options(exact).use_sketch_based_topk_uniques


def _transform_outputs(spec_file) -> tuple[bool, list[str]]:
    """The Transform task's disable_statistics parameter and its component's output artifacts in a compiled spec."""
    spec = json.loads(spec_file.read_text())["pipelineSpec"]
    task = spec["root"]["dag"]["tasks"]["Transform"]
    disabled = bool(int(_constant(task, "disable_statistics", "intValue")))
    return disabled, sorted(spec["components"][task["componentRef"]["name"]]["outputDefinitions"]["artifacts"])


def test_transform_computes_statistics_only_when_the_config_asks(tmp_path):
    default, asked = tmp_path / "default.json", tmp_path / "asked.json"
    config = yaml.safe_load(DEFAULT_CONFIG.read_text())
    config["validation"]["transform_statistics"] = True
    (tmp_path / "asked.yaml").write_text(yaml.safe_dump(config))
    assert main(["compile-kubeflow", "--output", str(default)]) == 0
    assert main(["compile-kubeflow", "--config", str(tmp_path / "asked.yaml"), "--output", str(asked)]) == 0
    disabled, outputs = _transform_outputs(default)
    assert disabled and not any("stats" in name or "anomalies" in name for name in outputs)
    disabled, outputs = _transform_outputs(asked)
    assert not disabled
    assert {"pre_transform_stats", "post_transform_stats", "post_transform_anomalies"} <= set(outputs)
