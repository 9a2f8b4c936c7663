"""model.distribution: the multi-task train step under MirroredStrategy (two CPU devices) and
MultiWorkerMirroredStrategy (two worker processes on 127.0.0.1, each with its own TF_CONFIG)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import write_transformed_examples

from config import Distribution
from models.distribution import DISTRIBUTIONS, local_cluster

WORKER = str(Path(__file__).with_name("distributed_worker.py"))
BALANCERS = ("fixed", "uncertainty", "gradnorm", "pcgrad")


def test_every_distribution_has_a_strategy():
    assert set(DISTRIBUTIONS) == set(Distribution)


def test_mirrored_step_on_two_replicas_equals_one_step_on_the_global_batch(tmp_path):
    out = tmp_path / "mirrored.json"
    subprocess.run([sys.executable, WORKER, "mirrored", str(out)], check=True, timeout=300)
    result = json.loads(out.read_text())
    assert result["replicas"] == 2
    # Linear in the per-replica losses: the same step exactly (row updates: RowAdam on the tables, settled after).
    for balancer in ("fixed", "uncertainty", "fixed, row updates"):
        assert result[balancer]["max_weight_difference"] < 1e-6, balancer
    for balancer in ("gradnorm", "pcgrad"):  # gradient norms and projections per replica: close, not equal
        assert result[balancer]["max_weight_difference"] < 0.05, balancer
    for balancer in (*BALANCERS, "fixed, row updates"):
        for loss in ("click_loss", "watch_time_loss", "interest_loss"):
            assert result[balancer]["after"][loss] < result[balancer]["before"][loss], (balancer, loss)


@pytest.mark.e2e
def test_two_workers_train_to_identical_weights_and_only_worker_0_is_chief(tmp_path):
    write_transformed_examples(tmp_path, n=512)
    workers = []
    for index, tf_config in enumerate(local_cluster(2)):
        env = {**os.environ, "TF_CONFIG": json.dumps(tf_config)}
        workers.append(subprocess.Popen([sys.executable, WORKER, "multi_worker", str(tmp_path / f"w{index}.npz"),
                                         str(tmp_path)], env=env))
    try:
        assert [w.wait(timeout=600) for w in workers] == [0, 0]
    finally:
        for w in workers:
            w.kill()
    first, second = (np.load(tmp_path / f"w{index}.npz") for index in range(2))
    assert bool(first["chief"]) and not bool(second["chief"])
    assert int(first["replicas"]) == 2
    for balancer in BALANCERS:
        weights = [key for key in first.files if key.startswith(f"{balancer}/weight_")]
        assert weights
        for key in weights:
            np.testing.assert_array_equal(first[key], second[key], err_msg=key)
        losses = first[f"{balancer}/loss"]
        assert len(losses) == 4 and losses[-1] < losses[0], balancer
