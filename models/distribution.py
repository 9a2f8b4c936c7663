"""Where the Trainer trains: one registry entry per ``model.distribution``, each a tf.distribute strategy.

With more than one replica, each replica's gradients are scaled by 1 / replicas before the optimizer sums them
across replicas (MultiTaskModel.train_step), so a step moves the weights as one step on the global batch would;
every balancer (fixed, uncertainty, GradNorm, PCGrad) works on its replica's share of the batch and all gradients
are all-reduced once, by the optimizer.
"""

import json
import os
import socket

import tensorflow as tf

from config import Distribution

DISTRIBUTIONS = {
    Distribution.NONE: tf.distribute.get_strategy,
    Distribution.MIRRORED: tf.distribute.MirroredStrategy,
    Distribution.MULTI_WORKER: tf.distribute.MultiWorkerMirroredStrategy,
}


def make_strategy(distribution: Distribution) -> tf.distribute.Strategy:
    """The strategy for ``model.distribution`` (multi_worker reads its cluster and its own task from TF_CONFIG);
    run_fn builds the model in its scope."""
    return DISTRIBUTIONS[distribution]()


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True for the worker that exports the model: the only one, the 'chief' task, or worker 0 of a cluster
    without a chief (TF_CONFIG's convention)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    return resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in cluster


def local_cluster(workers: int) -> list[dict]:
    """The TF_CONFIG of each of ``workers`` workers of a cluster on 127.0.0.1 (free ports), worker 0 first: the
    distribution tests and benchmarks/multi_worker.py start one process per entry."""
    sockets = [socket.socket() for _ in range(workers)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    cluster = {"worker": [f"127.0.0.1:{s.getsockname()[1]}" for s in sockets]}
    for s in sockets:
        s.close()
    return [{"cluster": cluster, "task": {"type": "worker", "index": index}} for index in range(workers)]
