"""How much of click's Bayes-limit AUC the logs let a model learn, on the benchmark's default logs.

Prints two numbers next to the Bayes limit: the AUC of the true click probability with the latent user x item
interaction (which only the ids carry) taken out, and the best held-out AUC, over epochs, of a matrix
factorisation trained on the ids alone (user and item embeddings, their dot product and biases).

    .venv/bin/python benchmarks/click_ceiling.py [--events 200000] [--epochs 8] [--dim 8] [--l2 1e-5]
"""

import argparse
import dataclasses
import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tf_keras  # noqa: E402

from data import generator  # noqa: E402


def _indices(ids: np.ndarray) -> np.ndarray:
    return np.array([int(i[1:]) for i in ids.tolist()])  # b"u00042" -> 42


def without_interaction_auc(spec: generator.LogSpec, events: generator.Events) -> float:
    """AUC of the true click probability recomputed with every user factor set to zero (no U.V term)."""
    world = generator._build_world(spec)
    no_factors = dataclasses.replace(world, user_factors=np.zeros_like(world.user_factors))
    devices = np.array([generator.DEVICES.index(d) for d in events.features["device"].tolist()])
    truth = generator._true_params(no_factors, _indices(events.features["user_id"]),
                                   _indices(events.features["item_id"]), events.features["hour"], devices)
    return generator.roc_auc(events.labels["click"], truth["p_click"])


def factorisation_auc(spec, events, train: np.ndarray, args) -> float:
    """Best held-out AUC over epochs of a logistic matrix factorisation of the ids."""
    users, items = _indices(events.features["user_id"]), _indices(events.features["item_id"])
    clicks = events.labels["click"].astype(np.float32)
    user_in, item_in = tf_keras.Input((), dtype="int32"), tf_keras.Input((), dtype="int32")
    l2 = tf_keras.regularizers.l2(args.l2)
    u = tf_keras.layers.Embedding(spec.num_users, args.dim, embeddings_regularizer=l2)(user_in)
    v = tf_keras.layers.Embedding(spec.num_items, args.dim, embeddings_regularizer=l2)(item_in)
    logit = (tf_keras.layers.Dot(axes=1)([u, v]) + tf_keras.layers.Embedding(spec.num_users, 1)(user_in)
             + tf_keras.layers.Embedding(spec.num_items, 1)(item_in))
    model = tf_keras.Model([user_in, item_in], tf_keras.layers.Dense(1, activation="sigmoid")(logit))
    model.compile(tf_keras.optimizers.Adam(0.002), "binary_crossentropy")
    held_out = ~train
    best = 0.0
    for epoch in range(args.epochs):
        model.fit([users[train], items[train]], clicks[train], batch_size=256, epochs=1, verbose=0)
        scores = model.predict([users[held_out], items[held_out]], batch_size=4096, verbose=0).ravel()
        auc = generator.roc_auc(clicks[held_out], scores)
        print(f"  factorisation epoch {epoch + 1}: held-out AUC {auc:.4f}", flush=True)
        best = max(best, auc)
    return best


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--dim", type=int, default=8)
    parser.add_argument("--l2", type=float, default=1e-5)
    args = parser.parse_args(argv)
    spec = generator.LogSpec(num_events=args.events)
    events = generator.generate_span(spec, 1)
    train = np.random.default_rng(0).random(args.events) < 0.8
    bayes = generator.roc_auc(events.labels["click"][~train], events.truth["p_click"][~train])
    print(f"click AUC, {args.events:,} events: Bayes limit (held-out) {bayes:.4f}; "
          f"true probability without the id interaction {without_interaction_auc(spec, events):.4f}")
    print(f"ids-only matrix factorisation, best held-out: {factorisation_auc(spec, events, train, args):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
