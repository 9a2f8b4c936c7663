"""The run report as one self-contained HTML page (inline CSS and SVG, no script, nothing fetched), for a person
deciding whether to trust a model: the verdict first, then each head overall and per slice with TFMA's plots,
the data, the training, and each head's trend over the earlier runs.

`mtl run` and `mtl report` call ``render``; every number on the page comes from the run's artifacts (RunReport,
run_details) or from the generator's truth (limits).
"""

from __future__ import annotations

import datetime
import html
import json
from dataclasses import dataclass

from config import PipelineConfig
from models.tasks import Task, make_tasks
from pipeline.reports.details import SplitSummary, TrainingHistory
from pipeline.reports.run_report import OVERALL, RunReport
from pipeline.reports.text import format_number

_PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px auto;max-width:1100px;color:#222}
h1{margin-bottom:4px} h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:32px}
table{border-collapse:collapse;margin:8px 0 16px;font-size:14px}
td,th{border:1px solid #ddd;padding:3px 7px;text-align:right}
th:first-child,td:first-child{text-align:left} th{background:#f5f5f5}
.verdict{font-size:20px;font-weight:600;padding:10px 14px;border-radius:6px;display:inline-block}
.blessed{background:#e3f4e1;color:#1b5e20} .not-blessed{background:#fde2e1;color:#8e1b16}
.pass{color:#1b5e20;font-weight:600} .fail{color:#b71c1c;font-weight:600} .muted{color:#777}
.interval{color:#555;font-size:90%} .few{color:#8a6d00;font-size:85%} .few-row td{background:#fffbe6} .noise{color:#555}
.plots{display:flex;flex-wrap:wrap;gap:18px;align-items:flex-start} figure{margin:0;max-width:100%;overflow-x:auto}
figcaption{font-size:13px;color:#555;max-width:460px}
table.confusion tr:first-child th+th{writing-mode:vertical-rl;transform:rotate(180deg);text-align:left}
"""


@dataclass
class PastRun:
    """An earlier run, for the trend: when, its key metric per head, whether it was blessed."""

    run_id: str
    started: float
    key_metrics: dict[str, float]
    blessed: bool | None


def render(config: PipelineConfig, report: RunReport, *, limits: dict[str, dict[str, float]],
           data: list[SplitSummary], anomalies: list[str], training: TrainingHistory,
           history: list[PastRun], class_names: dict[str, list[str]] | None = None) -> str:
    """The page as a string; ``history`` holds the earlier runs, oldest first; ``class_names`` the names of the
    classes of the heads whose labels are text (``details.head_class_names``)."""
    tasks = make_tasks(config.tasks)
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{_e(config.name)}: run "
             f"{_e(report.run_id)}</title><style>{_CSS}</style></head><body>",
             f"<h1>{_e(config.name)}</h1><p class='muted'>run {_e(report.run_id)}, {format_time(report.started)}</p>",
             _verdict(tasks, report, history)]
    for task in tasks:
        parts.append(_head_section(task, report, limits.get(task.name, {}), (class_names or {}).get(task.name),
                                   config.evaluation.min_slice_examples))
    parts += [_data_section(report, data, anomalies),
              _training_section(tasks, training, config.model.per_head_selection),
              _components_section(report), "</body></html>"]
    return "\n".join(parts)


def _verdict(tasks: list[Task], report: RunReport, history: list[PastRun]) -> str:
    blessed = {True: ("BLESSED", "blessed"), False: ("NOT BLESSED", "not-blessed"),
               None: ("NOT EVALUATED", "not-blessed")}[report.blessed]
    pushed = (f"pushed as version {_e(report.pushed_version)} to {_e(report.pushed_model)}" if report.pushed_model
              else "nothing pushed")
    if report.serving_check:
        pushed += f"; serving check {_e(report.serving_check)}"
    rows = []
    for task in tasks:
        key = task.key_metric_name
        value = report.metrics.get((OVERALL, task.name), {}).get(key)
        baseline = report.baseline.get(task.name, {}).get(key)
        change = None if value is None or baseline is None else value - baseline
        intervals = report.intervals.get((OVERALL, task.name), {})
        noisy = any(line.startswith(f"{task.name}/") for line in report.within_noise)
        verdict = ("<span class='fail'>fail</span>" if task.name in report.failed_heads
                   else f"<span class='pass'>pass{' (change within noise)' if noisy else ''}</span>"
                   if report.blessed is not None else "")
        trend = [run.key_metrics[task.name] for run in history if task.name in run.key_metrics]
        rows.append(f"<tr id='verdict-{_e(task.name)}'><td><a href='#head-{_e(task.name)}'>{_e(task.name)}</a></td>"
                    f"<td>{_e(key)}</td><td>{format_number(value)}{_interval(intervals.get(key))}</td>"
                    f"<td>{format_number(baseline) or '—'}</td>"
                    f"<td>{_signed(change)}{_interval(intervals.get(f'{key}_diff'))}</td>"
                    f"<td>{_e(task.blessing_rule.describe())}</td><td>{verdict}</td>"
                    f"<td>{_sparkline([*trend, value] if value is not None else trend)}</td></tr>")
    failures = "".join(f"<li>{_e(f)}</li>" for f in report.failures)
    failures += "".join(f"<li class='noise'>{_e(line)}</li>" for line in report.within_noise)
    return (f"<section id='verdict'><p><span class='verdict {blessed[1]}'>{blessed[0]}</span> &nbsp;{pushed}</p>"
            f"<p>Ingested and trained on: {_e(report.ingested)}</p>"
            "<table><tr><th>head</th><th>key metric</th><th>this model [95% interval]</th>"
            "<th>baseline (last blessed)</th><th>change [95% interval, paired]</th><th>blessing rule</th>"
            "<th>verdict</th><th>trend over runs</th></tr>"
            + "".join(rows) + "</table>" + (f"<ul>{failures}</ul>" if failures else "") + "</section>")


def _head_section(task: Task, report: RunReport, limit: dict[str, float], class_names: list[str] | None,
                  min_examples: int) -> str:
    rows = sorted(((s, values) for (s, h), values in report.metrics.items() if h == task.name),
                  key=lambda row: (row[0] != OVERALL, row[0]))
    if not rows:
        return f"<section id='head-{_e(task.name)}'><h2>{_e(task.name)}</h2><p>not evaluated</p></section>"
    names = [n for n in sorted(rows[0][1]) if not n.endswith("_diff") and n != "weighted_example_count"]
    key = task.key_metric_name
    table = ["<table><tr><th>slice</th>" + "".join(f"<th>{_e(n)}</th>" for n in names)
             + f"<th>{_e(key)} 95% interval</th></tr>"]
    for name, values in rows:
        few = (values.get("example_count") or 0) < min_examples
        label = (f"{_e(name)} <span class='few'>(fewer than {min_examples} labelled events: a wide interval)</span>"
                 if few else _e(name))
        interval = report.intervals.get((name, task.name), {}).get(key)
        row_class = " class='few-row'" if few else ""
        table.append(f"<tr{row_class}><td>{label}</td>"
                     + "".join(f"<td>{format_number(values.get(n))}</td>" for n in names)
                     + f"<td>{_interval(interval, bare=True) or '—'}</td></tr>")
        if name == OVERALL and limit:
            table.append("<tr class='muted'><td>Bayes limit (overall, from the generator's truth)</td>"
                         + "".join(f"<td>{format_number(limit.get(n))}</td>" for n in names) + "</tr>")
    table.append("</table>")
    bars = [(name, values.get(key), values.get("example_count"),
             report.intervals.get((name, task.name), {}).get(key)) for name, values in rows]
    figures = [_figure(_bar_chart(bars), f"{key} per slice, with its 95% interval (where computed) and each "
                                         "slice's example count")]
    for name, _ in rows[:1 + PLOTTED_SLICES]:  # overall, then the first slices
        plot = report.plots.get((name, task.name), {})
        if "calibrationHistogramBuckets" in plot:
            figures.append(_figure(_calibration_chart(plot["calibrationHistogramBuckets"].get("buckets", [])),
                                   f"TFMA calibration plot ({_e(name)}): mean label against mean prediction per "
                                   "bucket of the prediction; the diagonal is perfect calibration"))
        if "multiClassConfusionMatrixAtThresholds" in plot:
            many = class_names and len(class_names) > CONFUSION_CLASSES
            shown = f"the {CONFUSION_CLASSES} most frequent true classes" if many else "every class"
            figures.append(_figure(_confusion_matrix(plot["multiClassConfusionMatrixAtThresholds"], class_names),
                                   f"TFMA confusion matrix ({_e(name)}, {shown}): rows are the true class, columns "
                                   "the predicted"))
    counts = report.texts.get((OVERALL, task.name), {}).get("span_counts_by_type")
    if counts:
        figures.append(_figure(_span_types(json.loads(counts), class_names or []),
                               "spans per slot type (overall): a predicted span is correct when its type and both "
                               "ends match an annotated one (CoNLL)"))
    return (f"<section id='head-{_e(task.name)}' class='head'><h2>{_e(task.name)} "
            f"<span class='muted'>({_e(task.config.type)})</span></h2>{''.join(table)}"
            f"<div class='plots'>{''.join(figures)}</div></section>")


def _data_section(report: RunReport, data: list[SplitSummary], anomalies: list[str]) -> str:
    parts = ["<section id='data'><h2>Data</h2>"]
    counts = ", ".join(f"{_e(split.name)}: {split.num_examples:,} events" for split in data)
    parts.append(f"<p>Ingested {_e(report.ingested)}; {counts}.</p>")
    if data:
        splits = [split.name for split in data]
        by_name = {split.name: {f.name: f for f in split.features} for split in data}
        features = sorted({f.name for split in data for f in split.features})
        parts.append("<table><tr><th>feature</th>" + "".join(f"<th>missing ({_e(s)})</th>" for s in splits)
                     + f"<th>top values / mean ({_e(splits[0])})</th></tr>")
        for name in features:
            first = by_name[splits[0]].get(name)
            summary = ("" if first is None else ", ".join(f"{_e(v)} ({c:,.0f})" for v, c in first.top_values)
                       if first.top_values else f"mean {format_number(first.mean)}")
            cells = "".join(f"<td>{_percent(by_name[s][name].missing_share) if name in by_name[s] else ''}</td>"
                            for s in splits)
            parts.append(f"<tr><td>{_e(name)}</td>{cells}<td>{summary}</td></tr>")
        parts.append("</table>")
    parts.append("<p>ExampleValidator: " + ("no anomalies.</p>" if not anomalies else
                 "</p><ul>" + "".join(f"<li>{_e(a)}</li>" for a in anomalies) + "</ul>"))
    return "".join(parts) + "</section>"


def _training_section(tasks: list[Task], training: TrainingHistory, per_head: bool) -> str:
    if not training.curves:
        return "<section id='training'><h2>Training</h2><p>no training logs</p></section>"
    kept = {t.name: (training.head_best_epoch(t.name) if per_head else None) or training.best_epoch for t in tasks}
    speed = training.examples_per_second
    epochs = len(training.curves.get("validation", {}).get("loss", []))
    which = ("Each head is served from the epoch of its own lowest validation loss: "
             + ", ".join(f"{name} {epoch}" for name, epoch in kept.items()) if per_head
             else f"Early stopping kept epoch {training.best_epoch} (lowest validation loss)")
    parts = ["<section id='training'><h2>Training</h2>",
             f"<p>{_e(which)} of {epochs}; training throughput "
             f"{format_number(speed) if speed else '—'} examples/s (median over epochs).</p><div class='plots'>"]
    for task in tasks:
        best = kept[task.name]
        metric = next((name for name in training.curves.get("train", {})
                       if name.startswith(f"{task.name}_") and not name.startswith(f"{task.name}_loss")), None)
        for curve, what in ((f"{task.name}_loss", "loss (mean over present labels)"), (metric, metric)):
            series = {}
            for phase in ("train", "validation"):
                values = training.curves.get(phase, {}).get(curve or "", [])
                if values:
                    series[phase] = list(enumerate(values, 1))
            if series:
                parts.append(_figure(_line_chart(series, best),
                                     f"{task.name}: {what} per epoch; the dashed line marks the kept epoch"))
    return "".join(parts) + "</div></section>"


def _components_section(report: RunReport) -> str:
    rows = "".join(f"<tr><td>{_e(name)}</td><td>{seconds:.1f}</td></tr>" for name, seconds in report.seconds.items())
    return (f"<section id='components'><h2>Components</h2><table><tr><th>component</th><th>seconds</th></tr>{rows}"
            f"</table><p class='muted'>TFMA output: {_e(report.evaluation_uri)}</p></section>")


# --- inline SVG ---------------------------------------------------------------------------------------------

def _figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{_e(caption)}</figcaption></figure>"


def _bar_chart(rows: list[tuple[str, float | None, float | None, tuple[float, float] | None]],
               width: int = 460) -> str:
    """Horizontal bars of a metric per slice, a whisker over each bar's 95% interval where there is one, and the
    slice's example count written beside each bar."""
    values = [v for _, v, _, _ in rows if v is not None and v == v]
    values += [interval[1] for *_, interval in rows if interval and interval[1] == interval[1]]
    top = max(values, default=1.0) or 1.0
    line, label_width, bar_width = 18, 170, width - 170 - 110

    def x(value: float) -> float:
        return label_width + max(0.0, bar_width * value / top)

    parts = [f"<svg class='chart' role='img' xmlns='http://www.w3.org/2000/svg' width='{width}' "
             f"height='{line * len(rows) + 8}'>"]
    for i, (name, value, count, interval) in enumerate(rows):
        y = 4 + i * line
        length = 0 if value is None or value != value else max(1, bar_width * value / top)
        end = label_width + length
        parts.append(f"<text x='{label_width - 6}' y='{y + 13}' text-anchor='end' font-size='12'>{_e(name[:26])}"
                     f"</text><rect x='{label_width}' y='{y + 2}' width='{length:.1f}' height='{line - 5}' "
                     f"fill='{_PALETTE[0] if i else _PALETTE[1]}'/>")
        if interval and interval[0] == interval[0] and interval[1] == interval[1]:
            end = max(end, x(interval[1]))
            parts.append(f"<line class='interval' x1='{x(interval[0]):.1f}' x2='{x(interval[1]):.1f}' "
                         f"y1='{y + 8}' y2='{y + 8}' stroke='#222' stroke-width='1.5'/>")
        parts.append(f"<text x='{end + 4:.1f}' y='{y + 13}' font-size='11'>{format_number(value)} "
                     f"(n={format_number(count)})</text>")
    return "".join(parts) + "</svg>"


def _interval(bounds: tuple[float, float] | None, bare: bool = False) -> str:
    """`` [lower, upper]`` (or ``lower – upper`` when ``bare``) of a 95% interval; "" when there is none."""
    if not bounds:
        return ""
    text = f"{format_number(bounds[0])} – {format_number(bounds[1])}"
    return text if bare else f" <span class='interval'>[{text}]</span>"


def _calibration_chart(buckets: list[dict]) -> str:
    points = []
    for bucket in buckets:
        weight = float(bucket.get("numWeightedExamples", 0.0))
        if weight > 0:
            prediction = float(bucket.get("totalWeightedRefinedPrediction", 0.0)) / weight
            label = float(bucket.get("totalWeightedLabel", 0.0)) / weight
            points.append((prediction, label))
    return _line_chart({"mean label per bucket": points}, diagonal=True, x_label="mean prediction",
                       y_label="mean label")


CONFUSION_CLASSES = 10  # a head with more classes shows the most frequent true ones
PLOTTED_SLICES = 4  # TFMA plots per head: overall and this many slices (in the table's order)


def _confusion_matrix(data: dict, names: list[str] | None = None) -> str:
    matrices = data.get("matrices", [])
    if not matrices:
        return "<p>no matrix</p>"
    entries = matrices[0].get("entries", [])
    counts = {(e.get("actualClassId", 0), e.get("predictedClassId", 0)): e.get("numWeightedExamples", 0.0)
              for e in entries}
    support = {}
    for (actual, _), count in counts.items():
        support[actual] = support.get(actual, 0.0) + count
    classes = sorted(sorted(support, key=lambda c: -support[c])[:CONFUSION_CLASSES]) if names else sorted(
        {e.get("actualClassId", 0) for e in entries} | {e.get("predictedClassId", 0) for e in entries})

    def label(c):
        return _e(names[c]) if names and 0 <= c < len(names) else str(c)

    top = max(counts.values(), default=1.0) or 1.0
    rows = ["<table class='confusion'><tr><th>true \\ predicted</th>"
            + "".join(f"<th>{label(c)}</th>" for c in classes) + "</tr>"]
    for actual in classes:
        cells = []
        for predicted in classes:
            count = counts.get((actual, predicted), 0.0)
            shade = int(255 - 160 * count / top)
            cells.append(f"<td style='background:rgb({shade},{shade},255)'>{count:,.0f}</td>")
        rows.append(f"<tr><th>{label(actual)}</th>{''.join(cells)}</tr>")
    return "".join(rows) + "</table>"


def _span_types(counts: dict, names: list[str]) -> str:
    """Per slot type: annotated and predicted spans, correct ones, precision, recall and F1."""
    rows = ["<table class='spans'><tr><th>slot type</th><th>annotated</th><th>predicted</th><th>correct</th>"
            "<th>precision</th><th>recall</th><th>F1</th></tr>"]
    for k, (correct, gold, predicted) in enumerate(zip(counts["correct"], counts["gold"], counts["predicted"],
                                                       strict=True)):
        precision = correct / predicted if predicted else None
        recall = correct / gold if gold else None
        f1 = 2 * correct / (gold + predicted) if gold + predicted else None
        name = _e(names[k]) if k < len(names) else f"type {k}"
        rows.append(f"<tr><td>{name}</td><td>{gold:,}</td><td>{predicted:,}</td><td>{correct:,}</td>"
                    + "".join(f"<td>{format_number(v)}</td>" for v in (precision, recall, f1)) + "</tr>")
    return "".join(rows) + "</table>"


def _line_chart(series: dict[str, list[tuple[float, float]]], marker: float | None = None, *, diagonal=False,
                x_label: str = "epoch", y_label: str = "", width: int = 420, height: int = 240) -> str:
    """Lines of (x, y) points with axes from the data; ``marker`` draws a dashed vertical line at that x."""
    points = [p for values in series.values() for p in values]
    if not points:
        return "<p class='muted'>no data</p>"
    xs, ys = [x for x, _ in points], [y for _, y in points]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    if diagonal:
        x0 = y0 = min(x0, y0)
        x1 = y1 = max(x1, y1)
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1)
    left, bottom, right, top = 48, height - 30, width - 10, 10

    def sx(x):
        return left + (x - x0) / (x1 - x0) * (right - left)

    def sy(y):
        return bottom - (y - y0) / (y1 - y0) * (bottom - top)

    parts = [f"<svg class='chart' role='img' xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}'>",
             f"<line x1='{left}' y1='{bottom}' x2='{right}' y2='{bottom}' stroke='#999'/>",
             f"<line x1='{left}' y1='{top}' x2='{left}' y2='{bottom}' stroke='#999'/>",
             f"<text x='{left}' y='{height - 4}' font-size='11'>{format_number(x0)}</text>",
             f"<text x='{right}' y='{height - 4}' font-size='11' text-anchor='end'>{format_number(x1)} "
             f"{_e(x_label)}</text>",
             f"<text x='2' y='{bottom}' font-size='11'>{format_number(y0)}</text>",
             f"<text x='2' y='{top + 10}' font-size='11'>{format_number(y1)} {_e(y_label)}</text>"]
    if diagonal:
        parts.append(f"<line x1='{sx(x0):.1f}' y1='{sy(x0):.1f}' x2='{sx(x1):.1f}' y2='{sy(x1):.1f}' "
                     "stroke='#bbb' stroke-dasharray='4 3'/>")
    if marker is not None:
        parts.append(f"<line x1='{sx(marker):.1f}' y1='{top}' x2='{sx(marker):.1f}' y2='{bottom}' stroke='#555' "
                     "stroke-dasharray='3 3'/>")
    for i, (name, values) in enumerate(series.items()):
        color = _PALETTE[i % len(_PALETTE)]
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in values)
        parts.append(f"<polyline fill='none' stroke='{color}' stroke-width='2' points='{path}'/>")
        parts += [f"<circle cx='{sx(x):.1f}' cy='{sy(y):.1f}' r='2.5' fill='{color}'/>" for x, y in values]
        parts.append(f"<text x='{right - 4}' y='{top + 12 + 13 * i}' font-size='11' text-anchor='end' "
                     f"fill='{color}'>{_e(name)}</text>")
    return "".join(parts) + "</svg>"


def _sparkline(values: list[float], width: int = 110, height: int = 24) -> str:
    values = [v for v in values if v is not None and v == v]
    if len(values) < 2:
        return "<span class='muted'>first run</span>" if values else ""
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = (width - 6) / (len(values) - 1)
    points = " ".join(f"{3 + i * step:.1f},{height - 3 - (v - low) / span * (height - 6):.1f}"
                      for i, v in enumerate(values))
    return (f"<svg class='sparkline' role='img' xmlns='http://www.w3.org/2000/svg' width='{width}' "
            f"height='{height}'><title>{', '.join(format_number(v) for v in values)}</title><polyline fill='none' "
            f"stroke='{_PALETTE[0]}' stroke-width='1.5' points='{points}'/></svg>")


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _signed(value: float | None) -> str:
    return "—" if value is None else f"{value:+.4f}"


def _percent(share: float) -> str:
    return f"{100 * share:.1f}%"


def format_time(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
