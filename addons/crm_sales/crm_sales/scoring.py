"""Win probability of an open deal: naive Bayes over categorical features, with an explanation.

Model (additive in log-odds, so every feature's contribution can be shown on its own)::

    log_odds(won | x) = log(P(won) / P(lost)) + Σ_f log(P(x_f | won) / P(x_f | lost))
    P(won)          = (n_won + 1) / (n + 2)                                  # Laplace on the prior
    P(v | class)    = (count(f = v, class) + α) / (rows of class with f + α·K_f)

``K_f`` is the number of distinct values of feature ``f`` in the history and ``α`` the smoothing (1 by
default). A value the history has never seen contributes nothing (effect 0): the model has no evidence
either way, and smoothing alone would otherwise turn "unknown" into a penalty for the larger class.
A feature missing from the deal is skipped. With no history the prediction is the prior, 0.5.

Standard features: ``stage``, ``team``, ``source``, ``region``, ``industry``, ``value_band``
(:func:`value_band`) and ``activity_band`` (:func:`activity_band`); any other categorical feature works too.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

__all__ = [
    "FEATURES",
    "Factor",
    "Model",
    "Prediction",
    "Tally",
    "activity_band",
    "train",
    "value_band",
]

FEATURES = ("stage", "team", "source", "region", "industry", "value_band", "activity_band")

# Upper bounds (exclusive) in the deal's currency; bands rather than raw amounts because naive Bayes here
# is categorical, and a handful of bands keeps enough history in each to be meaningful.
_VALUE_BANDS = ((Decimal(10_000), "<10k"), (Decimal(100_000), "10k-100k"), (Decimal(1_000_000), "100k-1M"))
_ACTIVITY_BANDS = ((1, "0"), (3, "1-2"), (6, "3-5"), (11, "6-10"))


def value_band(amount: Decimal) -> str:
    """Band a deal amount: ``<10k``, ``10k-100k``, ``100k-1M`` or ``>=1M``."""
    for bound, label in _VALUE_BANDS:
        if amount < bound:
            return label
    return ">=1M"


def activity_band(count: int) -> str:
    """Band a number of logged activities: ``0``, ``1-2``, ``3-5``, ``6-10`` or ``11+``."""
    for bound, label in _ACTIVITY_BANDS:
        if count < bound:
            return label
    return "11+"


@dataclass(frozen=True, slots=True)
class Factor:
    """One feature value's contribution to the log-odds of winning: > 0 raises the probability."""

    feature: str
    value: str
    effect: float
    is_seen: bool = True  # False: the history never saw this value, so it contributed nothing

    @property
    def direction(self) -> str:
        """``"raises"``, ``"lowers"`` or ``"neutral"``, for an explanation sentence."""
        if self.effect > 0:
            return "raises"
        return "lowers" if self.effect < 0 else "neutral"


@dataclass(frozen=True, slots=True)
class Prediction:
    """Probability of winning, the base rate it started from, and factors sorted by |effect| (largest first)."""

    probability: float
    factors: list[Factor]
    base_probability: float


def sigmoid(x: float) -> float:
    """The probability of log-odds ``x``."""
    return _sigmoid(x)


def _sigmoid(x: float) -> float:
    # Written both ways so a very confident model does not overflow math.exp.
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


@dataclass(frozen=True)
class Model:
    """Counts learned from closed deals; cheap to keep in memory and to rebuild nightly."""

    n_won: int
    n_lost: int
    # feature -> value -> (won count, lost count)
    counts: Mapping[str, Mapping[str, tuple[int, int]]]
    # feature -> (won rows having the feature, lost rows having it)
    rows_with: Mapping[str, tuple[int, int]]
    alpha: float = 1.0
    _cache: dict[tuple[str, str], float] = field(default_factory=dict, repr=False, compare=False)

    @property
    def n_samples(self) -> int:
        """Number of closed deals the model was trained on."""
        return self.n_won + self.n_lost

    @property
    def prior_log_odds(self) -> float:
        """log(P(won) / P(lost)) with Laplace smoothing; 0 (probability 0.5) with no history."""
        return math.log((self.n_won + 1) / (self.n_lost + 1))

    def effect(self, feature: str, value: str) -> float | None:
        """Log-odds contribution of ``feature = value``, or ``None`` if the history never saw that value."""
        values = self.counts.get(feature)
        if values is None or value not in values:
            return None
        key = (feature, value)
        if key not in self._cache:
            won, lost = values[value]
            rows_won, rows_lost = self.rows_with[feature]
            k = len(values)
            p_won = (won + self.alpha) / (rows_won + self.alpha * k)
            p_lost = (lost + self.alpha) / (rows_lost + self.alpha * k)
            self._cache[key] = math.log(p_won / p_lost)
        return self._cache[key]

    def predict(self, features: Mapping[str, str]) -> Prediction:
        """Probability that a deal with ``features`` is won, with each feature's effect on it."""
        log_odds = self.prior_log_odds
        factors: list[Factor] = []
        for name, value in features.items():
            effect = self.effect(name, value)
            if effect is None:
                factors.append(Factor(name, value, 0.0, is_seen=False))
            else:
                log_odds += effect
                factors.append(Factor(name, value, effect))
        factors.sort(key=lambda f: (-abs(f.effect), f.feature))
        return Prediction(
            probability=_sigmoid(log_odds),
            factors=factors,
            base_probability=_sigmoid(self.prior_log_odds),
        )


class Tally:
    """Counts of closed deals added a batch at a time, so training never needs the whole history in memory."""

    def __init__(self) -> None:
        self.n_won = self.n_lost = 0
        self.counts: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
        self.rows_with: dict[str, list[int]] = defaultdict(lambda: [0, 0])

    def add(self, features: Mapping[str, str], won: bool) -> None:
        """Count one closed deal."""
        column = 0 if won else 1
        if won:
            self.n_won += 1
        else:
            self.n_lost += 1
        for name, value in features.items():
            self.counts[name][str(value)][column] += 1
            self.rows_with[name][column] += 1

    def model(self, *, alpha: float = 1.0) -> Model:
        """The :class:`Model` of what was counted; ``alpha`` is the Laplace smoothing (must be > 0)."""
        if alpha <= 0:
            raise ValueError("alpha must be > 0")
        return Model(
            n_won=self.n_won,
            n_lost=self.n_lost,
            counts={f: {v: (c[0], c[1]) for v, c in values.items()} for f, values in self.counts.items()},
            rows_with={f: (c[0], c[1]) for f, c in self.rows_with.items()},
            alpha=alpha,
        )


def train(history: Iterable[tuple[Mapping[str, str], bool]], *, alpha: float = 1.0) -> Model:
    """Learn a :class:`Model` from closed deals: ``(features, won)`` pairs, features as strings.

    ``alpha`` is the Laplace smoothing added to every count (must be > 0).
    """
    if alpha <= 0:
        raise ValueError("alpha must be > 0")
    tally = Tally()
    for features, won in history:
        tally.add(features, won)
    return tally.model(alpha=alpha)
