"""False alarms of the drift gate on spans that did not drift, and the moves it still stops.

For each span size, generates consecutive daily spans of one world (the same users and items, new events each
day: what a daily span of an unchanged product looks like), computes each span's TFDV statistics and judges every
span against the one before it with the default config's ``validation.drift`` thresholds, by two rules:

- *threshold*: a feature drifts when its distance passes the threshold (TFDV's drift comparator alone);
- *threshold and noise* (AnomalyGate's): when it also passes what sampling alone reaches 1 time in 100 at the two
  spans' sizes (``components.drift``).

A span pair is a false alarm when any feature is called drifted. The last rows judge real moves against the first
span of the largest size: a span of another world (new users and items, ``--seed`` + 1) and the fault table's
device shift (every event on mobile).

    .venv/bin/python benchmarks/drift_noise.py [--sizes 300 1000 3000 20000 200000] [--pairs 20 20 20 10 3]

writes benchmarks/results/drift-noise.md (and .json).
"""

import argparse
import glob
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from provenance import measured_line  # noqa: E402  (benchmarks/, beside this script)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from config import DEFAULT_CONFIG, PipelineConfig  # noqa: E402

# isort: split
import tensorflow as tf  # noqa: E402
import tensorflow_data_validation as tfdv  # noqa: E402

from components.drift import JENSEN_SHANNON, L_INFTY, feature_move  # noqa: E402
from data.world import LogSpec  # noqa: E402
from data.writer import EVENTS_FILE, generate_logs  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
TEXT_FEATURES = ("device", "country", "item_category")  # logged as text: L-infinity; the rest Jensen-Shannon


def statistics(span_dir: Path):
    return {f.path.step[0]: f for f in tfdv.generate_statistics_from_tfrecord(
        str(span_dir / EVENTS_FILE)).datasets[0].features}


def judge(current: dict, previous: dict, thresholds: dict[str, float]) -> dict[str, list[str]]:
    """{rule: the features it calls drifted} for one pair of spans."""
    called = {"threshold": [], "threshold and noise": []}
    for name, threshold in thresholds.items():
        move = feature_move(current[name], previous[name], L_INFTY if name in TEXT_FEATURES else JENSEN_SHANNON)
        if move is None or move.distance <= threshold:
            continue
        called["threshold"].append(f"{name} {move.distance:.3f}")
        if move.distance > move.noise:
            called["threshold and noise"].append(f"{name} {move.distance:.3f} (noise {move.noise:.3f})")
    return called


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[300, 1_000, 3_000, 20_000, 200_000])
    parser.add_argument("--pairs", type=int, nargs="+", default=[20, 20, 20, 10, 3])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", default=tempfile.mkdtemp(prefix="drift-noise-"))
    args = parser.parse_args()
    thresholds = dict(PipelineConfig.from_yaml(DEFAULT_CONFIG).validation.drift)
    rows, started = [], time.time()
    for size, pairs in zip(args.sizes, args.pairs, strict=True):
        folder = Path(args.work) / f"events-{size}"
        spans = generate_logs(LogSpec(num_events=size, seed=args.seed), folder, list(range(1, pairs + 2)))
        stats = [statistics(span) for span in spans]
        verdicts = [judge(stats[i + 1], stats[i], thresholds) for i in range(pairs)]
        rows.append({"events": size, "pairs": pairs,
                     **{rule: sum(bool(v[rule]) for v in verdicts) for rule in verdicts[0]},
                     "examples": sorted({name for v in verdicts for name in v["threshold"]})[:4]})
        print(rows[-1], f"{time.time() - started:.0f} s", flush=True)
    largest = Path(args.work) / f"events-{args.sizes[-1]}" / "span-1"
    base = statistics(largest)
    other = generate_logs(LogSpec(num_events=args.sizes[-1], seed=args.seed + 1), Path(args.work) / "other", [1])[0]
    shifted = Path(args.work) / "shifted" / "span-1"
    shifted.mkdir(parents=True)
    with tf.io.TFRecordWriter(str(shifted / EVENTS_FILE), "GZIP") as writer:
        for record in tf.data.TFRecordDataset(glob.glob(str(largest / "*.gz")), compression_type="GZIP"):
            example = tf.train.Example.FromString(record.numpy())
            example.features.feature["device"].bytes_list.value[:] = [b"mobile"]
            writer.write(example.SerializeToString())
    moves = {"another world (seed + 1)": judge(statistics(other), base, thresholds),
             "every event on mobile": judge(statistics(shifted), base, thresholds)}
    write(rows, moves, args)


def write(rows: list[dict], moves: dict, args) -> None:
    lines = ["# Drift gate: false alarms on spans that did not drift", "",
             "`benchmarks/drift_noise.py`: consecutive daily spans of one world (seed "
             f"{args.seed}), each judged against the one before with the default `validation.drift` thresholds "
             "(0.05 for every feature but the ids). A pair is a false alarm when any feature is called drifted.", "",
             "| events per span | pairs | false alarms, threshold alone | **false alarms, threshold and noise** | "
             "features over the threshold |", "|---|---|---|---|---|"]
    for row in rows:
        alone, gate, pairs = row["threshold"], row["threshold and noise"], row["pairs"]
        lines.append(f"| {row['events']:,} | {pairs} | {alone} ({alone / pairs:.0%}) | **{gate} ({gate / pairs:.0%})** "
                     f"| {', '.join(row['examples']) or '—'} |")
    lines += ["", f"Real moves, against span 1 of {args.sizes[-1]:,} events:", "",
              "| span | called drifted, threshold alone | **called drifted, threshold and noise** |", "|---|---|---|"]
    for name, called in moves.items():
        lines.append(f"| {name} | {', '.join(called['threshold']) or 'nothing'} | "
                     f"**{', '.join(called['threshold and noise']) or 'nothing'}** |")
    lines += ["", measured_line(), ""]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "drift-noise.md").write_text("\n".join(lines))
    (RESULTS / "drift-noise.json").write_text(json.dumps({"rows": rows, "moves": moves}, indent=1) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
