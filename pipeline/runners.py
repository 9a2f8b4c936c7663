"""The two ways to execute create_pipeline: in this process with LocalDagRunner, or compiled for Kubeflow."""

import os

from apache_beam.options.pipeline_options import PipelineOptions
from tfx import v1 as tfx

from config import ConfigError, PipelineConfig
from pipeline.definition import create_pipeline
from pipeline.guards.output_lock import exclusive_output
from pipeline.guards.preflight import Ingestion, check_run
from pipeline.guards.retrain import check_not_trained
from pipeline.guards.schema_store import accept_latest_schema, accepted_schema_path
from pipeline.metadata import fail_stale_executions, run_ids, store_path

PROJECT_SETUP_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "setup.py")
IMAGE_SETUP_FILE = "/pipeline/setup.py"  # where the Dockerfile puts this project in the image Kubeflow runs
# Where Beam's worker processes start to pay on the DirectRunner: each costs ~12 s of start-up per component and
# every element moves between processes, so on 2 cores they only win from about this many events a span
# (benchmarks/results/pipeline-scaling.md).
PROCESSES_FROM_EVENTS = 800_000
_WORKER_DEPENDENCY_OPTIONS = ("extra_packages", "setup_file", "requirements_file", "sdk_container_image",
                              "worker_harness_container_image")


def beam_pipeline_args(config: PipelineConfig, span_events: int | None = None) -> list[str]:
    """The Beam pipeline args of every Beam component: ``beam.args``, after DirectRunner defaults unless the args
    name another runner: in-process for ``beam.workers`` 1, or automatically (``beam.workers`` 0) for a span of fewer
    than PROCESSES_FROM_EVENTS events (``span_events``, when the caller counted them), else that many worker
    processes (0: one per core, also when the span's size is unknown, as on Kubeflow)."""
    beam = config.beam
    if any(arg.startswith("--runner=") and arg != "--runner=DirectRunner" for arg in beam.args):
        return list(beam.args)
    small = span_events is not None and span_events < PROCESSES_FROM_EVENTS
    if beam.workers == 1 or (beam.workers == 0 and small):
        return ["--direct_running_mode=in_memory", "--direct_num_workers=1", *beam.args]
    return ["--direct_running_mode=multi_processing", f"--direct_num_workers={beam.workers}", *beam.args]


def with_project_package(beam_args: list[str], setup_file: str | None) -> list[str]:
    """``beam_args`` plus ``--setup_file`` naming ``setup_file``, this project's setup.py where the Beam components
    run (none: ``beam_args`` as they are), unless they already say what Beam workers install. Without one of those
    options every TFX Beam executor builds an sdist of TFX itself (about 1 s and 42 MB, left in the temp folder) that
    the DirectRunner never reads and a remote runner could not use, since it lacks this project's code
    (models.evaluation.head_metrics). Called by run_local (this checkout's setup.py) and compile_kubeflow (the
    image's)."""
    options = PipelineOptions(flags=beam_args).get_all_options()
    if setup_file is None or any(options.get(name) for name in _WORKER_DEPENDENCY_OPTIONS):
        return list(beam_args)
    return [*beam_args, f"--setup_file={setup_file}"]


def run_local(config: PipelineConfig, *, output_dir: str, serving_dir: str,
              ingestion: Ingestion | None = None, force: bool = False) -> tuple[str, str]:
    """Runs every component here, after the preflight checks (PreflightError names what to fix; ``ingestion``
    is their result when the caller ran them, as `mtl run` does before importing TFX), holding the output folder's
    lock (OutputInUse if another run holds it), and refuses a span that an earlier run in the folder trained on
    (SpanAlreadyTrained) unless ``force``; returns (the MLMD sqlite path that records the run, the run's id),
    so that the caller reports its own run even if another starts right after. New spans are judged against the
    folder's accepted schema; the first run that passes validation accepts the schema inferred from its span.
    Beam runs in-process or in worker processes by the span's size (beam_pipeline_args). Called by
    `mtl run`, the benchmarks and the end-to-end tests."""
    if config.vertex_training:
        raise ConfigError("vertex_training runs the Trainer as a Vertex AI custom job, from a pipeline compiled for "
                          "Kubeflow (compile-, submit- or schedule-kubeflow); remove it to train here")
    ingestion = ingestion or check_run(config, serving_dir)
    output_dir = os.path.abspath(output_dir)
    metadata_path = store_path(output_dir)
    accepted = accepted_schema_path(output_dir)
    with exclusive_output(output_dir):
        fail_stale_executions(metadata_path)
        if not force:
            check_not_trained(metadata_path, config.data.log_root, ingestion.span)
        pipeline = create_pipeline(
            config,
            pipeline_root=os.path.join(output_dir, "pipeline_root"),
            serving_dir=serving_dir,
            accepted_schema=accepted if os.path.exists(accepted) else None,
            metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(metadata_path),
            beam_pipeline_args=with_project_package(  # no setup.py: an installed wheel, nothing to name
                beam_pipeline_args(config, ingestion.total_events),
                PROJECT_SETUP_FILE if os.path.exists(PROJECT_SETUP_FILE) else None))
        tfx.orchestration.LocalDagRunner().run(pipeline)
        if not config.data.schema_path and not os.path.exists(accepted):
            accept_latest_schema(output_dir)
        run_id = run_ids(metadata_path)[0]  # the newest run, read while no other run can start
    return metadata_path, run_id


def compile_kubeflow(config: PipelineConfig, *, output_file: str, image: str, pipeline_root: str,
                     serving_dir: str) -> str:
    """Writes the Kubeflow Pipelines (v2) JSON spec; user code runs from ``image`` by module path."""
    if config.data.train_spans > 1:
        raise ConfigError("data.train_spans > 1 needs a span-range resolver, which KubeflowV2DagRunner cannot compile "
                          "(it supports only the latest-artifact and latest-blessed-model resolvers): "
                          "use train_spans: 1 for Kubeflow")
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(default_image=image),
        output_dir=os.path.dirname(os.path.abspath(output_file)),
        output_filename=os.path.basename(output_file))
    runner.run(create_pipeline(config, pipeline_root=pipeline_root, serving_dir=serving_dir,
                               beam_pipeline_args=with_project_package(beam_pipeline_args(config),
                                                                       IMAGE_SETUP_FILE)))
    return os.path.abspath(output_file)
