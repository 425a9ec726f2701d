"""Quote arithmetic: hand-checked examples, then properties over generated quotes."""

from __future__ import annotations

from decimal import Decimal

import pytest
from crm_sales.pricing import (
    STORED_DECIMALS,
    PricingError,
    QuoteLineInput,
    format_money,
    line_totals,
    net_unit_price,
    quote_totals,
    round_money,
)
from hypothesis import given, settings
from hypothesis import strategies as st

CURRENCIES = {"CNY": 2, "USD": 2, "EUR": 2, "JPY": 0}


def money(places: int = 4, max_value: int = 1_000_000) -> st.SearchStrategy[Decimal]:
    return st.decimals(min_value=0, max_value=max_value, places=places, allow_nan=False, allow_infinity=False)


lines_strategy = st.builds(
    QuoteLineInput,
    quantity=money(places=3, max_value=10_000),
    unit_price=money(places=4),
    discount_percent=st.decimals(min_value=0, max_value=100, places=2),
    tax_rate=st.sampled_from([Decimal(0), Decimal("0.06"), Decimal("0.09"), Decimal("0.13"), Decimal("0.2")]),
)


def test_hand_checked_line() -> None:
    # 3 × 19.99 = 59.97; × 0.9 = 53.973 → 53.97; tax 53.97 × 0.13 = 7.0161 → 7.02
    line = line_totals(QuoteLineInput("3", "19.99", 10, "0.13"), "CNY")
    assert line.subtotal == Decimal("59.97")
    assert line.untaxed == Decimal("53.97")
    assert line.discount == Decimal("6.00")
    assert line.tax == Decimal("7.02")
    assert line.total == Decimal("60.99")


def test_half_to_even_like_the_erp() -> None:
    # Tryton rounds every amount half to even (Currency.round): 0.125 → 0.12, 0.135 → 0.14; 2.5 JPY → 2
    assert line_totals(QuoteLineInput(1, "0.125"), "CNY").untaxed == Decimal("0.12")
    assert line_totals(QuoteLineInput(1, "0.135"), "CNY").untaxed == Decimal("0.14")
    assert line_totals(QuoteLineInput(1, "2.5"), "JPY").untaxed == Decimal("2")
    assert line_totals(QuoteLineInput(1, "3.5"), "JPY").untaxed == Decimal("4")
    assert round_money(Decimal("0.005"), "USD") == Decimal("0.00")
    assert round_money(Decimal("0.0125"), "KWD") == Decimal("0.012")


def test_issue_17_line_is_computed_from_the_stored_discount_and_the_sent_price() -> None:
    # 1000 × 0.9999 at 12.345 %: computed from 12.345 it gave 876.46, stored 12.35 gives 876.41, and Tryton,
    # receiving the unit price 0.8764, computed 876.40. Now 12.345 is refused and 12.35 gives 876.40 everywhere.
    with pytest.raises(PricingError) as info:
        QuoteLineInput(1000, "0.9999", "12.345")
    assert info.value.field == "discount_percent" and "2 decimal places" in str(info.value)
    assert net_unit_price("0.9999", "12.35") == Decimal("0.8764")
    line = line_totals(QuoteLineInput(1000, "0.9999", "12.35", "0.13"), "EUR")
    assert line.untaxed == Decimal("876.40")  # = 1000 × 0.8764, what Tryton computes
    assert line.tax == Decimal("113.93")  # 876.40 × 0.13 = 113.932
    assert line.subtotal == Decimal("999.90") and line.discount == Decimal("123.50")


def test_tax_is_per_line_on_the_unrounded_amount() -> None:
    # Tryton (tax rounding per line) taxes quantity × unit price before rounding it: 100.0351 × 0.13 =
    # 13.004563 → 13.00, while taxing the rounded untaxed amount (100.04 × 0.13 = 13.0052) would give 13.01.
    line = line_totals(QuoteLineInput(1, "100.0351", 0, "0.13"), "EUR")
    assert (line.untaxed, line.tax, line.total) == (Decimal("100.04"), Decimal("13.00"), Decimal("113.04"))
    # 2 × 0.0075 = 0.015 → 0.02 (half to even); 0.015 × 0.5 = 0.0075 → 0.01
    line = line_totals(QuoteLineInput(2, "0.0075", 0, "0.5"), "EUR")
    assert (line.untaxed, line.tax) == (Decimal("0.02"), Decimal("0.01"))


@pytest.mark.parametrize(("field", "value"), [
    ("quantity", "1.00001"), ("unit_price", "0.12345"), ("discount_percent", "12.345"), ("tax_rate", "0.12345")])
def test_more_decimals_than_stored_are_refused(field: str, value: str) -> None:
    values = {"quantity": 1, "unit_price": 1, "discount_percent": 0, "tax_rate": 0, field: value}
    with pytest.raises(PricingError) as info:
        QuoteLineInput(**values)  # type: ignore[arg-type]
    assert info.value.field == field and f"at most {STORED_DECIMALS[field]} decimal places" in str(info.value)
    # trailing zeros are not decimals: 12.3400 is 12.34
    QuoteLineInput(**{**values, field: "0.1000000"})  # type: ignore[arg-type]


def test_stored_decimals_are_the_columns_scales() -> None:
    from crm_sales.models import OrderLine, QuoteLine

    for table in (QuoteLine, OrderLine):
        for name, places in STORED_DECIMALS.items():
            assert table._meta.get_column_by_name(name).digits[1] == places, (table, name)


def test_lines_sum_exactly_where_per_total_rounding_would_not() -> None:
    # Three lines of 0.333 + 13 % tax: per-line tax 0.04 each → 0.12; taxing the sum (0.99) would give 0.13.
    totals = quote_totals([QuoteLineInput(1, "0.333", 0, "0.13")] * 3, "CNY")
    assert totals.untaxed == Decimal("0.99")
    assert totals.tax == Decimal("0.12")
    assert totals.total == Decimal("1.11")


def test_empty_quote_prints_minor_unit() -> None:
    assert str(quote_totals([], "CNY").total) == "0.00"
    assert str(quote_totals([], "JPY").total) == "0"


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(lines_strategy, max_size=12), currency=st.sampled_from(sorted(CURRENCIES)))
def test_totals_are_sums_of_rounded_lines(lines: list[QuoteLineInput], currency: str) -> None:
    totals = quote_totals(lines, currency)
    assert len(totals.lines) == len(lines)
    assert totals.untaxed == sum((line.untaxed for line in totals.lines), Decimal(0))
    assert totals.tax == sum((line.tax for line in totals.lines), Decimal(0))
    assert totals.total == sum((line.total for line in totals.lines), Decimal(0))
    assert totals.untaxed + totals.tax == totals.total
    assert totals.subtotal - totals.discount == totals.untaxed
    exponent = -CURRENCIES[currency]
    for figure in (totals.untaxed, totals.tax, totals.total, totals.subtotal, totals.discount):
        assert figure.as_tuple().exponent == exponent, figure  # exactly the minor unit, never more digits
    for line in totals.lines:
        assert line.untaxed + line.tax == line.total
        assert line.subtotal - line.discount == line.untaxed
        assert line.discount >= 0 and line.tax >= 0
        for figure in (line.subtotal, line.discount, line.untaxed, line.tax, line.total):
            assert figure.as_tuple().exponent == exponent


@settings(max_examples=200, deadline=None)
@given(line=lines_strategy, currency=st.sampled_from(sorted(CURRENCIES)))
def test_rounding_within_half_a_minor_unit(line: QuoteLineInput, currency: str) -> None:
    net = net_unit_price(line.unit_price, line.discount_percent)
    assert abs(net - line.unit_price * (1 - line.discount_percent / 100)) <= Decimal("0.00005")
    exact = line.quantity * net  # the ERP's line amount before rounding
    half_unit = Decimal(1).scaleb(-CURRENCIES[currency]) / 2
    computed = line_totals(line, currency)
    assert abs(computed.untaxed - exact) <= half_unit
    assert abs(computed.tax - exact * line.tax_rate) <= half_unit


@settings(max_examples=100, deadline=None)
@given(quantity=money(3, 10_000), price=money(), rate=st.sampled_from(["0", "0.13"]))
def test_full_discount_and_zero_quantity_cost_nothing(quantity: Decimal, price: Decimal, rate: str) -> None:
    free = line_totals(QuoteLineInput(quantity, price, 100, rate), "CNY")
    assert free.untaxed == free.tax == free.total == 0
    assert free.discount == free.subtotal
    nothing = line_totals(QuoteLineInput(0, price, 0, rate), "CNY")
    assert nothing.subtotal == nothing.total == 0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"quantity": -1, "unit_price": 1}, "quantity"),
        ({"quantity": 1, "unit_price": "-0.01"}, "unit_price"),
        ({"quantity": 1, "unit_price": 1, "discount_percent": "100.01"}, "discount_percent"),
        ({"quantity": 1, "unit_price": 1, "discount_percent": -5}, "discount_percent"),
        ({"quantity": 1, "unit_price": 1, "tax_rate": 13}, "tax_rate"),
        ({"quantity": 1, "unit_price": 1, "tax_rate": "-0.1"}, "tax_rate"),
        ({"quantity": 1.5, "unit_price": 1}, "quantity"),
        ({"quantity": 1, "unit_price": 9.99}, "unit_price"),
        ({"quantity": True, "unit_price": 1}, "quantity"),
        ({"quantity": "abc", "unit_price": 1}, "quantity"),
        ({"quantity": 1, "unit_price": "NaN"}, "unit_price"),
        ({"quantity": 1, "unit_price": "Infinity"}, "unit_price"),
        ({"quantity": 1, "unit_price": None}, "unit_price"),
    ],
)
def test_guards_name_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(PricingError) as info:
        QuoteLineInput(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field
    assert field in info.value.fields
    assert field in str(info.value)


@given(value=st.floats(allow_nan=False) | st.booleans())
def test_floats_and_bools_always_refused(value: object) -> None:
    with pytest.raises(PricingError, match="quantity"):
        QuoteLineInput(value, 1)  # type: ignore[arg-type]


@pytest.mark.parametrize("currency", ["XYZ", "cny", "", "RMB"])
def test_unknown_currency(currency: str) -> None:
    with pytest.raises(PricingError) as info:
        quote_totals([QuoteLineInput(1, 1)], currency)
    assert info.value.field == "currency"


def test_format_money() -> None:
    assert format_money(Decimal("1234.5"), "CNY", "zh_CN") == "¥1,234.50"
    assert format_money("1234.5", "CNY", "en") == "CN¥1,234.50"
    assert format_money("1234.5", "USD", "en") == "$1,234.50"
    assert format_money("1234.5", "EUR", "de_DE") == "1.234,50\xa0€"
    # Half to even like the totals (and the ERP): 2.5 yen prints as 2, 3.5 as 4.
    assert format_money("2.5", "JPY", "en") == "¥2"
    assert format_money("3.5", "JPY", "en") == "¥4"
    with pytest.raises(PricingError, match="amount"):
        format_money(1.5, "CNY", "en")  # type: ignore[arg-type]
