"""The simulated world behind the synthetic impression logs, and the events drawn from it.

The world (users, items, latent factors, categories, preferences) depends only on the seed and the sizes in the
``LogSpec``, so all spans share it; the events of span N are drawn from a generator seeded with (seed, N). The same
spec and span therefore always give the same events. ``data.writer`` writes them out; benchmarks rebuild the world
(``build_world``, ``true_params``) to score learners that are told part of the truth.

Label arrays in ``Events.labels``: ``click`` is int64 and never missing. ``conversion``,
``watch_time`` and ``interest`` are float32 where NaN means "absent from the Example" and -1 means
"written as the sentinel value -1" (see ``LogSpec.minus_one_fraction``). ``reactions`` (multi-label: which of
``REACTIONS`` followed a click) is a float32 [events, 4] multi-hot array with the same conventions per row;
it is drawn from streams of its own, so adding it left every other column unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Column dtypes of the logged Examples ("bytes" / "int" / "float"); not the pipeline config's feature kinds.
FEATURE_DTYPES = {
    "event_id": "bytes",
    "user_id": "bytes",
    "item_id": "bytes",
    "item_category": "bytes",
    "device": "bytes",
    "country": "bytes",
    "hour": "int",
    "user_activity": "float",
    "item_popularity": "float",
    "price": "float",
}
LABEL_DTYPES = {"click": "int", "conversion": "int", "watch_time": "float", "interest": "int", "reactions": "int"}
REACTIONS = ("like", "share", "comment", "save")
DEVICES = (b"mobile", b"desktop", b"tablet")
COUNTRIES = (b"US", b"IN", b"BR", b"GB", b"DE", b"JP", b"MX", b"FR")
INTEREST_MISSING_RATE = 0.10
WATCH_TIME_SHAPE = 2.0

_COUNTRY_P = np.array([0.30, 0.18, 0.12, 0.10, 0.09, 0.08, 0.07, 0.06])
_DEVICE_P = np.array([0.62, 0.28, 0.10])
_DEVICE_CLICK = np.array([0.0, 0.15, -0.2])
_DEVICE_CONVERSION = np.array([-0.3, 0.35, 0.0])
_HOURS = np.arange(24)
_HOUR_P = np.exp(np.cos(2 * np.pi * (_HOURS - 20) / 24) + 0.4 * np.cos(4 * np.pi * (_HOURS - 8) / 24))
_HOUR_P /= _HOUR_P.sum()
_HOUR_CLICK = 0.25 * np.cos(2 * np.pi * (_HOURS - 22) / 24)
_REACTION_BASE = np.array([-0.5, -2.0, -1.6, -1.2])
USER_PURCHASE_STD = 0.8  # each user's own conversion propensity (logit scale)
CONVERSION_AFFINITY = 0.7  # weight of u[:half] . v[:half] in the conversion logit
_WORLD_STREAM, _EVENT_STREAM, _REACTION_WORLD_STREAM, _REACTION_EVENT_STREAM = 0, 1, 2, 3


@dataclass(frozen=True)
class LogSpec:
    """Size and randomness of the synthetic logs; ``num_events`` is per span."""

    num_events: int = 20_000
    num_users: int = 5_000
    num_items: int = 2_000
    num_categories: int = 12
    num_interests: int = 5
    latent_dim: int = 8
    seed: int = 0
    minus_one_fraction: float = 0.0  # share of missing labels written as -1 instead of left absent

    def __post_init__(self) -> None:
        sizes = ("num_events", "num_users", "num_items", "num_categories", "num_interests", "latent_dim")
        for name in sizes:
            if getattr(self, name) <= 0:
                raise ValueError(f"LogSpec.{name} must be positive, got {getattr(self, name)}")
        if self.seed < 0:
            raise ValueError(f"LogSpec.seed must be non-negative, got {self.seed}")
        if not 0.0 <= self.minus_one_fraction <= 1.0:
            raise ValueError(f"LogSpec.minus_one_fraction must be in [0, 1], got {self.minus_one_fraction}")


@dataclass(frozen=True)
class Events:
    """One span of events: feature columns, label columns (missing as in the module docstring), truth, and the
    logged dtype ("bytes" / "int" / "float") of each feature and label column, by which ``data.writer`` writes them.
    ``data.assistant`` returns its utterances in the same form."""

    features: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]
    truth: dict[str, np.ndarray]
    dtypes: dict[str, str]


@dataclass(frozen=True)
class World:
    """Everything that is fixed across spans."""

    user_weight: np.ndarray
    user_factors: np.ndarray
    user_country: np.ndarray
    user_device_p: np.ndarray
    user_activity: np.ndarray
    user_purchase: np.ndarray
    user_interest: np.ndarray
    user_watch: np.ndarray
    item_weight: np.ndarray
    item_factors: np.ndarray
    item_category: np.ndarray
    item_popularity: np.ndarray
    item_price: np.ndarray
    category_country: np.ndarray
    category_interest: np.ndarray
    category_watch: np.ndarray
    user_reaction: np.ndarray
    category_reaction: np.ndarray


def _zipf_weights(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    """Long-tail sampling weights 1/rank^exponent, with ranks shuffled over the ids."""
    weights = 1.0 / np.arange(1, n + 1) ** exponent
    return rng.permutation(weights / weights.sum())


def _standardize(x: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Zero mean, unit variance under ``weights`` (e.g. how often each entity shows up in the logs)."""
    mean = np.average(x, weights=weights)
    return (x - mean) / (np.sqrt(np.average((x - mean) ** 2, weights=weights)) + 1e-12)


def _sample_rows(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One categorical draw per row of ``probs`` (rows sum to 1)."""
    draws = (probs.cumsum(axis=1) < rng.random((len(probs), 1))).sum(axis=1)
    return np.minimum(draws, probs.shape[1] - 1)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _ids(prefix: str, indices: np.ndarray, count: int, min_width: int) -> np.ndarray:
    """Byte-string ids like b"u00042", zero-padded wide enough for ``count`` distinct ids."""
    width = max(min_width, len(str(count - 1)))
    return np.array([f"{prefix}{i:0{width}d}" for i in indices.tolist()], dtype=np.bytes_)


def entity_index(ids: np.ndarray) -> np.ndarray:
    """Return the world row index of each logged user or item id (b"u00042" -> 42, b"i00007" -> 7)."""
    return np.array([int(i[1:]) for i in ids.tolist()])


def build_world(spec: LogSpec) -> World:
    """Draw users, items and their fixed attributes (independent of the span); return them as a ``World``."""
    rng = np.random.default_rng([_WORLD_STREAM, spec.seed])
    nu, ni, nc, d = spec.num_users, spec.num_items, spec.num_categories, spec.latent_dim
    factor_scale = d**-0.25  # makes U_u . V_i have unit variance
    user_weight = _zipf_weights(rng, nu, 0.7)
    item_weight = _zipf_weights(rng, ni, 0.9)
    user_factors = rng.normal(0.0, factor_scale, (nu, d))
    category = rng.integers(nc, size=ni)
    category_log_price = rng.normal(3.0, 0.8, nc)
    reaction_rng = np.random.default_rng([_REACTION_WORLD_STREAM, spec.seed])
    return World(
        user_weight=user_weight,
        user_factors=user_factors,
        user_country=rng.choice(len(COUNTRIES), nu, p=_COUNTRY_P),
        user_device_p=rng.dirichlet(4.0 * _DEVICE_P, nu),
        user_activity=np.exp(1.0 + 0.3 * _standardize(np.log(user_weight)) + 0.5 * rng.standard_normal(nu)),
        user_purchase=rng.normal(0.0, USER_PURCHASE_STD, nu),
        user_interest=rng.normal(0.0, 1.0, (nu, spec.num_interests)),
        user_watch=_standardize(user_factors @ rng.standard_normal(d)),
        item_weight=item_weight,
        item_factors=rng.normal(0.0, factor_scale, (ni, d)),
        item_category=category,
        item_popularity=10.0 * ni * item_weight * np.exp(0.1 * rng.standard_normal(ni)),
        item_price=np.exp(category_log_price[category] + 0.5 * rng.standard_normal(ni)),
        category_country=rng.normal(0.0, 0.3, (nc, len(COUNTRIES))),
        category_interest=rng.normal(0.0, 1.5, (nc, spec.num_interests)),
        category_watch=rng.normal(0.0, 0.35, nc),
        user_reaction=reaction_rng.normal(0.0, 0.8, (nu, len(REACTIONS))),
        category_reaction=reaction_rng.normal(0.0, 0.5, (nc, len(REACTIONS))),
    )


def true_params(
    world: World, users: np.ndarray, items: np.ndarray, hours: np.ndarray, devices: np.ndarray
) -> dict[str, np.ndarray]:
    """Return the true p_click, p_conversion, watch_time_mean, reaction_probs (given click) and interest_probs
    per event, keyed by those names.

    Coefficients are tuned so the default LogSpec gives CTR ~0.19 (Bayes AUC ~0.78) and CVR ~0.14.
    """
    u, v = world.user_factors[users], world.item_factors[items]
    d = u.shape[1]
    half = math.ceil(d / 2)
    conversion_affinity = (u[:, :half] * v[:, :half]).sum(axis=1)
    watch_affinity = (u[:, d // 2 :] * v[:, d // 2 :]).sum(axis=1)
    category = world.item_category[items]
    click_logit = (
        -1.95
        + 0.35 * _standardize(np.log(world.user_activity), world.user_weight)[users]
        + 0.3 * _standardize(np.log(world.item_popularity), world.item_weight)[items]
        + _DEVICE_CLICK[devices]
        + _HOUR_CLICK[hours]
        + world.category_country[category, world.user_country[users]]
        + (u * v).sum(axis=1)
    )
    conversion_logit = (
        -2.4
        + CONVERSION_AFFINITY * conversion_affinity
        + world.user_purchase[users]
        - 0.5 * _standardize(np.log(world.item_price), world.item_weight)[items]
        + _DEVICE_CONVERSION[devices]
    )
    log_watch = np.log(1.4) + world.category_watch[category] + 0.25 * world.user_watch[users]
    return {
        "p_click": _sigmoid(click_logit),
        "p_conversion": _sigmoid(conversion_logit),
        "watch_time_mean": np.exp(log_watch + 0.3 * watch_affinity),
        "interest_probs": _softmax(world.user_interest[users] + world.category_interest[category]),
        "reaction_probs": _sigmoid(_REACTION_BASE + world.user_reaction[users] + world.category_reaction[category]
                                   + 0.5 * (u * v).sum(axis=1, keepdims=True)),
    }


def _with_missing(
    values: np.ndarray, present: np.ndarray, rng: np.random.Generator, minus_one_fraction: float
) -> np.ndarray:
    """float32 label column (or [events, k] multi-hot rows): NaN where absent, -1 for the sentinel share."""
    rows = (-1,) + (1,) * (values.ndim - 1)
    sentinel = rng.random(len(values)) < minus_one_fraction
    missing = np.where(sentinel, -1.0, np.nan).reshape(rows)
    return np.where(present.reshape(rows), values, missing).astype(np.float32)


def _sample_labels(
    truth: dict[str, np.ndarray], rng: np.random.Generator, reaction_rng: np.random.Generator,
    minus_one_fraction: float
) -> dict[str, np.ndarray]:
    """Sample every label from the truth; the draws do not depend on ``minus_one_fraction``."""
    n = len(truth["p_click"])
    click = rng.random(n) < truth["p_click"]
    conversion = rng.random(n) < truth["p_conversion"]
    watch_time = rng.gamma(WATCH_TIME_SHAPE, truth["watch_time_mean"] / WATCH_TIME_SHAPE)
    interest = _sample_rows(rng, truth["interest_probs"])
    interest_present = rng.random(n) >= INTEREST_MISSING_RATE
    return {
        "click": click.astype(np.int64),
        "conversion": _with_missing(conversion, click, rng, minus_one_fraction),
        "watch_time": _with_missing(watch_time, click, rng, minus_one_fraction),
        "interest": _with_missing(interest, interest_present, rng, minus_one_fraction),
        "reactions": _with_missing(reaction_rng.random(truth["reaction_probs"].shape) < truth["reaction_probs"],
                                   click, reaction_rng, minus_one_fraction),
    }


def generate_span(spec: LogSpec, span: int) -> Events:
    """Draw the events of one span (in memory) and return them."""
    if span < 0:
        raise ValueError(f"span must be non-negative, got {span}")
    world = build_world(spec)
    rng = np.random.default_rng([_EVENT_STREAM, spec.seed, span])
    n = spec.num_events
    users = rng.choice(spec.num_users, n, p=world.user_weight)
    items = rng.choice(spec.num_items, n, p=world.item_weight)
    hours = rng.choice(24, n, p=_HOUR_P)
    devices = _sample_rows(rng, world.user_device_p[users])
    truth = true_params(world, users, items, hours, devices)
    reaction_rng = np.random.default_rng([_REACTION_EVENT_STREAM, spec.seed, span])
    labels = _sample_labels(truth, rng, reaction_rng, spec.minus_one_fraction)
    event_id = _ids(f"s{span}-", np.arange(n), n, 6)
    features = {
        "event_id": event_id,
        "user_id": _ids("u", users, spec.num_users, 5),
        "item_id": _ids("i", items, spec.num_items, 5),
        "item_category": _ids("cat_", world.item_category[items], spec.num_categories, 2),
        "device": np.array(DEVICES)[devices],
        "country": np.array(COUNTRIES)[world.user_country[users]],
        "hour": hours.astype(np.int64),
        "user_activity": world.user_activity[users].astype(np.float32),
        "item_popularity": world.item_popularity[items].astype(np.float32),
        "price": world.item_price[items].astype(np.float32),
    }
    return Events(features=features, labels=labels, truth={"event_id": event_id, **truth},
                  dtypes={**FEATURE_DTYPES, **LABEL_DTYPES})
