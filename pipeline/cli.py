"""`mtl`: the project's command line (run the pipeline, generate logs, compile for Kubeflow)."""

import argparse
import dataclasses
import gc
import os
import sys

from config import DEFAULT_CONFIG, PipelineConfig, UserError


def _config(args) -> PipelineConfig:
    """The config file named by ``--config``, with the data overrides given on the command line."""
    config = PipelineConfig.from_yaml(args.config)
    overrides = {"log_root": args.log_root, "span": args.span, "train_spans": args.train_spans}
    overrides = {key: value for key, value in overrides.items() if value is not None}
    return config.replace(data=dataclasses.replace(config.data, **overrides)) if overrides else config


def _run(args) -> int:
    """`mtl run`: runs the pipeline with LocalDagRunner, writes and prints the report; returns the exit code."""
    from pipeline.limits import head_limits
    from pipeline.report import format_report, load_run_report
    from pipeline.runners import run_local
    from pipeline.schema_store import accepted_schema_path

    config = _config(args)
    report = load_run_report(run_local(config, output_dir=args.output_dir, serving_dir=args.serving_dir))
    text = format_report(report, head_limits(report, config))
    report_path = os.path.join(args.output_dir, "report.md")
    with open(report_path, "w") as f:
        f.write(f"# {config.name}: per-head TFMA metrics\n{text}\n")
    print(text)
    print(f"Schema: {config.data.schema_path or accepted_schema_path(args.output_dir)} (new spans are judged "
          "against it; `mtl schema accept` takes the newest span's)")
    print(f"Report: {os.path.abspath(report_path)}")
    return 0


def _schema_accept(args) -> int:
    """`mtl schema accept`: makes the newest run's inferred schema the accepted one; prints its path."""
    from pipeline.schema_store import accept_latest_schema

    print(f"accepted: {accept_latest_schema(args.output_dir)}")
    return 0


def _generate_logs(args) -> int:
    """`mtl generate-logs`: writes the synthetic spans and prints their folders; returns the exit code."""
    from data.world import LogSpec
    from data.writer import generate_logs

    spec = LogSpec(num_events=args.events, seed=args.seed, minus_one_fraction=args.minus_one_fraction)
    for path in generate_logs(spec, args.out, args.spans):
        print(path)
    return 0


def _compile_kubeflow(args) -> int:
    """`mtl compile-kubeflow`: writes the KFP v2 JSON spec and prints its path; returns the exit code."""
    from pipeline.runners import compile_kubeflow

    path = compile_kubeflow(_config(args), output_file=args.output, image=args.image,
                            pipeline_root=args.pipeline_root, serving_dir=args.serving_dir)
    print(path)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The `mtl` argument parser; each sub-command's ``handler`` is one of the functions above."""
    parser = argparse.ArgumentParser(prog="mtl", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    def with_config(p):
        p.add_argument("--config", default=str(DEFAULT_CONFIG), help="pipeline config YAML (default: %(default)s)")
        p.add_argument("--log-root", help="override data.log_root: the folder holding span-N/ folders of logs")
        p.add_argument("--span", help="override data.span: the span this run ingests ('latest' or N)")
        p.add_argument("--train-spans", type=int,
                       help="override data.train_spans: train on the newest K ingested spans")
        return p

    run = with_config(commands.add_parser(
        "run", help="run the whole pipeline here with LocalDagRunner and print per-head metrics",
        description="Runs ImportExampleGen ... Pusher with LocalDagRunner, then prints per-head TFMA metrics "
                    "(overall and per slice), the blessing verdict and the pushed model's path."))
    run.add_argument("--output-dir", default="outputs", help="pipeline root, MLMD and report (default: %(default)s)")
    run.add_argument("--serving-dir", default="serving_model",
                     help="Pusher writes <serving-dir>/<name>/<version>/ (default: %(default)s)")
    run.set_defaults(handler=_run)

    generate = commands.add_parser(
        "generate-logs", help="write synthetic gzip TFRecord impression logs in daily spans",
        description="Writes <out>/span-N/events-*.tfrecord.gz and the true label probabilities in truth.npz.")
    generate.add_argument("--out", default="data/logs", help="output folder (default: %(default)s)")
    generate.add_argument("--spans", type=int, nargs="+", default=[1], help="span numbers (default: 1)")
    generate.add_argument("--events", type=int, default=20_000, help="events per span (default: %(default)s)")
    generate.add_argument("--seed", type=int, default=0, help="world and event seed (default: %(default)s)")
    generate.add_argument("--minus-one-fraction", type=float, default=0.0,
                          help="share of missing labels written as -1 instead of absent (default: 0)")
    generate.set_defaults(handler=_generate_logs)

    schema = commands.add_parser(
        "schema", help="the schema that new spans are judged against",
        description="The first run in an output folder accepts the schema inferred from its span; later spans are "
                    "judged against it (plus the config's label domains and drift thresholds).")
    schema_commands = schema.add_subparsers(dest="schema_command", required=True)
    accept = schema_commands.add_parser(
        "accept", help="accept the schema inferred from the newest run's span (after a real change of the data)")
    accept.add_argument("--output-dir", default="outputs", help="the runs' output folder (default: %(default)s)")
    accept.set_defaults(handler=_schema_accept)

    kubeflow = with_config(commands.add_parser(
        "compile-kubeflow", help="compile the same pipeline to a Kubeflow Pipelines v2 JSON spec",
        description="Compiles create_pipeline with KubeflowV2DagRunner; the image must hold this project "
                    "(see Dockerfile) and the paths must be reachable from the cluster."))
    kubeflow.add_argument("--output", default="outputs/kubeflow_pipeline.json", help="(default: %(default)s)")
    kubeflow.add_argument("--image", default="mtl-pipeline:latest", help="container image (default: %(default)s)")
    kubeflow.add_argument("--pipeline-root", default="gs://YOUR_BUCKET/pipeline_root", help="(default: %(default)s)")
    kubeflow.add_argument("--serving-dir", default="gs://YOUR_BUCKET/serving_model", help="(default: %(default)s)")
    kubeflow.set_defaults(handler=_compile_kubeflow)
    return parser


def main(argv=None) -> int:
    """The `mtl` console script (setup.py); returns 0, or 2 for an error the user can fix (a setting, path, file or
    value: UserError), which it prints as one line; any other exception is a bug and keeps its traceback."""
    args = build_parser().parse_args(argv)
    try:
        code = args.handler(args)
    except UserError as e:
        print(f"mtl {args.command}: {e}", file=sys.stderr)
        code = 2
    gc.collect()  # frees TensorFlow functions while their modules exist; at interpreter exit they print tracebacks
    return code


if __name__ == "__main__":
    sys.exit(main())
