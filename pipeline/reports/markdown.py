"""The markdown report of a run: a table per head (overall, then slices, and the Bayes limit where the logs have
truth), then the verdict, the pushed model and each component's seconds. `mtl run` prints it and writes it as
report.md."""

from __future__ import annotations

from pipeline.reports.run_report import OVERALL, RunReport
from pipeline.reports.text import format_number
from pipeline.reports.text import markdown_text as md

BAYES_ROW = "Bayes limit (overall, from the generator's truth)"


def format_report(report: RunReport, limits: dict[str, dict[str, float]] | None = None, max_slices: int = 12) -> str:
    """A markdown table per head (rows: overall, then slices; columns: its TFMA metrics), then the verdict. Every
    name and value from the logs is escaped (``markdown_text``): a slice value renders as the text it is.

    ``limits`` ({head: {metric: value}}, see pipeline.reports.head_limits) adds a row with each head's best
    achievable score.
    """
    limits = limits or {}
    lines = []
    for head in sorted({h for _, h in report.metrics}):
        rows = sorted(((s, values) for (s, h), values in report.metrics.items() if h == head),
                      key=lambda row: (row[0] != OVERALL, row[0]))
        names = sorted(rows[0][1])
        lines += [f"\n### {md(head)}", "| slice | " + " | ".join(map(md, names)) + " |",
                  "|---" * (len(names) + 1) + "|"]
        if head in limits:
            rows.insert(1, (BAYES_ROW, limits[head]))
        lines += ["| " + md(s) + " | " + " | ".join(format_number(values.get(n)) for n in names) + " |"
                  for s, values in rows[:max_slices + (head in limits)]]
        if len(rows) > max_slices:
            lines.append(f"| … {len(rows) - max_slices} more slices in the TFMA output | " + "| " * len(names))
    verdict = {True: "BLESSED", False: "NOT BLESSED", None: "not evaluated"}[report.blessed]
    lines += ["", f"Ingested: {md(report.ingested)}", f"Blessing: {verdict}"]
    lines += [f"  - {md(line)}" for line in [*report.failures, *report.within_noise]]
    if report.serving_check:
        lines.append(f"Serving check: {md(report.serving_check)}")
    lines.append(f"Pushed model: {md(report.pushed_model or 'nothing pushed')}")
    lines.append(f"TFMA output: {md(report.evaluation_uri)}")
    lines.append("Component seconds: " + ", ".join(f"{name} {s:.1f}" for name, s in report.seconds.items()))
    return "\n".join(lines)

