"""The simulated customer-service assistant behind the synthetic utterance logs, and the events drawn from it.

Each event is one utterance that a shop's customer typed (``app``, ``web``) or said (``voice``) to its assistant,
with the labels a team of annotators gave it: the intent, one to three topic keywords, the sentiment and one BIO
slot tag per token. The world (``INTENTS`` with long-tailed frequencies, the templates of each intent, some shared
by two to four intents, the slot values of each type in ``SLOT_TYPES`` with a head of common values and a tail of
rare ones, and how intents and slots drive the keywords and the sentiment) depends only on the seed, so all spans
share it; the events of span N are drawn from generators seeded with (seed, N): one for the text, one for the
labels. The same spec and span therefore always give the same events. ``data.writer`` writes them out.

An utterance is a template of its intent with slot values filled in, and around it what real logs hold: an opener,
context clauses that ramble (up to 60 tokens), a closing word, fillers (``FILLERS``, tagged ``O``), capitals and
typos (a swapped or dropped character, slot values included); voice has more fillers and typos and no punctuation.
Tokens are separated by single spaces, and punctuation (``? , . !``) is a token of its own, so whitespace and
word-and-punctuation tokenizers cut the same tokens, and ``slots`` has one tag per token. Everything around the
template is drawn independently of the intent, so the intent's posterior given the text is the one given the
template: one-hot for an intent's own templates, the prior times the template's probability under each intent for
a shared one. The logged intent is the user's, a draw from that posterior.

Label columns in ``Events.labels`` (object arrays, None where the label is absent from the Example): ``intent``
(bytes), ``sentiment`` (bytes, one of ``SENTIMENTS``), ``keywords`` and ``slots`` (tuples of bytes). Truth
(``Events.truth``, aligned with the events): ``intent_probs`` [n, K] (the posterior the intent was drawn from),
``sentiment_probs`` [n, 3] (a softmax of cue words, "!", words in capitals and the intent), ``keyword_probs``
[n, M] (P(keyword in the labelled set | text): independent keywords driven by the intent and the slot types
present, conditioned on one to three of them), ``slots_clean`` (bytes [n]: the tags before annotation noise,
space-joined), and the names of their columns (``intent_names``, ``sentiment_names``, ``keyword_names``,
``slot_types``). ``pipeline.reports.assistant_limits.best_achievable`` scores the truth against a written span's
labels: each head's best achievable score.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from data.world import Events, _ids, _sample_rows, _sigmoid, _softmax, _zipf_weights

FEATURE_DTYPES = {"event_id": "bytes", "text": "bytes", "channel": "bytes"}
LABEL_DTYPES = {"intent": "bytes", "keywords": "bytes", "sentiment": "bytes", "slots": "bytes"}
CHANNELS = (b"app", b"web", b"voice")
SENTIMENTS = ("negative", "neutral", "positive")
KEYWORDS = ("order", "delivery", "refund", "return", "billing", "payment", "account", "product", "address",
            "discount", "store", "security")
SLOT_TYPES = ("date", "time", "product", "order_id", "city", "amount", "payment_method", "person")
FILLERS = ("um", "uh", "like", "please", "so")
PUNCTUATION = ("?", ",", ".", "!")
MAX_TOKENS = 60

# Each intent's own templates, most frequent intent first; "{type}" is a slot of that type, "?" ends a question.
_TEMPLATES = {
    "track_order": ("where is my order ?", "where is my order {order_id} ?", "has my {product} shipped yet ?",
                    "track my package", "when will my order {order_id} arrive ?",
                    "can you tell me the status of order {order_id} ?", "my order has not arrived yet",
                    "track order"),
    "cancel_order": ("cancel my order {order_id}", "i want to cancel the {product} i ordered {date}",
                     "please cancel order {order_id}", "how do i cancel my order ?", "cancel order",
                     "i need to cancel the order i placed {date} , it was {amount}"),
    "refund_request": ("i want a refund for the {product}", "where is my refund of {amount} ?",
                       "please refund {amount} to my {payment_method}",
                       "i still have not received my refund for order {order_id}", "how long does a refund take ?"),
    "talk_to_agent": ("agent", "human", "i want to talk to a human", "let me speak to a real person",
                      "can i talk to {person} ?", "connect me with customer service"),
    "greeting": ("hi", "hello", "hey", "hey there", "good morning", "hello , anyone there ?"),
    "return_item": ("how do i return the {product} ?", "i want to return my {product} i bought {date}",
                    "can i return a {product} without the box ?", "send me a return label for order {order_id}"),
    "change_address": ("change my delivery address to {city}", "i moved to {city} , please update my address",
                       "ship order {order_id} to {city} instead", "can i change the shipping address ?"),
    "schedule_delivery": ("can you deliver it on {date} at {time} ?", "i want delivery on {date}",
                          "reschedule my delivery to {date} {time}",
                          "i will not be home {date} , can you deliver after {time} ?"),
    "payment_issue": ("my {payment_method} was declined", "payment failed with my {payment_method}",
                      "i was charged twice for {amount}", "why does my payment keep failing ?"),
    "product_info": ("does the {product} come in another size ?", "tell me more about the {product}",
                     "is the {product} waterproof ?",
                     "what is the difference between the {product} and the {product} ?"),
    "check_stock": ("is the {product} in stock ?", "do you have {product} in the {city} store ?",
                    "when will the {product} be back in stock ?"),
    "reset_password": ("i forgot my password", "reset my password please", "i cant log in",
                       "the password reset email never came"),
    "thank_you": ("thanks", "thank you", "thank you so much", "thanks a lot for the help", "great , thanks !"),
    "billing_question": ("why was i charged {amount} ?", "explain the charge of {amount} on {date}",
                         "i do not recognise a charge on my {payment_method}",
                         "can i get an invoice for order {order_id} ?"),
    "change_order": ("change the size of the {product} in my order", "add a {product} to order {order_id}",
                     "can i change my order ?", "swap the {product} for a {product}"),
    "apply_coupon": ("my coupon code is not working", "do you have a discount code ?",
                     "apply my promo code to order {order_id}", "i was promised {amount} off"),
    "store_hours": ("what time does the {city} store open ?", "are you open on {date} ?", "store hours in {city}",
                    "is the store open at {time} ?"),
    "complaint": ("this is the worst service ever", "your {product} broke after a week",
                  "i am very unhappy with {person} from your team",
                  "the courier was rude and left my parcel in the rain"),
    "goodbye": ("bye", "goodbye", "that is all , bye", "ok bye"),
    "update_account": ("change my email address", "update my name to {person}", "i need to update my phone number",
                       "change the card on my account to {payment_method}"),
    "gift_card": ("check my gift card balance", "buy a gift card of {amount} for {person}",
                  "my gift card does not work"),
    "shipping_cost": ("how much is shipping to {city} ?", "is delivery free over {amount} ?",
                      "why is shipping so expensive ?"),
    "warranty_claim": ("my {product} is still under warranty", "warranty repair for the {product} i bought {date}",
                       "how do i claim the warranty ?"),
    "pickup_in_store": ("can i pick up the {product} in {city} ?", "collect order {order_id} at the store at {time}",
                        "is click and collect available in {city} ?"),
    "subscription_cancel": ("cancel my membership", "stop my subscription", "unsubscribe me from the premium plan"),
    "report_fraud": ("someone used my {payment_method} without permission", "i did not place order {order_id}",
                     "there are orders on my account i did not make"),
    "delete_account": ("delete my account", "close my account and remove my data",
                       "i want all my personal data deleted"),
    "price_match": ("the {product} is cheaper elsewhere", "will you match a price of {amount} for the {product} ?",
                    "do you price match ?"),
}
INTENTS = tuple(_TEMPLATES)
# Templates shared by several intents: the text alone cannot tell them apart.
_SHARED_TEMPLATES = (
    ("i have a problem with my order", ("track_order", "cancel_order", "refund_request", "change_order")),
    ("i have a problem with order {order_id}", ("track_order", "cancel_order", "refund_request", "change_order")),
    ("i want to cancel", ("cancel_order", "subscription_cancel")),
    ("i want my money back", ("refund_request", "return_item")),
    ("i want my money back for the {product}", ("refund_request", "return_item", "warranty_claim")),
    ("there is a charge of {amount} i do not understand", ("billing_question", "payment_issue", "report_fraud")),
    ("i cant get into my account", ("reset_password", "report_fraud", "update_account")),
    ("when will it get here ?", ("track_order", "schedule_delivery")),
    ("my {product} is broken", ("warranty_claim", "return_item", "complaint")),
    ("help", ("talk_to_agent", "greeting")),
    ("do you have the {product} ?", ("check_stock", "product_info")),
    ("can i get it on {date} ?", ("schedule_delivery", "pickup_in_store")),
    ("delivery to {city}", ("shipping_cost", "change_address", "schedule_delivery")),
    ("ok thanks bye", ("thank_you", "goodbye")),
)
# Intent frequencies: Zipf with an exponential cut-off over the rank, from ~20% down to ~0.3%.
_INTENT_SHIFT, _INTENT_CUTOFF = 3.0, 14.0

# Slot values: a head of common values (Zipf weights) and a tail drawn from a large space of rare ones.
_HEAD_VALUES = {
    "date": ("today", "tomorrow", "yesterday", "next friday", "this weekend", "monday", "last week", "next week",
             "tuesday", "saturday", "last monday", "the 15th", "two days ago", "next month", "sunday", "wednesday",
             "thursday", "friday", "christmas eve", "the end of the month"),
    "time": ("noon", "tonight", "this afternoon", "this evening", "in the morning", "3 pm", "10 am", "5 pm",
             "midnight", "after work", "lunchtime", "9 am", "6 pm", "2 pm"),
    "product": ("phone case", "laptop", "blue running shoes", "headphones", "coffee maker", "winter jacket",
                "yoga mat", "desk lamp", "backpack", "smart watch", "jeans", "sofa", "tv", "vacuum cleaner",
                "gaming chair", "kettle", "sneakers", "dress", "tablet", "printer"),
    "order_id": (),
    "city": ("new york", "london", "paris", "berlin", "chicago", "los angeles", "madrid", "toronto", "são paulo",
             "zürich", "boston", "seattle", "manchester", "munich", "rome", "dublin", "austin", "málaga", "kraków",
             "lyon"),
    "amount": ("10 dollars", "20 dollars", "50 dollars", "100 dollars", "5 dollars", "15 euros", "30 dollars",
               "twenty dollars", "fifty bucks", "25 pounds", "99 cents", "200 dollars"),
    "payment_method": ("credit card", "paypal", "debit card", "visa", "mastercard", "apple pay", "gift card",
                       "google pay", "amex", "bank transfer", "klarna", "cash on delivery"),
    "person": ("anna", "john", "maria", "david", "sarah", "mike", "the manager", "your supervisor", "lisa", "james",
               "emma", "josé", "chen", "priya", "ahmed"),
}
_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
           "november", "december")
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_COLORS = ("red", "blue", "black", "white", "green", "grey", "pink", "navy", "beige", "teal", "olive", "maroon",
           "silver", "gold", "purple", "orange")
_MATERIALS = ("leather", "suede", "cotton", "wool", "denim", "linen", "silk", "canvas", "bamboo", "steel", "ceramic",
              "wooden", "velvet", "nylon")
_GOODS = ("boots", "loafers", "scarf", "gloves", "wallet", "belt", "mug", "teapot", "blanket", "cushion", "lamp",
          "chair", "hat", "bag", "jacket", "vest", "shorts", "socks", "sandals", "rug", "basket", "bowl", "vase",
          "watch strap", "phone stand", "pillow", "towel", "apron", "tote", "hoodie")
_TOWN_STARTS = ("ash", "elm", "oak", "mill", "stone", "fair", "green", "west", "north", "river", "bright", "clear",
                "cold", "deer", "fox", "glen", "hazel", "iron", "kings", "lake", "maple", "pine", "red", "silver")
_TOWN_ENDS = ("ford", "brook", "ton", "field", "ville", "wood", "bury", "dale", "port", "ham", "worth", "mouth",
              "stead", "bridge", "haven", "wick")
_TOWN_SUFFIXES = ("", " falls", " springs", " heights", " junction")
_CURRENCIES = ("dollars", "euros", "pounds", "bucks")
_CARDS = ("visa", "mastercard", "amex", "debit card", "credit card")
_FIRST_NAMES = ("olivia", "liam", "noah", "ava", "lucas", "mia", "ethan", "chloe", "mateo", "zoe", "omar", "nina",
                "hugo", "ines", "felix", "lea", "ravi", "yuki", "sven", "aisha", "tomas", "elena", "kofi", "mara",
                "ivan", "lena", "diego", "sofia", "arjun", "hana")
_LAST_NAMES = ("martinez", "nguyen", "schmidt", "rossi", "kowalski", "okafor", "tanaka", "dubois", "silva", "jensen",
               "novak", "haddad", "murphy", "costa", "ibrahim", "larsen", "moreau", "fischer", "kumar", "santos",
               "weber", "popescu", "horvat", "lindqvist", "garcia", "ward", "bauer", "yilmaz", "park", "ortiz")
_TITLES = ("mr", "mrs", "ms", "dr")


def _ordinal(day: int) -> str:
    return f"{day}{'th' if 10 <= day % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(day % 10, 'th')}"


def _pick(rng: np.random.Generator, options: tuple) -> str:
    return options[int(rng.integers(len(options)))]


def _rare_date(rng: np.random.Generator) -> str:
    month, day, form = _pick(rng, _MONTHS), int(rng.integers(1, 32)), int(rng.integers(4))
    return (f"{month} {day}", f"{_ordinal(day)} of {month}", f"{month} {_ordinal(day)}",
            f"{_pick(rng, _WEEKDAYS)} {month} {day}")[form]


def _rare_time(rng: np.random.Generator) -> str:
    hour, minute, form = int(rng.integers(1, 13)), f"{5 * int(rng.integers(1, 12)):02d}", int(rng.integers(3))
    if form == 0:
        return f"{hour} {minute}"
    part = _pick(rng, ("am", "pm")) if form == 1 else f"in the {_pick(rng, ('morning', 'afternoon', 'evening'))}"
    return f"{hour} {minute} {part}"


def _rare_product(rng: np.random.Generator) -> str:
    return f"{_pick(rng, _COLORS)} {_pick(rng, _MATERIALS)} {_pick(rng, _GOODS)}"


def _rare_order_id(rng: np.random.Generator) -> str:
    digits = int(rng.integers(10**7, 10**8))
    if rng.random() < 0.7:
        return str(digits)
    return f"{chr(97 + int(rng.integers(26)))}{chr(97 + int(rng.integers(26)))}{digits % 10**6:06d}"


def _rare_city(rng: np.random.Generator) -> str:
    return f"{_pick(rng, _TOWN_STARTS)}{_pick(rng, _TOWN_ENDS)}{_pick(rng, _TOWN_SUFFIXES)}"


def _rare_amount(rng: np.random.Generator) -> str:
    if rng.random() < 0.6:
        return f"{int(rng.integers(1, 1000))} {_pick(rng, _CURRENCIES)}"
    return f"{int(rng.integers(1, 200))} dollars and {int(rng.integers(1, 100))} cents"


def _rare_payment_method(rng: np.random.Generator) -> str:
    return f"{_pick(rng, _CARDS)} ending in {int(rng.integers(10_000)):04d}"


def _rare_person(rng: np.random.Generator) -> str:
    if rng.random() < 0.85:
        return f"{_pick(rng, _FIRST_NAMES)} {_pick(rng, _LAST_NAMES)}"
    return f"{_pick(rng, _TITLES)} {_pick(rng, _LAST_NAMES)}"


_RARE_VALUE = {"date": _rare_date, "time": _rare_time, "product": _rare_product, "order_id": _rare_order_id,
               "city": _rare_city, "amount": _rare_amount, "payment_method": _rare_payment_method,
               "person": _rare_person}
_TITLE_CASED = ("city", "person")  # capitalised in sentence-cased utterances

# What goes around the template, drawn independently of the intent.
_OPENERS = ("hi", "hello", "hey", "good morning", "excuse me", "hi there")
_CLOSERS = ("thanks", "thank you", "please help", "asap", "thanks in advance", "cheers", "help me please")
_CLAUSES = ("i ordered a {product} {date}", "i paid with {payment_method}", "my order number is {order_id}",
            "i live in {city}", "my name is {person}", "it cost {amount}", "i have been waiting since {date}",
            "i am at home after {time}", "this is the third time i am writing", "i am so angry right now",
            "this is ridiculous", "honestly this is unacceptable", "i have been a customer for years",
            "sorry to bother you", "hope you are well", "you guys are usually great", "i love your shop",
            "i tried the website already", "my wife ordered it for me", "the app keeps crashing",
            "i bought it for {person}", "it was supposed to come {date}")
_CONNECTIVES = (",", ".", "and", "so", "but", ", and")
_CLAUSE_START, _CLAUSE_MORE, _CLAUSE_AFTER = 0.22, 0.5, 0.3  # P(>= 1 clause), P(one more), P(after the template)
_OPENER_RATE, _CLOSER_RATE, _BARE_ONE_WORD = 0.15, 0.10, 0.8
_CHANNEL_P = np.array([0.5, 0.3, 0.2])
_VOICE_FILLERS, _VOICE_TYPOS = 3.0, 2.0  # voice's filler and typo rates, as multiples of the spec's

# Sentiment cues (on the logged, lowercased tokens) and the weights of the negative / positive logits.
_ANGRY = frozenset(("angry", "ridiculous", "unacceptable", "worst", "terrible", "rude", "useless", "awful",
                    "furious", "scam", "unhappy", "broke", "broken", "never"))
_THANKFUL = frozenset(("thanks", "thank", "great", "love", "appreciate", "cheers", "awesome", "perfect"))
_SENTIMENT_BASE = np.array([0.0, 1.2, -0.4])
_CUE_WEIGHT, _CAPS_WEIGHT, _EXCLAIM_WEIGHT = 1.3, 0.7, 0.6
_INTENT_SENTIMENT = {  # (negative, positive) added to the logits
    "complaint": (2.2, -1.0), "report_fraud": (1.4, -0.5), "payment_issue": (0.9, 0.0), "delete_account": (0.8, 0.0),
    "refund_request": (0.5, 0.0), "subscription_cancel": (0.4, 0.0), "track_order": (0.3, 0.0),
    "cancel_order": (0.3, 0.0), "price_match": (0.3, 0.0), "thank_you": (-1.0, 2.6), "goodbye": (0.0, 1.0),
    "greeting": (0.0, 0.6), "gift_card": (0.0, 0.5), "product_info": (0.0, 0.3),
}
# Keyword logits: a base, each intent's topics, each slot type present; world noise on the intents' rows.
_KEYWORD_BASE = -3.0
_INTENT_KEYWORDS = {
    "track_order": {"order": 3.0, "delivery": 3.0}, "cancel_order": {"order": 3.5, "refund": 1.0},
    "refund_request": {"refund": 3.5, "payment": 1.0, "billing": 1.0}, "talk_to_agent": {"account": 0.5},
    "return_item": {"return": 3.5, "refund": 1.5, "product": 1.0},
    "change_address": {"address": 3.5, "delivery": 2.0}, "schedule_delivery": {"delivery": 3.5, "address": 0.5},
    "payment_issue": {"payment": 3.5, "billing": 2.0}, "product_info": {"product": 3.5},
    "check_stock": {"product": 3.0, "store": 1.5}, "reset_password": {"account": 3.5, "security": 2.0},
    "billing_question": {"billing": 3.5, "payment": 1.5}, "change_order": {"order": 3.5, "product": 1.5},
    "apply_coupon": {"discount": 3.5, "billing": 1.0}, "store_hours": {"store": 3.5},
    "complaint": {"product": 1.5, "delivery": 1.5, "order": 1.0}, "update_account": {"account": 3.5, "address": 1.0},
    "gift_card": {"payment": 2.5, "discount": 1.5}, "shipping_cost": {"delivery": 3.0, "billing": 1.5},
    "warranty_claim": {"product": 3.0, "return": 2.0}, "pickup_in_store": {"store": 3.0, "order": 1.5},
    "subscription_cancel": {"account": 2.5, "billing": 2.0},
    "report_fraud": {"security": 3.5, "payment": 2.0, "account": 1.5},
    "delete_account": {"account": 3.5, "security": 1.5}, "price_match": {"discount": 2.5, "product": 2.0},
}
_SLOT_KEYWORDS = {
    "date": {"delivery": 0.8}, "time": {"delivery": 0.6, "store": 0.6}, "product": {"product": 1.2},
    "order_id": {"order": 1.5}, "city": {"address": 1.0, "store": 0.6, "delivery": 0.5},
    "amount": {"billing": 1.0, "refund": 0.6, "payment": 0.4}, "payment_method": {"payment": 1.5, "billing": 0.5},
    "person": {"account": 0.8},
}
MAX_KEYWORDS = 3
_WORLD_STREAM, _TEXT_STREAM, _LABEL_STREAM = 10, 11, 12


@dataclass(frozen=True)
class AssistantSpec:
    """Size and randomness of the synthetic assistant logs; ``num_events`` is per span. Rates are per event unless
    said otherwise."""

    num_events: int = 10_000
    seed: int = 0
    intent_missing_rate: float = 0.03  # intent absent from the Example
    keywords_rate: float = 0.40  # keywords labelled (1 to 3 of KEYWORDS)
    sentiment_rate: float = 0.30  # sentiment rated
    slots_rate: float = 0.60  # slots tagged by the annotators
    ambiguous_rate: float = 0.12  # an intent that shares templates uses one of them (instead of its own)
    rare_value_share: float = 0.30  # per slot value: drawn from its type's tail of rare values (order ids: always)
    typo_rate: float = 0.03  # per word of 3+ characters: a swapped or dropped character (voice: twice as many)
    filler_rate: float = 0.04  # per gap between words: a filler word (voice: three times as many)
    slot_drop_rate: float = 0.03  # per annotated slot span: left out (tagged O)
    slot_retype_rate: float = 0.02  # per annotated slot span: tagged with another slot type

    def __post_init__(self) -> None:
        if self.num_events <= 0:
            raise ValueError(f"AssistantSpec.num_events must be positive, got {self.num_events}")
        if self.seed < 0:
            raise ValueError(f"AssistantSpec.seed must be non-negative, got {self.seed}")
        for spec_field in fields(self):
            value = getattr(self, spec_field.name)
            if spec_field.name.endswith(("_rate", "_share")) and not 0.0 <= value <= 1.0:
                raise ValueError(f"AssistantSpec.{spec_field.name} must be in [0, 1], got {value}")
        if self.slot_drop_rate + self.slot_retype_rate > 1.0:
            raise ValueError("AssistantSpec.slot_drop_rate + slot_retype_rate must be at most 1")


@dataclass(frozen=True)
class Template:
    """One template: its tokens (a slot as "{type}"), whether it asks a question, the intents that use it."""

    tokens: tuple[str, ...]
    question: bool
    intents: tuple[int, ...]


def _template(text: str, intents: tuple[str, ...]) -> Template:
    tokens = tuple(text.split())
    question = tokens[-1] == "?"
    return Template(tokens[:-1] if question else tokens, question, tuple(INTENTS.index(i) for i in intents))


TEMPLATES = tuple([_template(text, (intent,)) for intent, texts in _TEMPLATES.items() for text in texts]
                  + [_template(text, intents) for text, intents in _SHARED_TEMPLATES])


def _check_templates() -> None:
    """Distinct templates must read differently (punctuation aside): the intent posterior is the template's."""
    words = [tuple(t for t in template.tokens if t not in PUNCTUATION) for template in TEMPLATES]
    if len(set(words)) != len(words):
        raise ValueError("two templates read the same")


_check_templates()


@dataclass(frozen=True)
class AssistantWorld:
    """Everything that is fixed across spans."""

    intent_prior: np.ndarray  # [K]
    template_probs: np.ndarray  # [K, T]: P(template | intent)
    template_posterior: np.ndarray  # [T, K]: P(intent | template)
    value_weights: dict[str, np.ndarray]  # per slot type: sampling weights of its head values
    sentiment_intent: np.ndarray  # [K, 3] added to the sentiment logits
    keyword_intent: np.ndarray  # [K, M] keyword logits of each intent (base included)
    keyword_slot: np.ndarray  # [S, M] added for each slot type present


def intent_prior() -> np.ndarray:
    """The intents' frequencies (in ``INTENTS`` order): Zipf with an exponential cut-off over the rank."""
    rank = np.arange(1, len(INTENTS) + 1)
    weights = np.exp(-rank / _INTENT_CUTOFF) / (rank + _INTENT_SHIFT)
    return weights / weights.sum()


def _table(rows: dict[str, dict[str, float]], names: tuple[str, ...], columns: tuple[str, ...]) -> np.ndarray:
    table = np.zeros((len(names), len(columns)))
    for name, row in rows.items():
        for column, value in row.items():
            table[names.index(name), columns.index(column)] = value
    return table


def build_assistant_world(spec: AssistantSpec) -> AssistantWorld:
    """Draw the templates' weights, the slot values' weights and the label tables (independent of the span)."""
    rng = np.random.default_rng([_WORLD_STREAM, spec.seed])
    prior = intent_prior()
    num_intents, num_templates = len(INTENTS), len(TEMPLATES)
    template_probs = np.zeros((num_intents, num_templates))
    for intent in range(num_intents):
        own = [t for t, template in enumerate(TEMPLATES) if template.intents == (intent,)]
        shared = [t for t, template in enumerate(TEMPLATES) if len(template.intents) > 1 and intent in template.intents]
        share = spec.ambiguous_rate if shared else 0.0
        template_probs[intent, own] = (1.0 - share) * rng.dirichlet(np.full(len(own), 3.0))
        template_probs[intent, shared] = share / max(len(shared), 1)
    joint = prior[:, None] * template_probs
    sentiment_intent = np.zeros((num_intents, len(SENTIMENTS)))
    for name, (negative, positive) in _INTENT_SENTIMENT.items():
        sentiment_intent[INTENTS.index(name), [0, 2]] = negative, positive
    return AssistantWorld(
        intent_prior=prior,
        template_probs=template_probs,
        template_posterior=(joint / joint.sum(axis=0, keepdims=True)).T,
        value_weights={name: _zipf_weights(rng, len(values), 1.0) for name, values in _HEAD_VALUES.items()},
        sentiment_intent=sentiment_intent + rng.normal(0.0, 0.25, sentiment_intent.shape),
        keyword_intent=_KEYWORD_BASE + _table(_INTENT_KEYWORDS, INTENTS, KEYWORDS)
        + rng.normal(0.0, 0.4, (num_intents, len(KEYWORDS))),
        keyword_slot=_table(_SLOT_KEYWORDS, SLOT_TYPES, KEYWORDS),
    )


class _Utterance:
    """Builds one utterance as parallel lists of tokens and their clean BIO tags."""

    def __init__(self, rng: np.random.Generator, world: AssistantWorld, spec: AssistantSpec, voice: bool):
        self.rng, self.world, self.spec, self.voice = rng, world, spec, voice
        self.tokens: list[str] = []
        self.tags: list[str] = []

    def fill(self, words: tuple[str, ...] | list[str]) -> tuple[list[str], list[str]]:
        """Template words with each "{type}" slot filled with a value of that type, and their tags."""
        tokens, tags = [], []
        for word in words:
            if word.startswith("{"):
                slot = word[1:-1]
                value = self._value(slot).split()
                tokens += value
                tags += [f"B-{slot}"] + [f"I-{slot}"] * (len(value) - 1)
            else:
                tokens.append(word)
                tags.append("O")
        return tokens, tags

    def _value(self, slot: str) -> str:
        head = _HEAD_VALUES[slot]
        if not head or self.rng.random() < self.spec.rare_value_share:
            return _RARE_VALUE[slot](self.rng)
        return head[int(self.rng.choice(len(head), p=self.world.value_weights[slot]))]

    def append(self, words: tuple[str, ...] | list[str]) -> None:
        tokens, tags = self.fill(words)
        self.tokens, self.tags = self.tokens + tokens, self.tags + tags

    def prepend(self, words: tuple[str, ...] | list[str]) -> None:
        tokens, tags = self.fill(words)
        self.tokens, self.tags = tokens + self.tokens, tags + self.tags

    def add_clauses(self) -> None:
        """Context clauses before or after what is there (the count has a geometric tail), up to ``MAX_TOKENS``
        less room for an opener, a closer and fillers."""
        more = self.rng.random() < _CLAUSE_START
        while more:
            clause = _pick(self.rng, _CLAUSES).split()
            if self.rng.random() < _CLAUSE_AFTER:
                connective = [] if self.tokens[-1] in PUNCTUATION else _pick(self.rng, _CONNECTIVES).split()
                tokens, tags = self.fill(connective + clause)
                tokens, tags = self.tokens + tokens, self.tags + tags
            else:
                tokens, tags = self.fill(clause + _pick(self.rng, _CONNECTIVES).split())
                tokens, tags = tokens + self.tokens, tags + self.tags
            if len(tokens) > MAX_TOKENS - 8:
                return
            self.tokens, self.tags = tokens, tags
            more = self.rng.random() < _CLAUSE_MORE

    def add_fillers(self) -> None:
        """Insert filler words (tag O) between words, never inside a slot value nor before punctuation."""
        rate = min(1.0, self.spec.filler_rate * (_VOICE_FILLERS if self.voice else 1.0))
        tokens, tags = [], []
        room = MAX_TOKENS - len(self.tokens)
        for token, tag in zip(self.tokens, self.tags, strict=True):
            if room > 0 and not tag.startswith("I-") and token not in PUNCTUATION and self.rng.random() < rate:
                tokens.append(_pick(self.rng, FILLERS))
                tags.append("O")
                room -= 1
            tokens.append(token)
            tags.append(tag)
        self.tokens, self.tags = tokens, tags

    def drop_punctuation(self) -> None:
        kept = [i for i, token in enumerate(self.tokens) if token not in PUNCTUATION]
        self.tokens, self.tags = [self.tokens[i] for i in kept], [self.tags[i] for i in kept]

    def case(self) -> None:
        """Mostly lower case; some utterances sentence-cased (names too), some with words in capitals."""
        style = self.rng.random()
        if self.voice or style < 0.6:
            return
        if style < 0.9:
            for i, (token, tag) in enumerate(zip(self.tokens, self.tags, strict=True)):
                if token == "i" or i == 0 or tag[2:] in _TITLE_CASED:
                    self.tokens[i] = token[:1].upper() + token[1:]
            return
        words = [i for i, token in enumerate(self.tokens) if token.isalnum()]
        if self.rng.random() >= 0.3 and len(words) > 2:
            words = self.rng.choice(words, 2, replace=False).tolist()
        for i in words:
            self.tokens[i] = self.tokens[i].upper()

    def add_typos(self) -> None:
        """A swapped or a dropped character in some words of three or more characters."""
        rate = min(1.0, self.spec.typo_rate * (_VOICE_TYPOS if self.voice else 1.0))
        for i, token in enumerate(self.tokens):
            if len(token) >= 3 and token.isalnum() and self.rng.random() < rate:
                at = int(self.rng.integers(len(token) - 1))
                if self.rng.random() < 0.5:
                    self.tokens[i] = token[:at] + token[at + 1] + token[at] + token[at + 2:]
                else:
                    self.tokens[i] = token[:at] + token[at + 1:]


def _utterance(rng: np.random.Generator, world: AssistantWorld, spec: AssistantSpec, template: Template,
               voice: bool) -> tuple[list[str], list[str]]:
    """The tokens of one utterance of ``template`` and their clean tags."""
    utterance = _Utterance(rng, world, spec, voice)
    utterance.append(template.tokens)
    if len(template.tokens) > 1 or rng.random() >= _BARE_ONE_WORD:
        punctuation = rng.random()
        if template.question and punctuation < 0.7:
            utterance.append(["?"])
        elif not template.question and punctuation < 0.3:
            utterance.append(["."])
        elif not template.question and punctuation < 0.38:
            utterance.append(["!"])
        utterance.add_clauses()
        if rng.random() < _OPENER_RATE:
            utterance.prepend(_pick(rng, _OPENERS).split() + ([","] if rng.random() < 0.6 else []))
        if rng.random() < _CLOSER_RATE:
            utterance.append(_pick(rng, _CLOSERS).split())
        utterance.add_fillers()
        if voice:
            utterance.drop_punctuation()
    utterance.case()
    utterance.add_typos()
    return utterance.tokens, utterance.tags


def _sentiment_logits(tokens: list[str]) -> np.ndarray:
    """The cue words' part of the sentiment logits, from the logged tokens."""
    lowered = [token.lower() for token in tokens]
    angry = min(3, sum(token in _ANGRY for token in lowered))
    thankful = min(3, sum(token in _THANKFUL for token in lowered))
    capitals = min(3, sum(len(token) > 1 and token.isupper() for token in tokens))
    exclaim = min(2, lowered.count("!"))
    return _SENTIMENT_BASE + np.array([_CUE_WEIGHT * angry + _CAPS_WEIGHT * capitals + _EXCLAIM_WEIGHT * exclaim,
                                       0.0, _CUE_WEIGHT * thankful + _EXCLAIM_WEIGHT * exclaim])


def _count_distribution(p: np.ndarray, most: int) -> np.ndarray:
    """[n, most + 1]: P(exactly j of the independent events of probabilities ``p`` [n, m] happen), j <= most."""
    dist = np.zeros((len(p), most + 1))
    dist[:, 0] = 1.0
    for column in p.T:
        shifted = np.zeros_like(dist)
        shifted[:, 1:] = dist[:, :-1]
        dist = dist * (1.0 - column[:, None]) + shifted * column[:, None]
    return dist


def keyword_marginals(p: np.ndarray) -> np.ndarray:
    """P(keyword k in the set) for sets of independent keywords (probabilities ``p`` [n, M]) conditioned on holding
    1 to ``MAX_KEYWORDS`` of them: p_k * P(0..MAX-1 of the others) / P(1..MAX of all)."""
    total = _count_distribution(p, MAX_KEYWORDS)[:, 1:].sum(axis=1)
    others = np.stack([_count_distribution(np.delete(p, k, axis=1), MAX_KEYWORDS - 1).sum(axis=1)
                       for k in range(p.shape[1])], axis=1)
    return p * others / total[:, None]


def _sample_keywords(rng: np.random.Generator, p: np.ndarray) -> np.ndarray:
    """[n, M] bools: independent keywords of probabilities ``p``, redrawn until a row holds 1 to MAX_KEYWORDS."""
    drawn = rng.random(p.shape) < p
    while True:
        count = drawn.sum(axis=1)
        redraw = (count < 1) | (count > MAX_KEYWORDS)
        if not redraw.any():
            return drawn
        drawn[redraw] = rng.random((int(redraw.sum()), p.shape[1])) < p[redraw]


def _spans(tags: list[str]) -> list[tuple[int, int]]:
    """(start, end) of each slot span of well-formed clean tags (B- then I-s)."""
    starts = [i for i, tag in enumerate(tags) if tag.startswith("B-")]
    ends = [next((j for j in range(start + 1, len(tags)) if not tags[j].startswith("I-")), len(tags))
            for start in starts]
    return list(zip(starts, ends, strict=True))


def _annotate(rng: np.random.Generator, tags: list[str], spec: AssistantSpec) -> tuple[bytes, ...]:
    """The annotators' tags: each clean span left out or given another type now and then."""
    noisy = list(tags)
    for start, end in _spans(tags):
        draw = rng.random()
        if draw < spec.slot_drop_rate:
            noisy[start:end] = ["O"] * (end - start)
        elif draw < spec.slot_drop_rate + spec.slot_retype_rate:
            others = [s for s in SLOT_TYPES if s != tags[start][2:]]
            other = _pick(rng, tuple(others))
            noisy[start:end] = [f"B-{other}"] + [f"I-{other}"] * (end - start - 1)
    return tuple(tag.encode() for tag in noisy)


def _names(names: tuple[str, ...]) -> np.ndarray:
    return np.array([name.encode() for name in names], dtype=np.bytes_)


def _present(rng: np.random.Generator, n: int, rate: float) -> np.ndarray:
    return rng.random(n) < rate


def generate_assistant_span(spec: AssistantSpec, span: int) -> Events:
    """Draw the utterances of one span and their labels (in memory) and return them."""
    if span < 0:
        raise ValueError(f"span must be non-negative, got {span}")
    world = build_assistant_world(spec)
    rng = np.random.default_rng([_TEXT_STREAM, spec.seed, span])
    n = spec.num_events
    intents = rng.choice(len(INTENTS), n, p=world.intent_prior)
    templates = _sample_rows(rng, world.template_probs[intents])
    channels = rng.choice(len(CHANNELS), n, p=_CHANNEL_P)
    voice = CHANNELS.index(b"voice")
    utterances = [_utterance(rng, world, spec, TEMPLATES[t], c == voice) for t, c in zip(templates, channels,
                                                                                         strict=True)]
    intent_probs = world.template_posterior[templates]
    sentiment_probs = _softmax(np.stack([_sentiment_logits(tokens) for tokens, _ in utterances])
                               + intent_probs @ world.sentiment_intent)
    slot_present = np.array([[f"B-{slot}" in tags for slot in SLOT_TYPES] for _, tags in utterances], float)
    keyword_p = _sigmoid(intent_probs @ world.keyword_intent + slot_present @ world.keyword_slot)

    label_rng = np.random.default_rng([_LABEL_STREAM, spec.seed, span])
    sentiments = _sample_rows(label_rng, sentiment_probs)
    keywords = _sample_keywords(label_rng, keyword_p)
    has_intent = ~_present(label_rng, n, spec.intent_missing_rate)
    has_sentiment = _present(label_rng, n, spec.sentiment_rate)
    has_keywords = _present(label_rng, n, spec.keywords_rate)
    has_slots = _present(label_rng, n, spec.slots_rate)
    intent_names, sentiment_names, keyword_names = _names(INTENTS), _names(SENTIMENTS), _names(KEYWORDS)
    labels = {name: np.full(n, None, dtype=object) for name in LABEL_DTYPES}
    for i, (_, tags) in enumerate(utterances):
        if has_intent[i]:
            labels["intent"][i] = intent_names[intents[i]]
        if has_sentiment[i]:
            labels["sentiment"][i] = sentiment_names[sentiments[i]]
        if has_keywords[i]:
            labels["keywords"][i] = tuple(keyword_names[keywords[i]].tolist())
        if has_slots[i]:
            labels["slots"][i] = _annotate(label_rng, tags, spec)
    event_id = _ids(f"s{span}-", np.arange(n), n, 6)
    features = {
        "event_id": event_id,
        "text": np.array([" ".join(tokens).encode() for tokens, _ in utterances], dtype=object),
        "channel": np.array(CHANNELS)[channels],
    }
    truth = {
        "event_id": event_id,
        "intent_probs": intent_probs,
        "sentiment_probs": sentiment_probs,
        "keyword_probs": keyword_marginals(keyword_p),
        "slots_clean": np.array([" ".join(tags).encode() for _, tags in utterances], dtype=np.bytes_),
        "intent_names": intent_names,
        "sentiment_names": sentiment_names,
        "keyword_names": keyword_names,
        "slot_types": _names(SLOT_TYPES),
    }
    return Events(features=features, labels=labels, truth=truth, dtypes={**FEATURE_DTYPES, **LABEL_DTYPES})
