"""How optimistic the validation split is: each head's key metric on the eval split (where early stopping and each
head's best epoch were chosen) next to the test split (which the Evaluator judges on and nothing was chosen on),
for the model of the newest run in an output folder, scored exactly by each task's ``Task.score``.

    .venv/bin/mtl run --output-dir /tmp/gap                 # first, or any earlier run
    .venv/bin/python benchmarks/selection_gap.py --output-dir /tmp/gap [--config config/default.yaml]

Writes benchmarks/results/selection-gap.md (or --output) and prints it.
"""

import argparse
import glob
import os
import sys

from provenance import measured_line  # noqa: E402  (benchmarks/, beside this script)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from config import DEFAULT_CONFIG, TEST, VALIDATION, PipelineConfig  # noqa: E402
from models.tasks import make_tasks  # noqa: E402


def _newest(folder: str, inside: str = "") -> str:
    """The artifact folder under ``folder`` with the highest execution number, joined with ``inside``."""
    newest = max(glob.glob(os.path.join(folder, "*")), key=lambda path: int(os.path.basename(path)))
    return os.path.join(newest, inside)


def scores(model_dir: str, examples_uri: str, config: PipelineConfig) -> dict[str, dict[str, tuple[int, float]]]:
    """{split: {head: (labelled events, key metric)}} on the eval and test splits."""
    import tensorflow as tf

    model = tf.saved_model.load(model_dir)
    serve, labels = model.signatures["serving_default"], model.signatures["transform_features"]
    result = {}
    for split in (VALIDATION, TEST):
        files = glob.glob(os.path.join(examples_uri, f"Split-{split}", "*"))
        events = [r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]
        batches = [events[i:i + 1024] for i in range(0, len(events), 1024)]
        outputs = [serve(examples=tf.constant(b)) for b in batches]
        truth = [labels(examples=tf.constant(b)) for b in batches]
        result[split] = {}
        for task in make_tasks(config.tasks):
            predictions = np.concatenate([o[task.name].numpy() for o in outputs])
            label = np.concatenate([t[task.label_feature].numpy() for t in truth])
            weight = np.concatenate([t[task.weight_feature].numpy() for t in truth])
            result[split][task.name] = (int((weight.reshape(len(weight), -1).max(axis=1) > 0).sum()),
                                        task.score(label, weight, predictions))
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", default="outputs", help="the output folder of an `mtl run`")
    parser.add_argument("--config", default=str(DEFAULT_CONFIG))
    parser.add_argument("--output", default=os.path.join(os.path.dirname(__file__), "results", "selection-gap.md"))
    args = parser.parse_args(argv)
    config = PipelineConfig.from_yaml(args.config)
    root = os.path.join(args.output_dir, "pipeline_root")
    model = _newest(os.path.join(root, "Trainer", "model"), "Format-Serving")
    examples = _newest(os.path.join(root, "ImportExampleGen", "examples"))
    result = scores(model, examples, config)
    lines = [f"Config `{os.path.basename(args.config)}`, the Trainer's model of the newest run in the output folder "
             f"(`{os.path.relpath(model, args.output_dir)}`), each head scored by its task's exact score on every "
             "labelled event of each split.", "",
             "| head | key metric | eval (selected on): events | value | test (judged on): events | value | "
             "eval - test |", "|---|---|---|---|---|---|---|"]
    for task in make_tasks(config.tasks):
        (n_eval, v_eval), (n_test, v_test) = result[VALIDATION][task.name], result[TEST][task.name]
        lines.append(f"| {task.name} | {task.key_metric_name} | {n_eval:,} | {v_eval:.4f} | {n_test:,} | "
                     f"{v_test:.4f} | {v_eval - v_test:+.4f} |")
    text = "\n".join(lines)
    with open(args.output, "w") as f:
        f.write("# Validation split against test split\n\n" + text + "\n\n" + measured_line() + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
