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
  posterior modes: what the events reveal of that interaction when no factor is given;
- the learnable limit of both heads ("learns the factor sets and the propensity"): a learner told every term but
  the user ones and the user x item ones, fitting the user factors, the purchase propensity and the item factors
  from the click and conversion events together. It knows the form of the true model and must learn every
  latent term from the same training events as a model: the yardstick of benchmarks/zoo_benchmark.py.

    .venv/bin/python benchmarks/learnable_limits.py [--events 200000] [--users 5000 --items 2000] [--rounds 8]
"""

import argparse
import dataclasses
import math
import sys

import numpy as np
from provenance import measured_line  # noqa: E402  (benchmarks/, beside this script)

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
from models.evaluation.scores import roc_auc


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


def joint_learner_logits(click_offset: np.ndarray, conversion_offset: np.ndarray, users: np.ndarray,
                         items: np.ndarray, click: np.ndarray, conversion: np.ndarray, train: np.ndarray,
                         clicked: np.ndarray, dim: int, rounds: int) -> dict[str, np.ndarray]:
    """{"click", "conversion"}: logits of a learner told every term but the user ones and the user x item ones of
    both heads, which fits the user factors, each user's purchase propensity and the item factors from the click
    events and the clicked events' conversions together (true priors; alternating posterior modes from a random
    start). Sharing click's factor sets is all a multi-task model could bring to conversion, so this is
    conversion's learnable limit."""
    half = math.ceil(dim / 2)
    factor_precision = math.sqrt(dim)
    user_prior = np.diag([factor_precision] * dim + [USER_PURCHASE_STD**-2])
    item_prior = factor_precision * np.eye(dim)
    rows = np.concatenate([np.arange(len(users)), np.arange(len(users))])  # click rows, then conversion rows
    is_conversion = np.repeat([False, True], len(users))
    fit_rows = np.concatenate([train, train & clicked])
    labels = np.concatenate([click, conversion])
    to_conversion = np.zeros(dim)
    to_conversion[:half] = CONVERSION_AFFINITY  # conversion reads 0.7 u[:half] . v[:half]
    item_factors = np.random.default_rng(0).normal(0.0, dim**-0.25, (items.max() + 1, dim))
    user_terms = np.zeros((users.max() + 1, dim + 1))  # factors, then the purchase propensity
    offset = np.concatenate([click_offset, conversion_offset])
    for _ in range(rounds):
        v = item_factors[items[rows]] * np.where(is_conversion[:, None], to_conversion, 1.0)
        user_design = np.hstack([v, is_conversion[:, None].astype(float)])
        user_terms = _modes(users[rows], user_design, offset, labels, fit_rows, user_prior)
        u = user_terms[users[rows], :dim] * np.where(is_conversion[:, None], to_conversion, 1.0)
        purchase = np.where(is_conversion, user_terms[users[rows], dim], 0.0)
        item_factors = _modes(items[rows], u, offset + purchase, labels, fit_rows, item_prior)
    u, v = user_terms[users, :dim], item_factors[items]
    return {"click": click_offset + (u * v).sum(axis=1),
            "conversion": conversion_offset + (u * v * to_conversion).sum(axis=1) + user_terms[users, dim]}


LEARNABLE_LIMIT = "learns the factor sets and the propensity"  # the column the zoo benchmark holds models to


def limit_aucs(spec: LogSpec, events: Events, train: np.ndarray, rounds: int = 8) -> dict[str, dict[str, float]]:
    """{head: {column: held-out AUC}} for click and conversion (conversion: on the clicked events), each learner
    fitted on the ``train`` events and scored on the others. Called by main and benchmarks/zoo_benchmark.py."""
    users = entity_index(events.features["user_id"])
    items = entity_index(events.features["item_id"])
    labels = {"click": events.labels["click"].astype(np.float64),
              "conversion": np.nan_to_num(events.labels["conversion"].astype(np.float64))}
    clicked = events.labels["click"] == 1
    present = {"click": np.ones(len(users), bool), "conversion": clicked}
    terms = user_terms(build_world(spec), events, users, items)
    click, conversion = terms["click"], terms["conversion"]
    joint = joint_learner_logits(click.offset, conversion.offset, users, items, labels["click"],
                                 labels["conversion"], train, clicked, spec.latent_dim, rounds)
    scores = {
        "click": {"Bayes limit": events.truth["p_click"], "without the user terms": click.offset,
                  "told the item factors": oracle_logits(click, users, labels["click"], train),
                  "learns both factor sets": both_factors_logits(click.offset, users, items, labels["click"], train,
                                                                 spec.latent_dim, rounds),
                  LEARNABLE_LIMIT: joint["click"]},
        "conversion": {"Bayes limit": events.truth["p_conversion"], "without the user terms": conversion.offset,
                       "told the item factors": oracle_logits(conversion, users, labels["conversion"],
                                                              train & clicked),
                       "told the item and user factors": oracle_logits(terms["conversion_given_factors"], users,
                                                                       labels["conversion"], train & clicked),
                       LEARNABLE_LIMIT: joint["conversion"]},
    }
    return {head: {column: roc_auc(labels[head][~train & present[head]].astype(int), score[~train & present[head]])
                   for column, score in by_column.items()} for head, by_column in scores.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--users", type=int, default=LogSpec.num_users)
    parser.add_argument("--items", type=int, default=LogSpec.num_items)
    parser.add_argument("--rounds", type=int, default=8, help="alternations of the factor learners")
    args = parser.parse_args(argv)
    spec = LogSpec(num_events=args.events, num_users=args.users, num_items=args.items)
    train = np.random.default_rng(0).random(args.events) < 0.8
    aucs = limit_aucs(spec, generate_span(spec, 1), train, args.rounds)
    columns = list(dict.fromkeys(c for head in aucs.values() for c in head))
    print(f"held-out AUC ({args.events:,} events, {args.users:,} users, {args.items:,} items)\n")
    print("| head | " + " | ".join(columns) + " |\n" + "|---" * (len(columns) + 1) + "|")
    for head, by_column in aucs.items():
        cells = [f"{by_column[c]:.4f}" if c in by_column else "n/a" for c in columns]
        print(f"| {head} | " + " | ".join(cells) + " |")
    print("\n" + measured_line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
