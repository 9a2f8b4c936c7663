"""What run_local hands every Beam component besides the config's args: what Beam workers install."""

import glob
import os
import tempfile

from tfx.utils import dependency_utils

from config import DEFAULT_CONFIG, PipelineConfig
from pipeline.runners import PROJECT_SETUP_FILE, with_project_package


def test_the_project_package_spares_tfx_building_an_sdist_of_itself():
    args = with_project_package(PipelineConfig.from_yaml(DEFAULT_CONFIG).beam_pipeline_args(span_events=1000),
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
