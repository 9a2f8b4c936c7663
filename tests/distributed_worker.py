"""One process of the distribution tests (tests/test_distribution.py starts it, as a worker of a real cluster).

    python tests/distributed_worker.py mirrored OUT.json
        two logical CPU devices, MirroredStrategy: for each balancer, one SGD step on the same global batch with
        and without the strategy; writes the largest weight difference and the losses before and after training
    python tests/distributed_worker.py multi_worker OUT.npz DATA_DIR
        MultiWorkerMirroredStrategy from TF_CONFIG: for each balancer, trains the helpers' tiny model through the
        Trainer's own input path (example_datasets over gzip TFRecords in DATA_DIR) and fit(); writes the final
        weights, the first and last epochs' losses and whether this worker is the chief
"""

import dataclasses
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import config  # noqa: E402,F401  (sets TF_USE_LEGACY_KERAS)

# isort: split
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

BALANCERS = ("fixed", "uncertainty", "gradnorm", "pcgrad")
ROW_UPDATES = "fixed, row updates"  # the fixed balancer, the id tables stepped by RowAdam (with its lazy decay)


def _models(strategy, balancer):
    """The helpers' tiny model with ``balancer`` (or ROW_UPDATES), built in ``strategy``'s scope, and plain SGD."""
    import tf_keras
    from helpers import tiny_model

    from models.row_optimizer import RowAdam

    with strategy.scope():
        if balancer == ROW_UPDATES:
            model = tiny_model(id_updates="rows", embedding_l2=0.5)
            model.compile(optimizer=tf_keras.optimizers.SGD(0.1),
                          id_optimizer=RowAdam(0.1, weight_decay=model.id_table_l2))
        else:
            model = tiny_model(balancing=balancer)
            model.compile(optimizer=tf_keras.optimizers.SGD(0.1))
    return model


def mirrored(out: str) -> None:
    (cpu,) = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from helpers import batch

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    data = batch(16)
    data["watch_time_weight"] = tf.constant([1.0, 0.0] * 8)  # each replica's half holds 4 watch-time labels
    result = {"replicas": strategy.num_replicas_in_sync}
    for balancer in (*BALANCERS, ROW_UPDATES):
        single = _models(tf.distribute.get_strategy(), balancer)
        replicated = _models(strategy, balancer)
        single(data)
        with strategy.scope():
            replicated(data)
        replicated.set_weights(single.get_weights())  # the same starting point
        dataset = tf.data.Dataset.from_tensors(data)
        single.fit(dataset, epochs=1, verbose=0)
        replicated.fit(dataset, epochs=1, verbose=0)  # the global batch of 16: 8 per replica
        difference = max(float(np.max(np.abs(a.numpy() - b.numpy())))  # the model's, not its metrics' totals
                         for a, b in zip(single.trainable_weights, replicated.trainable_weights, strict=True))
        repeated = tf.data.Dataset.from_tensors(batch(64)).repeat()
        before = replicated.evaluate(repeated, steps=1, return_dict=True, verbose=0)
        replicated.fit(repeated, steps_per_epoch=60, verbose=0)
        after = replicated.evaluate(repeated, steps=1, return_dict=True, verbose=0)
        result[balancer] = {"max_weight_difference": difference, "before": before, "after": after}
    with open(out, "w") as f:
        json.dump(result, f)


def multi_worker(out: str, data_dir: str) -> None:
    strategy = tf.distribute.MultiWorkerMirroredStrategy()  # before any other TensorFlow op
    from helpers import CONFIG, transformed_examples_schema
    from tfx_bsl.public import tfxio

    from models.distribution import is_chief
    from models.training import example_datasets, fit

    def factory(files, options, schema):
        return tfxio.TFExampleRecord(file_pattern=files, schema=schema,
                                     telemetry_descriptors=["test"]).TensorFlowDataset(options)

    model_config = dataclasses.replace(CONFIG.model, batch_size=32, epochs=4, early_stopping_patience=10)
    files = [f"{data_dir}/part-*.gz"]
    result = {"chief": np.array(is_chief(strategy)), "replicas": np.array(strategy.num_replicas_in_sync)}
    for balancer in BALANCERS:
        model = _models(strategy, balancer)
        train, evaluation = example_datasets(factory, files, files, transformed_examples_schema(), model_config)
        history, _ = fit(model, model_config, train, evaluation, train_steps=None, eval_steps=None, verbose=0)
        result[f"{balancer}/loss"] = np.array(history.history["loss"])
        for i, weight in enumerate(model.trainable_weights):
            result[f"{balancer}/weight_{i}"] = weight.numpy()
    np.savez(out, **result)


if __name__ == "__main__":
    {"mirrored": mirrored, "multi_worker": multi_worker}[sys.argv[1]](*sys.argv[2:])
