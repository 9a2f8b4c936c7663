"""The `mtl` entry point and one handler per sub-command (run, runs, report, predict, generate-logs, schema accept,
serving list / rollback / promote, the Kubeflow commands); `pipeline.cli.parser` holds their options."""

import dataclasses
import gc
import json
import logging
import os
import sys
import time
import warnings

from absl import logging as absl_logging

from config import PipelineConfig, UserError
from pipeline.cli.environment import environment_problem
from pipeline.cli.parser import build_parser
from pipeline.reports.text import format_number


def _config(args) -> PipelineConfig:
    """The config file named by ``--config``, with the data overrides given on the command line."""
    config = PipelineConfig.from_yaml(args.config)
    overrides = {"log_root": args.log_root, "span": args.span, "train_spans": args.train_spans}
    overrides = {key: value for key, value in overrides.items() if value is not None}
    if overrides:
        config = config.replace(data=dataclasses.replace(config.data, **overrides))
    if args.beam_arg:
        config = config.replace(beam=dataclasses.replace(config.beam, args=(*config.beam.args, *args.beam_arg)))
    return config


def _run(args) -> int:
    """`mtl run`: runs the pipeline with LocalDagRunner (one console line per component; everything the libraries
    print goes to a log file unless --verbose), writes the markdown and HTML reports, prints the markdown one and
    the HTML report's path last; returns the exit code."""
    from pipeline.cli.console import quiet_console
    from pipeline.cli.resource_watch import GIB, ResourceWatch

    config = _config(args)
    with ResourceWatch() as memory:
        if args.verbose:
            reports = _run_and_report(config, args)
        else:
            log_path = os.path.join(os.path.abspath(args.output_dir), "logs",
                                    f"run-{time.strftime('%Y%m%d-%H%M%S')}.log")
            print(f"mtl run: {config.name}; the libraries' output goes to {log_path}", flush=True)
            try:
                with quiet_console(log_path, memory):  # before the imports: TensorFlow prints as it loads
                    reports = _run_and_report(config, args)
            except UserError:
                raise
            except Exception as e:  # a bug, or a library's failure: its whole traceback is in the log
                raise RunFailed(f"{type(e).__name__}: {_last_line(e)} (full traceback in {log_path})") from e
    from pipeline.guards.schema_store import accepted_schema_path

    print(f"Peak memory: {memory.run_peak / GIB:.2f} GiB (this process and Beam's workers, resident)")
    print(reports.markdown)
    print(f"Schema: {config.data.schema_path or accepted_schema_path(args.output_dir)} (new spans are judged "
          "against it; `mtl schema accept` takes the newest span's)")
    print(f"Report: {os.path.abspath(reports.markdown_path)}")
    print(f"HTML report: {reports.html_path}")
    return 0


def _run_and_report(config: PipelineConfig, args):
    from pipeline.guards.preflight import check_run

    ingestion = check_run(config, args.serving_dir)  # before TFX, Beam and TFMA load: bad input fails in seconds
    from pipeline.reports.write import write_reports
    from pipeline.runners import run_local

    metadata_path, run_id = run_local(config, output_dir=args.output_dir, serving_dir=args.serving_dir,
                                      ingestion=ingestion, force=args.force)
    return write_reports(metadata_path, config, args.output_dir, run_id)


def _runs(args) -> int:
    """`mtl runs`: the recorded runs, newest first, as a table; returns the exit code."""
    from pipeline.reports.write import run_rows

    _print_table(run_rows(_metadata_path(args.output_dir), PipelineConfig.from_yaml(args.config)))
    return 0


def _print_table(rows: list[list[str]]) -> None:
    """Prints ``rows`` (the header first) as columns padded to their widest cell, two spaces apart."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def _report(args) -> int:
    """`mtl report [RUN]`: rebuilds the markdown and HTML reports of a recorded run; prints their paths."""
    from pipeline.reports.write import write_reports

    metadata_path = _metadata_path(args.output_dir)
    try:
        reports = write_reports(metadata_path, PipelineConfig.from_yaml(args.config), args.output_dir, args.run)
    except KeyError:
        raise UserError(f"{args.output_dir}: no run '{args.run}' recorded; `mtl runs` lists them") from None
    print(f"Report: {os.path.abspath(reports.markdown_path)}")
    print(f"HTML report: {reports.html_path}")
    return 0


def _predict(args) -> int:
    """`mtl predict`: prints one JSON object of per-head scores per event; returns the exit code."""
    from pipeline.cli.predict import predict_jsonl, predict_tfrecord

    if args.jsonl:
        scores = predict_jsonl(args.model, args.jsonl)
    else:
        scores = predict_tfrecord(args.model, args.tfrecord)
    for row in scores:
        print(json.dumps(row))
    return 0


def _metadata_path(output_dir: str) -> str:
    from pipeline.metadata import store_path

    path = store_path(output_dir)
    if not os.path.exists(path):
        raise UserError(f"{output_dir}: no runs recorded here (no metadata.db); run `mtl run --output-dir "
                        f"{output_dir}` first")
    return path


def _last_line(error: Exception) -> str:
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


class RunFailed(RuntimeError):
    """A run that failed for a reason that is not the user's (a bug, or a library's failure); the message points
    at the log that holds the traceback."""


def _schema_accept(args) -> int:
    """`mtl schema accept`: makes the newest run's inferred schema the accepted one; prints its path."""
    from pipeline.guards.schema_store import accept_latest_schema

    print(f"accepted: {accept_latest_schema(args.output_dir)}")
    return 0


def _serving_model(args) -> tuple[str, str]:
    """The base directory and the name of the model a serving command acts on: <serving-dir>/<name>, the name from
    --model-name, else the config's."""
    name = args.model_name or PipelineConfig.from_yaml(args.config).name
    return os.path.join(args.serving_dir, name), name


def _serving_list(args) -> int:
    """`mtl serving list`: the pushed versions, newest first, as a table (version, pushed at, run, each head's key
    metric, labels); returns the exit code."""
    from components.serving_versions import list_rows

    base, _ = _serving_model(args)
    rows = list_rows(base)
    if not rows:
        raise UserError(f"{base}: no pushed versions here; check --serving-dir and --model-name (or --config)")
    _print_table([["version", "pushed at", "run", "key metrics", "labels"], *map(_serving_row, rows)])
    return 0


def _serving_row(row: dict) -> list[str]:
    """A row of `mtl serving list`: the push record's values as plain text, "-" for those it lacks."""
    metrics = ", ".join(f"{_plain(head)} {_plain(metric.get('metric'))}={_plain_number(metric.get('value'))}"
                        for head, metric in row["metrics"].items())
    return [str(row["version"]), _plain(row["pushed_at"]), _plain(row["run"]), metrics or "-",
            ", ".join(map(_plain, row["labels"])) or "-"]


def _plain(value) -> str:
    """A value from a file users can write, as plain text on one line: whitespace folded to single spaces, any other
    unprintable character (a terminal escape, a bidirectional override) shown as "?"; "-" when it is None or
    empty."""
    text = " ".join(str(value).split()) if value is not None else ""
    return "".join(char if char.isprintable() else "?" for char in text) or "-"


def _plain_number(value) -> str:
    return format_number(value) if isinstance(value, int | float) else _plain(value)


def _serving_rollback(args) -> int:
    """`mtl serving rollback [VERSION]`: points stable at VERSION (default: the newest older one); prints the move."""
    from components.serving_versions import config_path, rollback

    base, name = _serving_model(args)
    old, new = rollback(base, name, args.version)
    print(f"stable: {old} -> {new} ({config_path(base)})")
    return 0


def _serving_promote(args) -> int:
    """`mtl serving promote`: makes the canary stable and removes the canary label; prints the move."""
    from components.serving_versions import STABLE, config_path, promote, read_labels

    base, name = _serving_model(args)
    old = read_labels(base).get(STABLE)
    print(f"stable: {old} -> {promote(base, name)}, canary label removed ({config_path(base)})")
    return 0


def _generate_logs(args) -> int:
    """`mtl generate-logs`: writes the synthetic spans of the chosen world and prints their folders; returns the exit
    code."""
    from data.writer import generate_logs

    out = args.out or ("data/assistant_logs" if args.world == "assistant" else "data/logs")
    for path in generate_logs(_log_spec(args), out, args.spans):
        print(path)
    return 0


def _log_spec(args):
    """The spec of the world `mtl generate-logs` writes: the flags given, the spec's defaults for the others."""
    sizes = {"num_events": args.events, "seed": args.seed}
    recommendation_only = {"--users": args.users, "--items": args.items,
                           "--minus-one-fraction": args.minus_one_fraction}
    if args.world == "assistant":
        from data.assistant import AssistantSpec

        given = [flag for flag, value in recommendation_only.items() if value is not None]
        if given:
            raise UserError(f"{', '.join(given)}: only for --world recommendation; the assistant's logs take --events "
                            "and --seed")
        return AssistantSpec(**{k: v for k, v in sizes.items() if v is not None})
    from data.world import LogSpec

    sizes.update(num_users=args.users, num_items=args.items, minus_one_fraction=args.minus_one_fraction)
    return LogSpec(**{k: v for k, v in sizes.items() if v is not None})


def _compile_kubeflow(args) -> int:
    """`mtl compile-kubeflow`: writes the KFP v2 JSON spec and prints its path; returns the exit code."""
    print(_compiled_spec(_config(args), args))
    return 0


def _compiled_spec(config: PipelineConfig, args) -> str:
    """Compiles ``config`` to the KFP v2 JSON spec that the Kubeflow options name (--output, --image,
    --pipeline-root, --serving-dir); returns its path."""
    from pipeline.runners import compile_kubeflow

    return compile_kubeflow(config, output_file=args.output, image=args.image, pipeline_root=args.pipeline_root,
                            serving_dir=args.serving_dir)


def _submit_kubeflow(args) -> int:
    """`mtl submit-kubeflow`: compiles, uploads and starts one run on a KFP server; prints a line per step, the
    run's id and URL last; returns the exit code."""
    params = _params(args.param)
    server, upload, experiment_id = _upload_to_kubeflow(args)
    run = server.run(upload, experiment_id, params)
    print(f"run: {run.id} {run.url}")
    return 0


def _schedule_kubeflow(args) -> int:
    """`mtl schedule-kubeflow`: compiles, uploads and creates a recurring run on a KFP server; prints a line per
    step, the recurring run's id and URL last; returns the exit code."""
    from pipeline.kubeflow.cron import kfp_cron

    cron, params = kfp_cron(args.cron), _params(args.param)  # before anything is compiled or sent
    server, upload, experiment_id = _upload_to_kubeflow(args)
    recurring = server.schedule(upload, experiment_id, cron, params)
    print(f"recurring run: {recurring.id} on cron '{cron}', one run at a time, no catch-up {recurring.url}")
    return 0


def _upload_to_kubeflow(args):
    """The steps submit-kubeflow and schedule-kubeflow share, a line printed for each: connect to --host, compile,
    upload the spec (a new pipeline or a new version of it), find or create the experiment. Returns the
    KubeflowPipelines server, the Upload and the experiment's id."""
    from pipeline.kubeflow.client import KubeflowPipelines

    config = _config(args)
    server = KubeflowPipelines(args.host, namespace=args.namespace, existing_token=args.existing_token,
                               cookies=args.cookies)
    print(f"server: {server.host}" + (f", namespace {args.namespace}" if args.namespace else ""), flush=True)
    spec = _compiled_spec(config, args)
    print(f"compiled: {spec}", flush=True)
    upload = server.upload(spec)
    print(f"uploaded: {'new pipeline' if upload.new_pipeline else 'new version of pipeline'} "
          f"{upload.pipeline_name} {upload.url}", flush=True)
    experiment = args.experiment or config.name
    experiment_id = server.experiment(experiment)
    print(f"experiment: {experiment} ({experiment_id})", flush=True)
    return server, upload, experiment_id


def _params(pairs: list[str]) -> dict:
    """The --param KEY=VALUE pairs as KFP runtime parameters: a VALUE that reads as JSON (3, 0.5, true, "x") is
    sent as that value, any other as the string."""
    params = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals or not key.strip():
            raise UserError(f"--param '{pair}': expected KEY=VALUE, e.g. --param learning_rate=0.01")
        try:
            params[key.strip()] = json.loads(value)
        except ValueError:
            params[key.strip()] = value
    return params


def main(argv=None) -> int:
    """The `mtl` console script (setup.py); returns 0, or 2 for an error the user can fix (a setting, path, file or
    value: UserError; or the machine's: a full disk, a folder it cannot write, a damaged or locked metadata store),
    which it prints as one line. A run that fails otherwise prints one line naming its log
    (which holds the traceback) and returns 1; with --verbose, or outside a run, a bug keeps its traceback."""
    handlers = {"run": _run, "runs": _runs, "report": _report, "predict": _predict, "generate-logs": _generate_logs,
                "schema accept": _schema_accept, "serving list": _serving_list, "serving rollback": _serving_rollback,
                "serving promote": _serving_promote, "compile-kubeflow": _compile_kubeflow,
                "submit-kubeflow": _submit_kubeflow, "schedule-kubeflow": _schedule_kubeflow}
    args = build_parser(handlers).parse_args(argv)
    if args.command != "run":  # no library start-up notes on the console (`mtl run` sends them to its log file)
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        warnings.filterwarnings("ignore")
        absl_logging.set_verbosity(absl_logging.ERROR)
        logging.getLogger("tensorflow").setLevel(logging.ERROR)  # TFMA's readers log deprecation notices there
    try:
        code = args.handler(args)
    except UserError as e:
        print(f"mtl {args.command}: {e}", file=sys.stderr)
        code = 2
    except Exception as e:  # the machine's (a full disk, a damaged store): one line; a bug: RunFailed or traceback
        from pipeline.metadata import store_path

        output_dir = getattr(args, "output_dir", None) or "outputs"
        problem = environment_problem(e, output_dir=output_dir, metadata_path=store_path(output_dir),
                                      serving_dir=getattr(args, "serving_dir", None))
        if problem is None and not isinstance(e, RunFailed):
            raise
        print(f"mtl {args.command}: {problem}" if problem else f"mtl {args.command}: failed: {e}", file=sys.stderr)
        code = 2 if problem else 1
    gc.collect()  # frees TensorFlow functions while their modules exist; at interpreter exit they print tracebacks
    return code


if __name__ == "__main__":
    sys.exit(main())
