"""What a run produced, read back from ML Metadata and the TFMA output: per-head metrics per slice (and the
baseline's), the blessing verdict with its reasons, TFMA's plots, the pushed model's path and the artifacts that
the HTML report reads further (statistics, anomalies, training logs)."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

import tensorflow_model_analysis as tfma

from models.evaluation.results import metric_interval, metric_value, model_names
from models.evaluation.verdict import Verdict
from pipeline import metadata

OVERALL = "overall"


@dataclass
class RunReport:
    """The outcome of one pipeline run."""

    run_id: str = ""
    started: float = 0.0  # unix seconds
    metrics: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict)  # (slice, head) -> values
    texts: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)  # (slice, head) -> text metrics
    # (slice, head) -> {metric: (lower, upper)}: 95% intervals, with evaluation.confidence_intervals
    intervals: dict[tuple[str, str], dict[str, tuple[float, float]]] = field(default_factory=dict)
    baseline: dict[str, dict[str, float]] = field(default_factory=dict)  # head -> the baseline model's, overall
    plots: dict[tuple[str, str], dict] = field(default_factory=dict)  # (slice, head) -> TFMA plot data
    evaluation_uri: str | None = None
    blessed: bool | None = None
    failures: list[str] = field(default_factory=list)  # the blessing gate's: one line per failed threshold
    failed_heads: set[str] = field(default_factory=set)
    within_noise: list[str] = field(default_factory=list)  # changes beyond tolerance the interval does not support
    pushed_model: str | None = None
    serving_check: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)  # component -> wall time
    examples_uri: str | None = None  # what ImportExampleGen ingested in this run: its Examples artifact,
    input_base: str | None = None  # the log folder,
    span: int | None = None  # and the span
    statistics_uri: str | None = None
    anomalies_uri: str | None = None
    model_run_uri: str | None = None  # the Trainer's TensorBoard logs
    transform_graph_uri: str | None = None  # Transform's graph and vocabularies (the classes of text labels)

    @property
    def ingested(self) -> str:
        """What the run ingested, for a person: "span N of <log folder>", or "nothing"."""
        return f"span {self.span} of {self.input_base}" if self.span is not None else "nothing"

    @property
    def pushed_version(self) -> str | None:
        return metadata.pushed_version(self.pushed_model)


def load_run_report(metadata_path: str, run_id: str | None = None) -> RunReport:
    """The RunReport of run ``run_id`` (default: the newest) recorded in the sqlite MLMD at ``metadata_path``;
    `mtl run`, `mtl report`, `mtl runs`, the benchmarks and the end-to-end tests call it."""
    store = metadata.open_store(metadata_path)
    runs = metadata.runs_newest_first(store)
    if not runs:
        raise FileNotFoundError(f"no pipeline run recorded in {metadata_path}")
    by_name = {c.name: c for c in runs}
    if run_id is not None and run_id not in by_name:
        raise KeyError(f"no run '{run_id}' in {metadata_path}")
    run = by_name[run_id] if run_id is not None else runs[0]
    produced = metadata.produced(store, run.id)
    report = RunReport(run_id=run.name, started=run.create_time_since_epoch / 1000,
                       seconds=_component_seconds(produced))
    source = metadata.ingested(produced)
    if source is not None:
        report.input_base, examples = source
        report.span, report.examples_uri = metadata.artifact_span(examples), examples.uri
    report.statistics_uri = _uri(produced, "StatisticsGen", "ExampleStatistics")
    report.anomalies_uri = _uri(produced, "ExampleValidator", "ExampleAnomalies")
    report.model_run_uri = _uri(produced, "Trainer", "ModelRun")
    report.transform_graph_uri = _uri(produced, "Transform", "TransformGraph")
    report.evaluation_uri = _uri(produced, "Evaluator", "ModelEvaluation")
    if report.evaluation_uri:
        candidate, baseline = model_names(report.evaluation_uri)
        result = tfma.load_eval_result(report.evaluation_uri, model_name=candidate)
        report.metrics = _slice_metrics(result)
        report.intervals = _slice_intervals(result)
        report.texts = _slice_texts(result)
        report.plots = _slice_plots(result)
        if baseline is not None:
            report.baseline = _overall(_slice_metrics(tfma.load_eval_result(report.evaluation_uri,
                                                                            model_name=baseline)))
    blessing_uri = _uri(produced, "BlessingGate", "ModelBlessing")
    verdict = Verdict.read(blessing_uri) if blessing_uri else None
    if verdict is not None:
        report.blessed, report.failures, report.within_noise = verdict.blessed, verdict.failures, verdict.within_noise
        report.failed_heads = set(verdict.failed_heads)
    report.pushed_model = metadata.pushed_destination(produced)
    report.serving_check = metadata.serving_check(produced)
    return report


def _uri(produced: dict, component: str, artifact_type: str) -> str | None:
    """The uri of the artifact of ``artifact_type`` that ``component`` output in the run, if it ran."""
    artifacts = produced.get(component, (None, {}))[1].get(artifact_type, [])
    return artifacts[0].uri if artifacts else None


def _component_seconds(produced: dict[str, tuple]) -> dict[str, float]:
    """Wall time of each component's execution in the run, in execution order, from MLMD's timestamps."""
    executions = sorted((execution for execution, _ in produced.values()), key=lambda e: e.id)
    names = {id(execution): name for name, (execution, _) in produced.items()}
    return {names[id(e)]: (e.last_update_time_since_epoch - e.create_time_since_epoch) / 1000 for e in executions}


def _slice_name(slice_key) -> str:
    return ", ".join(f"{k}={_text(v)}" for k, v in slice_key) or OVERALL


def _slice_metrics(result) -> dict[tuple[str, str], dict[str, float]]:
    """{(slice, head): {metric: value}}: the point estimate of each number TFMA computed (with confidence
    intervals on, its value on every test event, not the intervals' mean)."""
    table = {}
    for slice_key, by_output in result.slicing_metrics:
        for head, by_sub_key in by_output.items():
            numbers = {metric: metric_value(value) for metric, value in by_sub_key.get("", {}).items()}
            table[(_slice_name(slice_key), head)] = {metric: n for metric, n in numbers.items() if n is not None}
    return table


def _slice_intervals(result) -> dict[tuple[str, str], dict[str, tuple[float, float]]]:
    """{(slice, head): {metric: (lower, upper)}}: TFMA's 95% interval of each number it gave one (a metric's
    ``<name>_diff`` against the baseline included: paired, on the same test events)."""
    table = {}
    for slice_key, by_output in result.slicing_metrics:
        for head, by_sub_key in by_output.items():
            bounded = {metric: metric_interval(value) for metric, value in by_sub_key.get("", {}).items()}
            if any(bounded.values()):
                table[(_slice_name(slice_key), head)] = {m: bounds for m, bounds in bounded.items() if bounds}
    return table


def _slice_texts(result) -> dict[tuple[str, str], dict[str, str]]:
    """{(slice, head): {metric: text}} of the metrics whose value is text (e.g. span counts per slot type)."""
    table = {}
    for slice_key, by_output in result.slicing_metrics:
        for head, by_sub_key in by_output.items():
            values = {metric: base64.b64decode(value["bytesValue"]).decode()
                      for metric, value in by_sub_key.get("", {}).items() if "bytesValue" in value}
            if values:
                table[(_slice_name(slice_key), head)] = values
    return table


def _slice_plots(result) -> dict[tuple[str, str], dict]:
    """{(slice, head): TFMA's plot data for that head} (calibration buckets, confusion matrices)."""
    plots = {}
    for slice_key, by_output in result.plots or []:
        for head, by_sub_key in by_output.items():
            if by_sub_key.get(""):
                plots[(_slice_name(slice_key), head)] = by_sub_key[""]
    return plots


def _overall(metrics: dict[tuple[str, str], dict[str, float]]) -> dict[str, dict[str, float]]:
    return {head: values for (name, head), values in metrics.items() if name == OVERALL}


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)

