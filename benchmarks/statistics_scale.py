"""StatisticsGen's cost per event as the id vocabularies grow: TFDV's exact top-k and unique counts (its default,
which keeps a count per distinct string) next to its sketches (``use_sketch_based_topk_uniques``: Misra-Gries
top-k, KMV distinct counts), on a generated span of the bundled world's 5,000 users and on one of ``--users``
users, in one run.

Each cell is one process that computes a span's statistics with the call StatisticsGen's executor makes
(``tfdv.GenerateStatistics`` over the gzipped TFRecords on Beam's in-process runner, the pipeline's setting below
800,000 events) and reports its seconds, its peak memory, and what the statistics say of user_id (distinct values,
top count) and of device and country (their top values), which the schema and the drift check read.

    .venv/bin/python benchmarks/statistics_scale.py [--events 500000] [--users 1000000]

writes benchmarks/results/statistics-scale.md and .json.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from provenance import write_results  # noqa: E402  (benchmarks/, beside this script)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
MTL = str(ROOT / ".venv" / "bin" / "mtl")
OPTIONS = ("exact", "sketch")
FEATURES = ("user_id", "device", "country")


def measure(files: list[str], option: str) -> dict:
    """Statistics of ``files`` with TFDV's exact or sketch top-k and uniques: seconds, peak memory, and per
    feature in FEATURES its distinct count and top values."""
    import apache_beam as beam
    import tensorflow_data_validation as tfdv
    from tfx_bsl.public import tfxio

    options = tfdv.StatsOptions(use_sketch_based_topk_uniques=option == "sketch")
    output = tempfile.mkdtemp(prefix="stats-")
    started = time.perf_counter()
    with beam.Pipeline() as pipeline:
        _ = (pipeline
             | tfxio.TFExampleRecord(files, telemetry_descriptors=["benchmark"]).BeamSource()
             | tfdv.GenerateStatistics(options)
             | tfdv.WriteStatisticsToBinaryFile(os.path.join(output, "stats")))
    seconds = time.perf_counter() - started
    stats = tfdv.load_stats_binary(os.path.join(output, "stats")).datasets[0]
    by_name = {f.path.step[0]: f for f in stats.features}
    features = {}
    for name in FEATURES:
        string = by_name[name].string_stats
        features[name] = {"unique": int(string.unique),
                          "top": [[v.value, int(v.frequency)] for v in string.top_values[:3]]}
    return {"option": option, "events": int(stats.num_examples), "seconds": seconds,
            "peak_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20, "features": features}


def table(cells: list[dict]) -> str:
    base = {c["option"]: c for c in cells if c["users"] == min(x["users"] for x in cells)}
    lines = ["| users | events | top-k and uniques | s | s per 1M events | cost per event vs 5,000 users, exact | "
             "peak | user_id distinct | device top 3 | country top 3 |", "|---|---|---|---|---|---|---|---|---|---|"]
    reference = base["exact"]["seconds"] / base["exact"]["events"]
    for c in cells:
        per_event = c["seconds"] / c["events"]
        top = {name: ", ".join(f"{value} {count:,}" for value, count in c["features"][name]["top"])
               for name in ("device", "country")}
        lines.append(f"| {c['users']:,} | {c['events']:,} | {c['option']} | {c['seconds']:.1f} | {per_event * 1e6:.1f}"
                     f" | {per_event / reference:.2f} | {c['peak_gib']:.2f} GiB | "
                     f"{c['features']['user_id']['unique']:,} | {top['device']} | {top['country']} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)  # a logs folder and an option, in a child
    args = parser.parse_args(argv)
    if args.one:
        files = sorted(str(p) for p in Path(args.one[0]).rglob("*.tfrecord.gz"))
        print(json.dumps(measure(files, args.one[1])))
        return 0
    cells = []
    for users in (5_000, args.users):
        logs = tempfile.mkdtemp(prefix=f"stats-logs-{users}-")
        subprocess.run([MTL, "generate-logs", "--out", logs, "--events", str(args.events), "--users", str(users),
                        "--items", str(max(2_000, users // 10))], check=True, capture_output=True)
        for option in OPTIONS:
            child = subprocess.run([sys.executable, __file__, "--one", logs, option], capture_output=True, text=True)
            if child.returncode:
                raise RuntimeError(f"{users} users, {option}: failed\n{child.stderr[-3000:]}")
            cells.append({"users": users, **json.loads(child.stdout.strip().splitlines()[-1])})
            print(f"{users:,} users, {option}: {cells[-1]['seconds']:.1f} s", file=sys.stderr, flush=True)
    text = (f"`benchmarks/statistics_scale.py`: one generated span of {args.events:,} events per world (items a tenth "
            "of the users, at least 2,000), its statistics computed as StatisticsGen computes them (TFDV on Beam's "
            "in-process runner); each cell is one process. exact: TFDV's default top-k and unique counts; sketch: "
            "`use_sketch_based_topk_uniques`.\n\n" + table(cells))
    write_results(str(RESULTS / "statistics-scale.md"), "StatisticsGen and the number of ids", text, cells)
    return 0


if __name__ == "__main__":
    sys.exit(main())
