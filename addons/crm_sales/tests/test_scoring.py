"""Win probability: a hand-computed example, edge cases, monotonicity and the sign of each explanation."""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

import pytest
from crm_sales.scoring import activity_band, train, value_band
from hypothesis import assume, given, settings
from hypothesis import strategies as st

HISTORY = [
    ({"stage": "proposal", "source": "referral"}, True),
    ({"stage": "proposal", "source": "web"}, True),
    ({"stage": "proposal", "source": "web"}, False),
    ({"stage": "qualification", "source": "web"}, False),
    ({"stage": "qualification", "source": "referral"}, False),
]


def test_hand_computed_probability() -> None:
    # 2 won, 3 lost. Prior odds (2+1)/(3+1) = 3/4.
    # stage (K=2): P(proposal|won) = (2+1)/(2+2) = 3/4, P(proposal|lost) = (1+1)/(3+2) = 2/5
    # source (K=2): P(referral|won) = (1+1)/(2+2) = 1/2, P(referral|lost) = (1+1)/(3+2) = 2/5
    odds = Fraction(3, 4) * (Fraction(3, 4) / Fraction(2, 5)) * (Fraction(1, 2) / Fraction(2, 5))
    assert odds == Fraction(225, 128)
    expected = float(odds / (1 + odds))  # 225/353 ≈ 0.6374

    prediction = train(HISTORY).predict({"stage": "proposal", "source": "referral"})
    assert prediction.probability == pytest.approx(expected, rel=1e-12)
    assert prediction.base_probability == pytest.approx(3 / 7)
    effects = {f.feature: f.effect for f in prediction.factors}
    assert effects["stage"] == pytest.approx(math.log(Fraction(15, 8)))
    assert effects["source"] == pytest.approx(math.log(Fraction(5, 4)))
    # Sorted by |effect|: stage moves it more than source.
    assert [f.feature for f in prediction.factors] == ["stage", "source"]


def test_explanation_signs() -> None:
    prediction = train(HISTORY).predict({"stage": "qualification", "source": "web"})
    by_feature = {f.feature: f for f in prediction.factors}
    assert by_feature["stage"].effect < 0 and by_feature["stage"].direction == "lowers"
    # web: won 1 of 2, lost 2 of 3 → lowers too
    assert by_feature["source"].effect < 0
    assert train(HISTORY).predict({"stage": "proposal"}).factors[0].direction == "raises"


def test_effects_add_up_to_the_probability() -> None:
    model = train(HISTORY)
    prediction = model.predict({"stage": "proposal", "source": "web", "region": "华东"})
    log_odds = model.prior_log_odds + sum(f.effect for f in prediction.factors)
    assert prediction.probability == pytest.approx(1 / (1 + math.exp(-log_odds)))


def test_no_history_gives_the_prior() -> None:
    prediction = train([]).predict({"stage": "proposal", "team": "north"})
    assert prediction.probability == 0.5
    assert all(f.effect == 0 and not f.is_seen for f in prediction.factors)


def test_unseen_values_and_features_contribute_nothing() -> None:
    model = train(HISTORY)
    base = model.predict({"stage": "proposal"}).probability
    with_unknown = model.predict({"stage": "proposal", "source": "trade_show", "industry": "银行"})
    assert with_unknown.probability == pytest.approx(base)
    unseen = [f for f in with_unknown.factors if not f.is_seen]
    assert {f.feature for f in unseen} == {"source", "industry"}
    assert all(f.effect == 0 and f.direction == "neutral" for f in unseen)


def test_one_sided_history_stays_inside_zero_and_one() -> None:
    model = train([({"stage": "won_often"}, True)] * 10_000)
    p = model.predict({"stage": "won_often"}).probability
    assert 0.99 < p < 1.0
    assert 0.0 < train([({"stage": "x"}, False)] * 10_000).predict({"stage": "x"}).probability < 0.01


def test_alpha_must_be_positive() -> None:
    with pytest.raises(ValueError, match="alpha"):
        train(HISTORY, alpha=0)


STAGES = ["lead", "qualification", "proposal", "negotiation"]
SOURCES = ["web", "referral", "event"]
rows = st.tuples(
    st.fixed_dictionaries({"stage": st.sampled_from(STAGES), "source": st.sampled_from(SOURCES)}),
    st.booleans(),
)


@settings(max_examples=200, deadline=None)
@given(history=st.lists(rows, min_size=1, max_size=40), pick=st.integers(min_value=0))
def test_more_wins_like_this_deal_raise_its_probability(history: list[tuple[dict[str, str], bool]], pick: int) -> None:
    # Monotonicity for a deal whose values the history has seen: one more won deal like it raises its
    # probability, one more lost deal lowers it.
    deal = history[pick % len(history)][0]
    before = train(history).predict(deal).probability
    assert 0 < before < 1
    assert train([*history, (deal, True)]).predict(deal).probability > before
    assert train([*history, (deal, False)]).predict(deal).probability < before


@settings(max_examples=200, deadline=None)
@given(history=st.lists(rows, min_size=1, max_size=40))
def test_effect_sign_follows_the_win_rate(history: list[tuple[dict[str, str], bool]]) -> None:
    # A value whose smoothed win frequency beats its loss frequency raises the odds, and vice versa.
    model = train(history)
    for feature, values in model.counts.items():
        rows_won, rows_lost = model.rows_with[feature]
        k = len(values)
        for value, (won, lost) in values.items():
            p_won = Fraction(won + 1, rows_won + k)
            p_lost = Fraction(lost + 1, rows_lost + k)
            assume(p_won != p_lost)
            effect = model.effect(feature, value)
            assert effect is not None
            assert (effect > 0) == (p_won > p_lost)


@pytest.mark.parametrize(
    ("amount", "band"),
    [("0", "<10k"), ("9999.99", "<10k"), ("10000", "10k-100k"), ("999999", "100k-1M"), ("1000000", ">=1M")],
)
def test_value_band(amount: str, band: str) -> None:
    assert value_band(Decimal(amount)) == band


@pytest.mark.parametrize(("count", "band"), [(0, "0"), (2, "1-2"), (3, "3-5"), (10, "6-10"), (11, "11+")])
def test_activity_band(count: int, band: str) -> None:
    assert activity_band(count) == band
