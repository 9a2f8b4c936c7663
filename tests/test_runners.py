"""What run_local and compile_kubeflow hand every Beam component: the DirectRunner's mode by the span's size, the
config's args, and what Beam workers install."""

import glob
import os
import tempfile

from tfx.utils import dependency_utils

from config import DEFAULT_CONFIG, PipelineConfig
from pipeline.runners import PROJECT_SETUP_FILE, beam_pipeline_args, with_project_package


def test_the_project_package_spares_tfx_building_an_sdist_of_itself():
    args = with_project_package(beam_pipeline_args(PipelineConfig.from_yaml(DEFAULT_CONFIG), span_events=1000),
                                PROJECT_SETUP_FILE)
    assert args[-1] == f"--setup_file={PROJECT_SETUP_FILE}" and os.path.isfile(PROJECT_SETUP_FILE)
    before = set(glob.glob(os.path.join(tempfile.gettempdir(), "*", "build", "tfx")))
    assert dependency_utils.make_beam_dependency_flags(args) == args  # what every TFX Beam executor calls
    assert set(glob.glob(os.path.join(tempfile.gettempdir(), "*", "build", "tfx"))) == before


def test_args_that_name_what_workers_install_are_kept():
    for given in (["--extra_package=/dist/mine.tar.gz"], ["--runner=FlinkRunner", "--setup_file=/src/setup.py"],
                  ["--sdk_container_image=registry/beam:1"], ["--requirements_file=req.txt"]):
        assert with_project_package(given, PROJECT_SETUP_FILE) == given
    assert with_project_package(["--runner=DirectRunner"], None) == ["--runner=DirectRunner"]  # an installed wheel


def test_beam_args_by_span_size_by_default_and_give_way_to_another_runner():
    default_dict = PipelineConfig.from_yaml(DEFAULT_CONFIG).to_dict()
    config = PipelineConfig.from_dict(default_dict)
    every_core = ["--direct_running_mode=multi_processing", "--direct_num_workers=0"]
    in_process = ["--direct_running_mode=in_memory", "--direct_num_workers=1"]
    assert beam_pipeline_args(config) == every_core  # size unknown (remote logs, Kubeflow)
    assert beam_pipeline_args(config, span_events=799_999) == in_process
    assert beam_pipeline_args(config, span_events=800_000) == every_core
    default_dict["beam"] = {"workers": 2, "args": ["--direct_runner_bundle_repeat=0"]}
    assert beam_pipeline_args(PipelineConfig.from_dict(default_dict)) == [
        "--direct_running_mode=multi_processing", "--direct_num_workers=2", "--direct_runner_bundle_repeat=0"]
    assert beam_pipeline_args(PipelineConfig.from_dict(default_dict), span_events=1000) == [
        "--direct_running_mode=multi_processing", "--direct_num_workers=2", "--direct_runner_bundle_repeat=0"]
    default_dict["beam"] = {"workers": 1}
    assert beam_pipeline_args(PipelineConfig.from_dict(default_dict), span_events=10 ** 9) == in_process
    default_dict["beam"] = {"args": ["--runner=FlinkRunner", "--flink_master=localhost:8081"]}
    assert beam_pipeline_args(PipelineConfig.from_dict(default_dict)) == ["--runner=FlinkRunner",
                                                                           "--flink_master=localhost:8081"]
