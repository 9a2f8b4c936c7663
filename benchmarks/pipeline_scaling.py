"""The whole pipeline at growing sizes: per-component seconds, events/s, cores busy and peak memory, with Beam on
one worker (in-process) and on one worker process per core, and the Trainer next to its in-memory bound.

For each size it generates one span of logs, then runs `mtl run` (the command a user runs, default config) once per
Beam setting into a fresh output folder, and reads what the run printed: each component's seconds, cores and peak
memory, the Trainer's examples/s per epoch, and the eval events from the report. After the all-cores run it measures
the Trainer's input path against the in-memory bound on that run's Transform output (benchmarks/trainer_input.py).

    .venv/bin/python benchmarks/pipeline_scaling.py [--events 100000 300000 1000000]

writes benchmarks/results/pipeline-scaling.md, .json and .png (the PNG through headless Chromium, when present).
"""

import argparse
import dataclasses
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from provenance import measured_line  # noqa: E402  (benchmarks/, beside this script)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
MTL = str(ROOT / ".venv" / "bin" / "mtl")
BEAM_COMPONENTS = ("ImportExampleGen", "StatisticsGen", "Transform", "Evaluator")
COMPONENTS = (*BEAM_COMPONENTS[:3], "Trainer", "Evaluator")
SETTINGS = {"1 worker": 1, "all cores": os.cpu_count()}  # beam.workers; the default (0) picks one by span size
_DONE = re.compile(r"^  (\w+) done in ([\d.]+) s on ([\d.]+) cores, peak memory ([\d.]+) GiB$")
_EPOCH = re.compile(r"Trainer: epoch (\d+)/\d+, .* ([\d,]+) examples/s$")
_PEAK = re.compile(r"^Peak memory: ([\d.]+) GiB")


def run_pipeline(log_root: str, workers: int, work: str, top_k: int | None = None) -> dict:
    """One `mtl run` over ``log_root`` with beam.workers = ``workers`` (and, given ``top_k``, user_id and item_id
    vocabularies of that size); returns what it printed, parsed."""
    config_path = f"{work}/config.yaml"
    config = re.sub(r"(?m)^  workers: 0 ", f"  workers: {workers} ", (ROOT / "config" / "default.yaml").read_text())
    if top_k:
        config = re.sub(r"(?m)^(  - \{name: (user|item)_id, kind: vocabulary, top_k: )\d+", rf"\g<1>{top_k}", config)
    Path(config_path).write_text(config)
    started = time.perf_counter()
    completed = subprocess.run([MTL, "run", "--config", config_path, "--log-root", log_root, "--output-dir",
                                f"{work}/out", "--serving-dir", f"{work}/serving"], capture_output=True, text=True)
    wall = time.perf_counter() - started
    if completed.returncode != 0:
        raise RuntimeError(f"mtl run failed ({completed.returncode}): {completed.stderr[-2000:]}")
    result = {"wall_seconds": wall, "components": component_costs(completed.stdout), "epochs": []}
    for line in completed.stdout.splitlines():
        if match := _EPOCH.search(line):
            result["epochs"].append(float(match.group(2).replace(",", "")))
        elif match := _PEAK.match(line):
            result["peak_gib"] = float(match.group(1))
    report = Path(f"{work}/out/report.md").read_text()
    result["eval_events"] = _overall_count(report, "click")
    result["blessed"] = "Blessing: BLESSED" in report
    result["pushed"] = "Pushed model: nothing pushed" not in report
    result["trainer_examples_per_second"] = statistics.median(result["epochs"][1:] or result["epochs"])
    return result


def component_costs(stdout: str) -> dict[str, dict]:
    """{component: {"seconds", "cores", "peak_gib"}} from the line `mtl run` prints as each component ends (a
    component done in under 0.05 s has no cost on its line and is left out)."""
    costs = {}
    for line in stdout.splitlines():
        if match := _DONE.match(line):
            name, seconds, cores, peak = match.groups()
            costs[name] = {"seconds": float(seconds), "cores": float(cores), "peak_gib": float(peak)}
    return costs


def _overall_count(report: str, head: str) -> int:
    """The overall example_count of ``head`` in a run's markdown report (click: every eval event)."""
    section = report.split(f"### {head}\n", 1)[1]
    header, _, overall = section.splitlines()[:3]
    names = [cell.strip() for cell in header.strip("|").split("|")]
    values = [cell.strip() for cell in overall.strip("|").split("|")]
    return int(values[names.index("example_count")].replace(",", ""))


def trainer_bound(pipeline_root: str) -> dict:
    """Trainer input vs in-memory examples/s on a finished run's Transform output (default model)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import trainer_input

    from config import DEFAULT_CONFIG, PipelineConfig

    config = PipelineConfig.from_yaml(DEFAULT_CONFIG)
    config = config.replace(model=dataclasses.replace(config.model, train_steps=None, eval_steps=None))
    return trainer_input.measure("default", config, *trainer_input.pipeline_source(config, pipeline_root), repeats=1)


def measure_size(events: int, keep: str | None, users: int = 5_000, items: int = 2_000,
                 settings: tuple[str, ...] = tuple(SETTINGS), bound: bool = True) -> dict:
    """Generates one span of ``events`` from a world of ``users`` and ``items`` and runs the pipeline on it once
    per Beam setting (then, with ``bound``, the Trainer against its in-memory bound); with more users than the
    default config's vocabularies keep, user_id and item_id keep every id."""
    work = tempfile.mkdtemp(prefix=f"scaling-{events}-")
    top_k = max(users, items) if max(users, items) > 20_000 else None
    try:
        subprocess.run([MTL, "generate-logs", "--out", f"{work}/logs", "--events", str(events), "--users",
                        str(users), "--items", str(items)], check=True, capture_output=True)
        row = {"events": events, "users": users, "items": items}
        for setting in settings:
            shutil.rmtree(f"{work}/run", ignore_errors=True)
            os.makedirs(f"{work}/run")
            row[setting] = run_pipeline(f"{work}/logs", SETTINGS[setting], f"{work}/run", top_k)
            print(events, setting, json.dumps(row[setting]["components"]), flush=True)
        if bound:
            row["trainer_bound"] = trainer_bound(f"{work}/run/out/pipeline_root")
        if keep:
            shutil.copytree(f"{work}/run/out", f"{keep}/{events}", dirs_exist_ok=True)
        return row
    finally:
        shutil.rmtree(work, ignore_errors=True)


def table(rows: list[dict]) -> str:
    """The markdown table: per size and setting, each component's seconds and events/s, then the run's."""
    lines = ["| events | Beam | " + " | ".join(COMPONENTS) + " | whole run | peak memory |",
             "|---|---|" + "---|" * (len(COMPONENTS) + 2)]
    for row in rows:
        for setting in SETTINGS:
            run = row[setting]
            cells = []
            for name in COMPONENTS:
                c = run["components"][name]
                events = run["eval_events"] if name == "Evaluator" else row["events"]
                cells.append(f"{c['seconds']:.1f} s, {events / c['seconds']:,.0f}/s, {c['cores']:.1f} cores")
            lines.append(f"| {row['events']:,} | {setting} | " + " | ".join(cells) +
                         f" | {run['wall_seconds']:.0f} s | {run['peak_gib']:.2f} GiB |")
    return "\n".join(lines)


def flatness(rows: list[dict]) -> str:
    """Each component's cost per event at the largest size over the smallest (all cores)."""
    small, large = rows[0]["all cores"], rows[-1]["all cores"]
    lines = [f"| component | s per 1M events at {rows[0]['events']:,} | at {rows[-1]['events']:,} | ratio |",
             "|---|---|---|---|"]
    for name in COMPONENTS:
        per = []
        for row, run in ((rows[0], small), (rows[-1], large)):
            events = run["eval_events"] if name == "Evaluator" else row["events"]
            per.append(run["components"][name]["seconds"] / events * 1e6)
        lines.append(f"| {name} | {per[0]:.1f} | {per[1]:.1f} | {per[1] / per[0]:.2f} |")
    return "\n".join(lines)


def trainer_table(rows: list[dict]) -> str:
    lines = ["| events | Trainer in the run (median epoch) | streaming input | first pass | cached input | in memory | "
             "cached / in memory | epochs run |", "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        bound, run = row["trainer_bound"], row["all cores"]
        lines.append(f"| {row['events']:,} | {run['trainer_examples_per_second']:,.0f} | {bound['streaming']:,.0f} | "
                     f"{bound['first pass']:,.0f} | {bound['cached']:,.0f} | {bound['in memory']:,.0f} | "
                     f"**{bound['ratio']:.2f}** | {len(run['epochs'])} |")
    return "\n".join(lines)


def svg_chart(rows: list[dict]) -> str:
    """Seconds against events per component (all cores, solid; 1 worker, dashed), log-log, as SVG."""
    import math

    width, height, left, bottom, top, right = 900, 560, 80, 60, 40, 190
    colors = dict(zip(COMPONENTS, ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"), strict=True))
    xs = [r["events"] for r in rows]
    ys = [r[s]["components"][c]["seconds"] for r in rows for s in SETTINGS for c in COMPONENTS]
    x0, x1 = math.log10(min(xs) / 1.3), math.log10(max(xs) * 1.3)
    y0, y1 = math.log10(max(min(ys) / 1.5, 0.5)), math.log10(max(ys) * 1.5)

    def px(x, y):
        return (left + (math.log10(x) - x0) / (x1 - x0) * (width - left - right),
                height - bottom - (math.log10(max(y, 10 ** y0)) - y0) / (y1 - y0) * (height - top - bottom))

    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
             "font-family='sans-serif' font-size='13'><rect width='100%' height='100%' fill='white'/>",
             f"<text x='{left}' y='24' font-size='16'>Seconds per component against events per span "
             f"({os.cpu_count()} cores; solid: all cores, dashed: 1 worker)</text>"]
    for tick in (1, 3, 10, 30, 100, 300, 1000):
        if y0 <= math.log10(tick) <= y1:
            _, y = px(xs[0], tick)
            parts.append(f"<line x1='{left}' x2='{width - right}' y1='{y:.1f}' y2='{y:.1f}' stroke='#ddd'/>"
                         f"<text x='{left - 8}' y='{y + 4:.1f}' text-anchor='end'>{tick} s</text>")
    for x in xs:
        gx, _ = px(x, 10 ** y0)
        parts.append(f"<line x1='{gx:.1f}' x2='{gx:.1f}' y1='{top}' y2='{height - bottom}' stroke='#ddd'/>"
                     f"<text x='{gx:.1f}' y='{height - bottom + 20}' text-anchor='middle'>{x:,}</text>")
    for i, name in enumerate(COMPONENTS):
        for setting, dash in (("all cores", ""), ("1 worker", " stroke-dasharray='6 4'")):
            points = " ".join("{:.1f},{:.1f}".format(*px(r["events"], r[setting]["components"][name]["seconds"]))
                              for r in rows)
            parts.append(f"<polyline points='{points}' fill='none' stroke='{colors[name]}' stroke-width='2.5'"
                         f"{dash}/>")
        parts.append(f"<text x='{width - right + 16}' y='{top + 20 + 22 * i}' fill='{colors[name]}'>{name}</text>")
    parts.append(f"<text x='{(width - right + left) / 2}' y='{height - 14}' text-anchor='middle'>events per span "
                 "(log scale)</text></svg>")
    return "".join(parts)


def write_png(svg: str, path: Path) -> bool:
    """Renders the SVG to PNG with headless Chromium; False when no Chromium is installed."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if not browser:
        return False
    with tempfile.TemporaryDirectory() as folder:
        page = Path(folder) / "chart.html"
        page.write_text(f"<html><body style='margin:0'>{svg}</body></html>")
        subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                        "--disable-background-networking", "--disable-component-update", "--disable-sync",
                        f"--user-data-dir={folder}/profile", "--window-size=900,560", f"--screenshot={path}",
                        page.as_uri()], check=True, capture_output=True, timeout=120)
    return path.exists()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    parser.add_argument("--keep", help="copy each size's all-cores output folder here")
    args = parser.parse_args()
    rows = [measure_size(events, args.keep) for events in args.events]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "pipeline-scaling.json").write_text(json.dumps(rows, indent=1) + "\n")
    svg = svg_chart(rows)
    (RESULTS / "pipeline-scaling.svg").write_text(svg)
    png = write_png(svg, RESULTS / "pipeline-scaling.png")
    text = [f"# The pipeline at {', '.join(f'{e:,}' for e in args.events)} events "
            f"({platform.machine()}, {os.cpu_count()} cores)", "",
            "`benchmarks/pipeline_scaling.py`: `mtl run` with the default config on one generated span per size; "
            "each cell is a component's seconds, events/s (the Evaluator: eval events/s) and the cores its process "
            "tree kept busy. '1 worker': Beam in-process (`beam.workers: 1`); 'all cores': one Beam worker process "
            f"per core (`beam.workers: {os.cpu_count()}`). The default (`beam.workers: 0`) runs a span of fewer than "
            "800,000 events in-process and a larger one on all cores.", "", table(rows), "",
            "Cost per event, all cores (flat is 1.0):", "", flatness(rows), "",
            "Trainer examples/s against the in-memory bound (all-cores run's Transform output, "
            "`benchmarks/trainer_input.py`'s method):", "", trainer_table(rows), ""]
    if png:
        text += ["![seconds per component](pipeline-scaling.png)", ""]
    (RESULTS / "pipeline-scaling.md").write_text("\n".join([*text, "", measured_line(), ""]))
    print(RESULTS / "pipeline-scaling.md")


if __name__ == "__main__":
    main()
