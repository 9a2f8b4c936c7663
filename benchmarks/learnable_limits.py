"""How much of each binary head's Bayes-limit AUC the logs let a model learn, on the benchmark's logs.

The Bayes limit scores the true probabilities, which need each user's latent factors (and, for conversion, the
user's own purchase propensity): terms that only that user's events reveal. For click and conversion this prints
held-out AUCs (conversion: on the clicked events) of
- the Bayes limit, and the true probability with those user terms taken out;
- oracle learners told every term of the true logit but the user terms, and those terms' prior, which estimate
  each user's terms (their posterior mode) from that user's training events. "told the item factors" is the most
  any model can hope for (a model has to learn everything else, too, from the same events). For conversion,
  "told the item and user factors" leaves only the purchase propensity to learn: the most that sharing with click
  (which can teach the user factors, not the propensity) could bring;
- for click, a learner told every term but the user x item one, fitting both factor sets by alternating
  posterior modes: what the events reveal of that interaction when no factor is given.

    .venv/bin/python benchmarks/learnable_limits.py [--events 200000] [--users 5000 --items 2000] [--rounds 8]
"""

import argparse
import dataclasses
import math
import sys

import numpy as np

from data.truth import roc_auc
from data.world import (
    CONVERSION_AFFINITY,
    DEVICES,
    USER_PURCHASE_STD,
    Events,
    LogSpec,
    World,
    build_world,
    entity_index,
    generate_span,
    true_params,
)


@dataclasses.dataclass(frozen=True)
class UserTerms:
    """One head's logit as offset + design . theta_user, with theta_user ~ N(0, prior_precision^-1)."""

    offset: np.ndarray  # [events]: the true logit without the user terms
    design: np.ndarray  # [events, k]: what multiplies the user terms
    prior_precision: np.ndarray  # [k, k]


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p / (1.0 - p))


def user_terms(world: World, events: Events, users: np.ndarray, items: np.ndarray) -> dict[str, UserTerms]:
    """click: theta = the user's factors u. conversion: theta = (purchase propensity, u[:half]).
    conversion_given_factors: theta = the purchase propensity alone, u[:half] . v[:half] moved into the offset."""
    devices = np.array([DEVICES.index(d) for d in events.features["device"].tolist()])
    no_user_terms = dataclasses.replace(world, user_factors=np.zeros_like(world.user_factors),
                                        user_purchase=np.zeros_like(world.user_purchase))
    truth = true_params(no_user_terms, users, items, events.features["hour"], devices)
    item_factors = world.item_factors[items]
    dim = item_factors.shape[1]
    half = math.ceil(dim / 2)
    factor_precision = math.sqrt(dim)  # the generator draws factors with variance dim^-1/2
    affinity_design = CONVERSION_AFFINITY * item_factors[:, :half]
    purchase_precision = USER_PURCHASE_STD**-2
    conversion_offset = _logit(truth["p_conversion"])
    affinity = np.einsum("ij,ij->i", affinity_design, world.user_factors[users, :half])
    return {
        "click": UserTerms(_logit(truth["p_click"]), item_factors, factor_precision * np.eye(dim)),
        "conversion": UserTerms(conversion_offset, np.hstack([np.ones((len(users), 1)), affinity_design]),
                                np.diag([purchase_precision] + [factor_precision] * half)),
        "conversion_given_factors": UserTerms(conversion_offset + affinity, np.ones((len(users), 1)),
                                              np.array([[purchase_precision]])),
    }


def oracle_logits(terms: UserTerms, users: np.ndarray, labels: np.ndarray, train: np.ndarray) -> np.ndarray:
    """offset + design . theta_user, theta_user the posterior mode given the user's ``train`` events."""
    theta = _modes(users, terms.design, terms.offset, labels, train, terms.prior_precision)
    return terms.offset + (theta[users] * terms.design).sum(axis=1)


def _modes(ids, design, offset, labels, train, prior_precision) -> np.ndarray:
    """[max id + 1, k]: for each id, the posterior mode of its terms given its ``train`` rows (zero if none)."""
    theta = np.zeros((ids.max() + 1, design.shape[1]))
    rows = np.flatnonzero(train)
    rows = rows[np.argsort(ids[rows], kind="stable")]
    for group in np.split(rows, np.flatnonzero(np.diff(ids[rows])) + 1):
        theta[ids[group[0]]] = _posterior_mode(design[group], offset[group], labels[group], prior_precision)
    return theta


def _posterior_mode(x, offset, y, prior_precision, steps: int = 30) -> np.ndarray:
    """argmin_t sum(log(1 + e^z) - y z) + t'Pt/2 with z = offset + x t: Newton's method with step halving."""
    def objective(t):
        z = offset + x @ t
        return np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * t @ prior_precision @ t

    t = np.zeros(x.shape[1])
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(offset + x @ t)))
        step = np.linalg.solve((x.T * (p * (1.0 - p))) @ x + prior_precision, x.T @ (y - p) - prior_precision @ t)
        scale, current = 1.0, objective(t)
        while objective(t + scale * step) > current and scale > 1e-6:
            scale /= 2
        t = t + scale * step
    return t


def both_factors_logits(offset: np.ndarray, users: np.ndarray, items: np.ndarray, labels: np.ndarray,
                        train: np.ndarray, dim: int, rounds: int) -> np.ndarray:
    """Click logits of a learner told every term but the user x item one: it fits the user and the item factors
    (true prior) by alternating posterior modes, each side given the other, from a random start."""
    prior_precision = math.sqrt(dim) * np.eye(dim)
    item_factors = np.random.default_rng(0).normal(0.0, dim**-0.25, (items.max() + 1, dim))
    user_factors = np.zeros((users.max() + 1, dim))
    for _ in range(rounds):
        user_factors = _modes(users, item_factors[items], offset, labels, train, prior_precision)
        item_factors = _modes(items, user_factors[users], offset, labels, train, prior_precision)
    return offset + (user_factors[users] * item_factors[items]).sum(axis=1)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--users", type=int, default=LogSpec.num_users)
    parser.add_argument("--items", type=int, default=LogSpec.num_items)
    parser.add_argument("--rounds", type=int, default=8, help="alternations of the both-factors learner")
    args = parser.parse_args(argv)
    spec = LogSpec(num_events=args.events, num_users=args.users, num_items=args.items)
    events = generate_span(spec, 1)
    users = entity_index(events.features["user_id"])
    train = np.random.default_rng(0).random(args.events) < 0.8
    labels = {"click": events.labels["click"].astype(np.float64),
              "conversion": np.nan_to_num(events.labels["conversion"].astype(np.float64))}
    present = {"click": np.ones(args.events, bool), "conversion": events.labels["click"] == 1}
    items = entity_index(events.features["item_id"])
    terms = user_terms(build_world(spec), events, users, items)
    click, conversion = terms["click"], terms["conversion"]
    clicked_train = train & present["conversion"]
    scores = {
        "click": {"Bayes limit": events.truth["p_click"], "without the user terms": click.offset,
                  "told the item factors": oracle_logits(click, users, labels["click"], train),
                  "learns both factor sets": both_factors_logits(click.offset, users, items, labels["click"], train,
                                                                 spec.latent_dim, args.rounds)},
        "conversion": {"Bayes limit": events.truth["p_conversion"], "without the user terms": conversion.offset,
                       "told the item factors": oracle_logits(conversion, users, labels["conversion"], clicked_train),
                       "told the item and user factors": oracle_logits(terms["conversion_given_factors"], users,
                                                                       labels["conversion"], clicked_train)},
    }
    columns = list(dict.fromkeys(c for head in scores.values() for c in head))
    print(f"held-out AUC ({args.events:,} events, {args.users:,} users, {args.items:,} items)\n")
    print("| head | " + " | ".join(columns) + " |\n" + "|---" * (len(columns) + 1) + "|")
    for head, by_column in scores.items():
        rows = ~train & present[head]
        cells = [f"{roc_auc(labels[head][rows].astype(int), by_column[c][rows]):.4f}"
                 if c in by_column else "n/a" for c in columns]
        print(f"| {head} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
