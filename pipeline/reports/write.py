"""Builds the reports of a recorded run: `outputs/report.md`, `outputs/report.html` and a copy of the HTML next
to the Evaluator's artifact. `mtl run` calls ``write_reports`` for the run it just made, `mtl report` for any
recorded run; `mtl runs` lists them with ``run_rows``."""

from __future__ import annotations

import os
from dataclasses import dataclass

import tensorflow as tf

from config import PipelineConfig
from models.tasks import make_tasks
from pipeline.metadata import run_ids
from pipeline.reports import details, html_page
from pipeline.reports.head_limits import head_limits
from pipeline.reports.markdown import format_report
from pipeline.reports.run_report import OVERALL, RunReport, load_run_report
from pipeline.reports.text import format_number

HISTORY_RUNS = 10  # earlier runs in the HTML report's trend


@dataclass
class Reports:
    report: RunReport
    markdown: str
    markdown_path: str
    html_path: str


def write_reports(metadata_path: str, config: PipelineConfig, output_dir: str, run_id: str | None = None) -> Reports:
    """Writes both reports of run ``run_id`` (default: the newest) into ``output_dir``; returns them."""
    report = load_run_report(metadata_path, run_id)
    limits = head_limits(report, config)
    markdown = format_report(report, limits)
    markdown_path = os.path.join(output_dir, "report.md")
    with open(markdown_path, "w") as f:
        f.write(f"# {config.name}: per-head TFMA metrics (run {report.run_id})\n{markdown}\n")
    page = html_page.render(config, report, limits=limits, data=details.data_summary(report.statistics_uri),
                              anomalies=details.anomalies(report.anomalies_uri),
                              training=details.training_history(report.model_run_uri),
                              class_names=details.head_class_names(config, report.transform_graph_uri),
                              history=_history(metadata_path, config, report.run_id))
    html_path = os.path.join(os.path.abspath(output_dir), "report.html")
    with open(html_path, "w") as f:
        f.write(page)
    if report.evaluation_uri:
        with tf.io.gfile.GFile(os.path.join(report.evaluation_uri, "report.html"), "w") as f:
            f.write(page)
    return Reports(report, markdown, markdown_path, html_path)


def _history(metadata_path: str, config: PipelineConfig, run_id: str) -> list[html_page.PastRun]:
    """Up to HISTORY_RUNS runs before ``run_id``, oldest first, with each head's key metric."""
    ids = run_ids(metadata_path)
    earlier = ids[ids.index(run_id) + 1:][:HISTORY_RUNS]
    return [_past_run(load_run_report(metadata_path, past), config) for past in reversed(earlier)]


def _past_run(report: RunReport, config: PipelineConfig) -> html_page.PastRun:
    key_metrics = {}
    for task in make_tasks(config.tasks):
        value = report.metrics.get((OVERALL, task.name), {}).get(task.key_metric_name)
        if value is not None:
            key_metrics[task.name] = value
    return html_page.PastRun(report.run_id, report.started, key_metrics, report.blessed)


def run_rows(metadata_path: str, config: PipelineConfig) -> list[list[str]]:
    """`mtl runs`: a header and one row per recorded run, newest first: run, time, span, each head's key metric,
    blessed, pushed version."""
    tasks = make_tasks(config.tasks)
    rows = [["run", "started (UTC)", "span", *(f"{t.name} {t.key_metric_name}" for t in tasks), "blessed",
             "pushed version"]]
    for run_id in run_ids(metadata_path):
        report = load_run_report(metadata_path, run_id)
        past = _past_run(report, config)
        blessed = {True: "yes", False: "no", None: "not evaluated"}[report.blessed]
        rows.append([run_id, html_page.format_time(report.started).removesuffix(" UTC"),
                     "" if report.span is None else str(report.span),
                     *(format_number(past.key_metrics.get(t.name)) for t in tasks), blessed,
                     report.pushed_version or "—"])
    return rows
