"""What a run produced, read back from ML Metadata and the TFMA output: per-head metrics per slice, the
blessing verdict with its reasons, and the pushed model's path."""

from __future__ import annotations

from dataclasses import dataclass, field

import tensorflow_model_analysis as tfma
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

OVERALL = "overall"
BAYES_ROW = "Bayes limit (overall, from the generator's truth)"


@dataclass
class RunReport:
    """The outcome of the latest run of one pipeline."""

    metrics: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict)  # (slice, head) -> values
    evaluation_uri: str | None = None
    blessed: bool | None = None
    failures: list[str] = field(default_factory=list)
    pushed_model: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)  # component -> wall time
    examples_uri: str | None = None  # what ImportExampleGen ingested in this run: its Examples artifact,
    input_base: str | None = None  # the log folder,
    span: int | None = None  # and the span


def load_run_report(metadata_path: str) -> RunReport:
    """The RunReport of the newest pipeline run recorded in the sqlite MLMD at ``metadata_path`` (run_local's
    return value); `mtl run`, the benchmarks and the end-to-end tests call it."""
    connection = metadata_store_pb2.ConnectionConfig()
    connection.sqlite.filename_uri = metadata_path
    store = metadata_store.MetadataStore(connection)
    runs = store.get_contexts_by_type("pipeline_run")
    if not runs:
        raise FileNotFoundError(f"no pipeline run recorded in {metadata_path}")
    latest = max(runs, key=lambda c: c.create_time_since_epoch)
    type_names = {t.id: t.name for t in store.get_artifact_types()}
    artifacts = {type_names[a.type_id]: a for a in store.get_artifacts_by_context(latest.id)}
    report = RunReport(seconds=_component_seconds(store, latest.id))
    report.input_base, report.span, report.examples_uri = _ingestion(store, latest.id)
    if "ModelEvaluation" in artifacts:
        report.evaluation_uri = artifacts["ModelEvaluation"].uri
        report.metrics = _slice_metrics(report.evaluation_uri)
        validation = tfma.load_validation_result(report.evaluation_uri)
        report.blessed = validation.validation_ok
        report.failures = _failures(validation)
    pushed = artifacts.get("PushedModel")
    if pushed and pushed.custom_properties["pushed"].int_value:
        report.pushed_model = pushed.custom_properties["pushed_destination"].string_value
    return report


def _component_seconds(store, run_id: int) -> dict[str, float]:
    """Wall time of each component's execution, from MLMD's timestamps."""
    type_names = {t.id: t.name.rsplit(".", 1)[-1] for t in store.get_execution_types()}
    return {type_names[e.type_id]: (e.last_update_time_since_epoch - e.create_time_since_epoch) / 1000
            for e in sorted(store.get_executions_by_context(run_id), key=lambda e: e.id)}


def _ingestion(store, run_id: int) -> tuple[str | None, int | None, str | None]:
    """(log folder, span, Examples uri) of the run's ImportExampleGen; Nones if it did not run."""
    type_names = {t.id: t.name for t in store.get_execution_types()}
    for execution in store.get_executions_by_context(run_id):
        if type_names[execution.type_id].endswith("ImportExampleGen"):
            outputs = [e.artifact_id for e in store.get_events_by_execution_ids([execution.id])
                       if e.type == metadata_store_pb2.Event.OUTPUT]
            (examples,) = store.get_artifacts_by_id(outputs)
            return execution.custom_properties["input_base"].string_value, artifact_span(examples), examples.uri
    return None, None, None


def artifact_span(artifact) -> int:
    """The span of an Examples artifact in MLMD (a custom property in TFX 1.16, a declared one in some versions)."""
    properties = artifact.custom_properties if "span" in artifact.custom_properties else artifact.properties
    return properties["span"].int_value


def _slice_metrics(evaluation_uri: str) -> dict[tuple[str, str], dict[str, float]]:
    result = tfma.load_eval_result(evaluation_uri)
    table = {}
    for slice_key, by_output in result.slicing_metrics:
        name = ", ".join(f"{k}={_text(v)}" for k, v in slice_key) or OVERALL
        for head, by_sub_key in by_output.items():
            values = by_sub_key.get("", {})
            # float(): the JSON form writes NaN (e.g. AUC on a slice with one class) as the string "NaN".
            table[(name, head)] = {metric: float(value["doubleValue"]) for metric, value in values.items()
                                   if "doubleValue" in value}
    return table


def _failures(validation) -> list[str]:
    """One line per failed blessing threshold: head/metric = value, and the threshold it failed."""
    lines = []
    for per_slice in validation.metric_validations_per_slice:
        for failure in per_slice.failures:
            key, value = failure.metric_key, _number(failure.metric_value.double_value.value)
            lines.append(f"{key.output_name}/{key.name} = {value} failed {_one_line(failure.metric_threshold)}")
    return lines


def _one_line(message) -> str:
    return " ".join(str(message).split())


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def format_report(report: RunReport, limits: dict[str, dict[str, float]] | None = None, max_slices: int = 12) -> str:
    """A markdown table per head (rows: overall, then slices; columns: its TFMA metrics), then the verdict.

    ``limits`` ({head: {metric: value}}, see pipeline.limits) adds a row with each head's best achievable score.
    """
    limits = limits or {}
    lines = []
    for head in sorted({h for _, h in report.metrics}):
        rows = sorted(((s, values) for (s, h), values in report.metrics.items() if h == head),
                      key=lambda row: (row[0] != OVERALL, row[0]))
        names = sorted(rows[0][1])
        lines += [f"\n### {head}", "| slice | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
        if head in limits:
            rows.insert(1, (BAYES_ROW, limits[head]))
        lines += ["| " + s + " | " + " | ".join(_number(values.get(n)) for n in names) + " |"
                  for s, values in rows[:max_slices + (head in limits)]]
        if len(rows) > max_slices:
            lines.append(f"| … {len(rows) - max_slices} more slices in the TFMA output | " + "| " * len(names))
    verdict = {True: "BLESSED", False: "NOT BLESSED", None: "not evaluated"}[report.blessed]
    ingested = f"span {report.span} of {report.input_base}" if report.span is not None else "nothing"
    lines += ["", f"Ingested: {ingested}", f"Blessing: {verdict}"] + [f"  - {f}" for f in report.failures]
    lines.append(f"Pushed model: {report.pushed_model or 'nothing pushed'}")
    lines.append(f"TFMA output: {report.evaluation_uri}")
    lines.append("Component seconds: " + ", ".join(f"{name} {s:.1f}" for name, s in report.seconds.items()))
    return "\n".join(lines)


def _number(value) -> str:
    return "" if value is None else f"{value:.4g}"
