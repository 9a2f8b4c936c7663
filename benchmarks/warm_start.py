"""Warm start against cold start over daily spans: does starting from yesterday's blessed model help?

Generates ``--spans`` daily spans of ``--events`` events from one world, then runs the whole pipeline (default
config, `run_local`) on span 1, 2, ... in two output folders: one with ``model.warm_start: false`` (every day from
random weights) and one with ``true`` (from the model blessed the day before). Per day and head: the TFMA key
metric of the model pushed (or the candidate, if not blessed), the epochs and steps trained, and how many steps
the warm run needed to reach the cold run's final validation metric on that day.

    .venv/bin/python benchmarks/warm_start.py [--events 20000] [--spans 3]

writes benchmarks/results/warm-start.md (and .json).
"""

import argparse
import dataclasses
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

from provenance import measured_line  # noqa: E402  (benchmarks/, beside this script)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from config import DEFAULT_CONFIG, BeamConfig, PipelineConfig  # noqa: E402
from data.world import LogSpec  # noqa: E402
from data.writer import generate_logs  # noqa: E402
from models.tasks import make_tasks  # noqa: E402
from pipeline.reports.details import training_history  # noqa: E402
from pipeline.reports.run_report import OVERALL, load_run_report  # noqa: E402
from pipeline.runners import run_local  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
def run_day(config: PipelineConfig, span: int, folder: str) -> dict:
    """One day's run on ``span`` in ``folder``; returns its key metrics, blessing and training curve."""
    day = config.replace(data=dataclasses.replace(config.data, span=span))
    report = load_run_report(*run_local(day, output_dir=f"{folder}/out", serving_dir=f"{folder}/serving"))
    history = training_history(report.model_run_uri)
    curves = history.curves.get("validation", {})
    tasks = make_tasks(config.tasks)
    per_head = config.model.per_head_selection
    return {"span": span, "blessed": report.blessed,
            "metrics": {t.name: report.metrics[(OVERALL, t.name)][t.key_metric_name] for t in tasks},
            "validation": {t.name: curves.get(t.keras_metric_name, []) for t in tasks},
            "epochs": len(curves.get("loss", [])),
            "served_epochs": {t.name: (history.head_best_epoch(t.name) if per_head else None) or history.best_epoch
                              for t in tasks}}


def steps_to_reach(warm: list[float], cold_final: float, higher_is_better: bool, steps_per_epoch: int) -> int | None:
    """Training steps until the warm run's validation metric first reaches ``cold_final`` (None: never)."""
    for epoch, value in enumerate(warm, start=1):
        if (value >= cold_final) if higher_is_better else (value <= cold_final):
            return epoch * steps_per_epoch
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--spans", type=int, default=3)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="warm-start-")
    spans = list(range(1, args.spans + 1))
    generate_logs(LogSpec(num_events=args.events), f"{work}/logs", spans)
    base = PipelineConfig.from_yaml(DEFAULT_CONFIG)
    base = base.replace(data=dataclasses.replace(base.data, log_root=f"{work}/logs"), beam=BeamConfig(workers=1))
    days = {}
    for mode, warm in (("cold", False), ("warm", True)):
        config = base.replace(model=dataclasses.replace(base.model, warm_start=warm))
        days[mode] = [run_day(config, span, f"{work}/{mode}") for span in spans]
        print(mode, json.dumps([d["metrics"] for d in days[mode]]), flush=True)
    tasks = make_tasks(base.tasks)
    steps_per_epoch = -(-int(args.events * 0.8) // base.model.batch_size)  # the hash split's 4 of 5 buckets
    rows = []
    for cold, warm in zip(days["cold"], days["warm"], strict=True):
        row = {"span": cold["span"], "cold epochs": cold["epochs"], "warm epochs": warm["epochs"], "heads": {}}
        for t in tasks:
            cold_curve = cold["validation"][t.name]
            served = cold["served_epochs"][t.name]
            cold_final = cold_curve[served - 1] if cold_curve and served else None
            row["heads"][t.name] = {
                "cold": cold["metrics"][t.name], "warm": warm["metrics"][t.name],
                "cold steps": served * steps_per_epoch if served else None,
                "warm steps to cold final": None if cold_final is None else steps_to_reach(
                    warm["validation"][t.name], cold_final, t.higher_is_better, steps_per_epoch)}
        rows.append(row)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "warm-start.json").write_text(json.dumps({"days": days, "rows": rows}, indent=1) + "\n")
    lines = [f"# Warm start against cold start, {args.spans} daily spans of {args.events:,} events "
             f"({platform.machine()}, {os.cpu_count()} cores)", "",
             "`benchmarks/warm_start.py`: the default config, one run per day in each of two output folders; "
             "'cold' trains from random weights every day, 'warm' from the model blessed the day before "
             f"(span 1 has none: both start cold). Steps: batches of {base.model.batch_size}, "
             f"{steps_per_epoch} per epoch; 'cold steps' is where the epoch that serves the head in the cold run ends "
             "(its own best with per-head selection, else the kept one), 'warm steps' "
             "is when the warm run's validation metric first reached that epoch's value.", "",
             "| span | head | key metric, cold | key metric, warm | warm − cold | cold steps | warm steps to the cold "
             "final | epochs run cold / warm |", "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        for t in tasks:
            h = row["heads"][t.name]
            sign = 1 if t.higher_is_better else -1
            lines.append(f"| {row['span']} | {t.name} {t.key_metric_name} | {h['cold']:.4f} | {h['warm']:.4f} | "
                         f"{sign * (h['warm'] - h['cold']):+.4f} | {h['cold steps'] or '—'} | "
                         f"{h['warm steps to cold final'] or 'not reached'} | {row['cold epochs']} / "
                         f"{row['warm epochs']} |")
    lines += ["", "warm − cold is signed so that positive is better (lower RMSE counts as better).", ""]
    (RESULTS / "warm-start.md").write_text("\n".join([*lines, "", measured_line(), ""]))
    print(RESULTS / "warm-start.md")


if __name__ == "__main__":
    main()
