"""The `mtl` argument parser: one function per sub-command adds its options; ``build_parser`` binds each to its
handler (``pipeline.cli.main``)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

from config import DEFAULT_CONFIG

DESCRIPTION = "`mtl`: the project's command line (run the pipeline, generate logs, compile for and submit to Kubeflow)."


def build_parser(handlers: dict[str, Callable]) -> argparse.ArgumentParser:
    """The parser of every sub-command; ``handlers`` maps each name (``"schema accept"``, ``"serving list"`` for the
    nested ones) to the function `mtl` calls with the parsed args."""
    parser = argparse.ArgumentParser(prog="mtl", description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, add in (("run", _run), ("runs", _runs), ("report", _report), ("predict", _predict),
                      ("generate-logs", _generate_logs), ("compile-kubeflow", _compile_kubeflow),
                      ("submit-kubeflow", _submit_kubeflow), ("schedule-kubeflow", _schedule_kubeflow)):
        add(commands).set_defaults(handler=handlers[name])
    _schema_accept(_schema(commands)).set_defaults(handler=handlers["schema accept"])
    serving = _serving(commands)
    for name, add in (("list", _serving_list), ("rollback", _serving_rollback), ("promote", _serving_promote)):
        add(serving).set_defaults(handler=handlers[f"serving {name}"])
    return parser


def _with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The config file and the data and Beam overrides that `mtl run` and the Kubeflow commands share."""
    p.add_argument("--config", default=str(DEFAULT_CONFIG), help="pipeline config YAML (default: %(default)s)")
    p.add_argument("--log-root", help="override data.log_root: the folder holding span-N/ folders of logs")
    p.add_argument("--span", help="override data.span: the span this run ingests ('latest' or N)")
    p.add_argument("--train-spans", type=int, help="override data.train_spans: train on the newest K ingested spans")
    p.add_argument("--beam-arg", action="append", default=[], metavar="--FLAG=VALUE",
                   help="a Beam pipeline arg for every Beam component, after the config's beam.args; "
                        "repeatable (e.g. --beam-arg=--runner=DataflowRunner --beam-arg=--region=europe-west4)")
    return p


def _run(commands) -> argparse.ArgumentParser:
    run = _with_config(commands.add_parser(
        "run", help="run the whole pipeline here with LocalDagRunner and print per-head metrics",
        description="Runs ImportExampleGen ... Pusher with LocalDagRunner, then prints per-head TFMA metrics "
                    "(overall and per slice), the blessing verdict and the pushed model's path."))
    run.add_argument("--output-dir", default="outputs", help="pipeline root, MLMD and report (default: %(default)s)")
    run.add_argument("--serving-dir", default="serving_model",
                     help="Pusher writes <serving-dir>/<name>/<version>/ (default: %(default)s)")
    run.add_argument("--force", action="store_true",
                     help="train on the span even if an earlier run in --output-dir already trained on it")
    run.add_argument("--verbose", action="store_true",
                     help="show the libraries' output on the console instead of in <output-dir>/logs/")
    return run


def _reading_runs(p: argparse.ArgumentParser, config_help: str) -> argparse.ArgumentParser:
    """The options of the commands that read recorded runs: their output folder and the config they ran."""
    p.add_argument("--output-dir", default="outputs", help="(default: %(default)s)")
    p.add_argument("--config", default=str(DEFAULT_CONFIG), help=config_help)
    return p


def _runs(commands) -> argparse.ArgumentParser:
    return _reading_runs(commands.add_parser(
        "runs", help="list the recorded runs, newest first",
        description="One row per run recorded in <output-dir>/metadata.db: time, span, each head's key metric, "
                    "blessed, pushed version."), "the config whose heads to show")


def _report(commands) -> argparse.ArgumentParser:
    report = _reading_runs(commands.add_parser(
        "report", help="rebuild the markdown and HTML reports of a recorded run",
        description="Writes <output-dir>/report.md and report.html for RUN (default: the newest; `mtl runs` lists "
                    "them)."), "the config the run used")
    report.add_argument("run", nargs="?", help="a run id from `mtl runs` (default: the newest)")
    return report


def _predict(commands) -> argparse.ArgumentParser:
    predict = commands.add_parser(
        "predict", help="score events with a pushed model, through the JSON or the tf.Example signature",
        description="Prints one JSON object of per-head scores per event. --jsonl: one JSON object of raw feature "
                    "values per line (serving_raw, as TF Serving's REST API receives them); --tfrecord: tf.Examples "
                    "(serving_default; gzip when the name ends in .gz).")
    predict.add_argument("--model", required=True, help="a pushed version folder, e.g. serving_model/<name>/<version>")
    source = predict.add_mutually_exclusive_group(required=True)
    source.add_argument("--jsonl", help="a file of JSON lines of raw features")
    source.add_argument("--tfrecord", help="a TFRecord file of tf.Examples")
    return predict


def _generate_logs(commands) -> argparse.ArgumentParser:
    generate = commands.add_parser(
        "generate-logs", help="write synthetic gzip TFRecord logs in daily spans: impressions or assistant utterances",
        description="Writes <out>/span-N/events-*.tfrecord.gz and the true label probabilities in truth.npz, of the "
                    "recommendation world (impressions) or the customer-service assistant's (utterances).")
    generate.add_argument("--world", choices=("recommendation", "assistant"), default="recommendation",
                          help="which logs: impressions, or utterances to a shop's assistant (default: %(default)s)")
    generate.add_argument("--out", help="output folder (default: data/logs; data/assistant_logs for the assistant)")
    generate.add_argument("--spans", type=int, nargs="+", default=[1], help="span numbers (default: 1)")
    generate.add_argument("--events", type=int,
                          help="events per span (default: 20000; 10000 for the assistant)")
    generate.add_argument("--users", type=int,
                          help="users in the world, drawn with power-law activity (default: 5000; recommendation only)")
    generate.add_argument("--items", type=int,
                          help="items in the world, drawn with power-law popularity (default: 2000; recommendation "
                               "only)")
    generate.add_argument("--seed", type=int, default=0, help="world and event seed (default: %(default)s)")
    generate.add_argument("--minus-one-fraction", type=float,
                          help="share of missing labels written as -1 instead of absent (default: 0; recommendation "
                               "only)")
    return generate


def _schema(commands):
    schema = commands.add_parser(
        "schema", help="the schema that new spans are judged against",
        description="The first run in an output folder accepts the schema inferred from its span; later spans are "
                    "judged against it (plus the config's label domains and drift thresholds).")
    return schema.add_subparsers(dest="schema_command", required=True)


def _schema_accept(schema_commands) -> argparse.ArgumentParser:
    accept = schema_commands.add_parser(
        "accept", help="accept the schema inferred from the newest run's span (after a real change of the data)")
    accept.add_argument("--output-dir", default="outputs", help="the runs' output folder (default: %(default)s)")
    return accept


def _serving(commands):
    serving = commands.add_parser(
        "serving", help="the pushed versions and the TF Serving labels (stable, canary) that point at them",
        description="<serving-dir>/<name>/models.config tells TF Serving (--model_config_file) which versions to "
                    "load and which the labels stable and canary name; these commands show and move the labels, "
                    "never deleting a version.")
    return serving.add_subparsers(dest="serving_command", required=True)


def _with_serving_model(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of the serving commands: where the versions are and which model's they are."""
    p.add_argument("--serving-dir", default="serving_model",
                   help="the folder holding <name>/<version>/, as for `mtl run` (default: %(default)s)")
    p.add_argument("--config", default=str(DEFAULT_CONFIG),
                   help="the pipeline config; the model name is its name (default: %(default)s)")
    p.add_argument("--model-name", help="the model's name instead of the config's")
    return p


def _serving_list(serving_commands) -> argparse.ArgumentParser:
    return _with_serving_model(serving_commands.add_parser(
        "list", help="one row per pushed version, newest first",
        description="One row per version: pushed at, the run that produced it, each head's key metric, the labels "
                    "that point at it."))


def _serving_rollback(serving_commands) -> argparse.ArgumentParser:
    rollback = _with_serving_model(serving_commands.add_parser(
        "rollback", help="point the stable label at an older version (nothing is deleted)",
        description="Moves stable to VERSION; the next push gets a new, higher version and becomes stable."))
    rollback.add_argument("version", nargs="?", type=int, metavar="VERSION",
                          help="the version to serve as stable (default: the newest one older than stable)")
    return rollback


def _serving_promote(serving_commands) -> argparse.ArgumentParser:
    return _with_serving_model(serving_commands.add_parser(
        "promote", help="make the canary version stable and remove the canary label"))


def _with_kubeflow_spec(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of the spec compile-kubeflow writes (and submit- and schedule-kubeflow upload)."""
    _with_config(p)
    p.add_argument("--output", default="outputs/kubeflow_pipeline.json", help="(default: %(default)s)")
    p.add_argument("--image", default="mtl-pipeline:latest", help="container image (default: %(default)s)")
    p.add_argument("--pipeline-root", default="gs://YOUR_BUCKET/pipeline_root", help="(default: %(default)s)")
    p.add_argument("--serving-dir", default="gs://YOUR_BUCKET/serving_model", help="(default: %(default)s)")
    return p


def _with_kubeflow_server(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The spec's options, and the KFP server, its auth and the run's experiment and parameters."""
    _with_kubeflow_spec(p)
    p.add_argument("--host", required=True,
                   help="the Kubeflow Pipelines URL, e.g. http://localhost:8080 for `kubectl port-forward -n "
                        "kubeflow svc/ml-pipeline-ui 8080:80`, or https://KUBEFLOW/pipeline")
    p.add_argument("--namespace", help="your profile's namespace, in a multi-user deployment")
    p.add_argument("--existing-token", default=os.environ.get("KFP_EXISTING_TOKEN"),
                   help="a bearer token for the API (default: $KFP_EXISTING_TOKEN, as for the kfp CLI)")
    p.add_argument("--cookies", help="cookies for the API, e.g. 'authservice_session=...' behind Dex")
    p.add_argument("--experiment", help="the KFP experiment, created if absent (default: the config's name)")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="a runtime parameter of the run; repeatable; VALUE is read as JSON when it can be "
                        "(3, 0.5, true), else as a string")
    return p


def _compile_kubeflow(commands) -> argparse.ArgumentParser:
    return _with_kubeflow_spec(commands.add_parser(
        "compile-kubeflow", help="compile the same pipeline to a Kubeflow Pipelines v2 JSON spec",
        description="Compiles create_pipeline with KubeflowV2DagRunner; the image must hold this project "
                    "(see Dockerfile) and the paths must be reachable from the cluster."))


def _submit_kubeflow(commands) -> argparse.ArgumentParser:
    return _with_kubeflow_server(commands.add_parser(
        "submit-kubeflow", help="compile, upload and start one run on a Kubeflow Pipelines server",
        description="Compiles as compile-kubeflow does, uploads the spec to --host (a new pipeline, or a new "
                    "version of the pipeline of that name) and starts one run in --experiment."))


def _schedule_kubeflow(commands) -> argparse.ArgumentParser:
    schedule = _with_kubeflow_server(commands.add_parser(
        "schedule-kubeflow", help="compile, upload and create a recurring run on a Kubeflow Pipelines server",
        description="As submit-kubeflow, but creates an enabled recurring run on --cron: at most one run at a "
                    "time, and no catch-up of the times the schedule missed while it was off."))
    schedule.add_argument("--cron", required=True,
                          help="when to run, in the KFP scheduler's time zone (UTC unless the cluster sets "
                               "CRON_SCHEDULE_TIMEZONE): five crontab fields (minute hour day-of-month month "
                               "day-of-week, e.g. '0 3 * * *' for 03:00 every day), sent to KFP as its six fields "
                               "with second 0 first ('0 0 3 * * *'); six fields are sent as they are")
    return schedule
