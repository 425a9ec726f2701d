"""Quote arithmetic in ``Decimal``: line amounts, taxes and totals, rounded the way the ERP re-computes them.

One rounding rule for quotes, orders and the ERP bridge; the ERP (Tryton) computing the same sale from what the
bridge sends gets the same figures, line by line (a property test against a real trytond checks it):

0. **What is stored is what was computed.** An input with more decimals than its column stores is refused
   (``PricingError`` naming the field, a 422): ``quantity`` and ``unit_price`` 4 (``STORED_DECIMALS``),
   ``discount_percent`` 2, ``tax_rate`` 4. So the stored line always recomputes to the stored figures.
1. ``net_unit_price = round(unit_price × (1 − discount_percent / 100), PRICE_DIGITS)`` — the discounted unit
   price, rounded to the ERP's price digits (``PRICE_DIGITS`` = 4, Tryton's default ``price_decimal``). It is
   what the ERP receives as the line's unit price.
2. ``untaxed  = round(quantity × net_unit_price)`` — Tryton's sale line amount: quantity × unit price rounded
   to the currency.
3. ``subtotal = round(quantity × unit_price)``; ``discount = subtotal − untaxed`` (never negative).
4. ``tax      = round(quantity × net_unit_price × tax_rate)`` — per line, on the *unrounded* line amount: Tryton's
   tax computation with the company's "Tax Rounding" set to **per line** (``TAX_ROUNDING = "line"``; ``crm erp
   check`` reports an ERP configured per document).
5. ``total    = untaxed + tax``.
6. Quote and order totals are the sums of the rounded line figures, so the lines on the document always add
   up to the totals exactly (no "rounding difference" line), and equal the ERP's sale totals.

``round`` means: to the currency's minor unit (``babel.numbers.get_currency_precision``: CNY, USD, EUR 2
decimals, JPY 0, KWD/BHD 3; the net unit price to ``PRICE_DIGITS``), **half to even** (``ROUND_HALF_EVEN``,
"banker's rounding": 0.125 → 0.12, 0.135 → 0.14). That is how Tryton rounds every amount (``Currency.round``)
and it cannot be configured there; rounding half up in the CRM made the two disagree on every exact half.

Inputs are ``Decimal``, ``int`` or a decimal ``str``; ``float`` is refused because ``0.1`` is not one tenth.
``tax_rate`` is a fraction (``Decimal("0.13")`` for 13 % VAT), ``discount_percent`` a percentage (0–100).
"""

from __future__ import annotations

import decimal
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from functools import cache

from babel import Locale
from babel.numbers import get_currency_precision, list_currencies

from core import formatting
from core.errors import ValidationError

__all__ = [
    "LineTotals",
    "PricingError",
    "QuoteLineInput",
    "QuoteTotals",
    "PRICE_DIGITS",
    "ROUNDING",
    "STORED_DECIMALS",
    "TAX_ROUNDING",
    "currency_exponent",
    "format_money",
    "line_totals",
    "net_unit_price",
    "quote_totals",
    "round_money",
]

Number = Decimal | int | str

# Enough digits that quantity × price × discount never rounds before *we* round; the default 28 would
# silently drop digits on large quantities of finely priced items. Traps turn nonsense into errors.
_CONTEXT = decimal.Context(
    prec=60, rounding=ROUND_HALF_EVEN, traps=[decimal.InvalidOperation, decimal.Overflow, decimal.DivisionByZero]
)
_HUNDRED = Decimal(100)

#: how every figure is rounded: half to even, as the ERP does (see the module docstring)
ROUNDING = ROUND_HALF_EVEN
#: decimals of the unit price the ERP receives (Tryton's price digits): the net unit price is rounded to them
PRICE_DIGITS = 4
#: how taxes are rounded: per line (Tryton's account configuration "Tax Rounding" must say the same)
TAX_ROUNDING = "line"
#: decimals each input is stored with (crm_sales.models: QTY = (16, 4), discount (6, 2), tax rate (6, 4));
#: more is refused, so what is stored recomputes to what was computed
STORED_DECIMALS = {"quantity": 4, "unit_price": 4, "discount_percent": 2, "tax_rate": 4}


class PricingError(ValidationError):
    """An input the quote arithmetic refuses; ``field`` names it (shown next to that field in a form)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__({field: message}, f"{field}: {message}")
        self.field = field


def _decimal(field: str, value: object) -> Decimal:
    # bool is an int subclass: True as a quantity is a bug, not 1.
    if isinstance(value, (bool, float)):
        raise PricingError(field, f"must be a Decimal, int or decimal string, not {type(value).__name__}")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except decimal.InvalidOperation:
            raise PricingError(field, f"{value!r} is not a decimal number") from None
    else:
        raise PricingError(field, f"must be a Decimal, int or decimal string, not {type(value).__name__}")
    if not result.is_finite():
        raise PricingError(field, "must be a finite number")
    return result


@cache
def _known_currencies() -> frozenset[str]:
    return frozenset(list_currencies())


def currency_exponent(currency: str) -> int:
    """Number of decimals of ``currency``'s minor unit (2 for CNY, 0 for JPY); raises on an unknown code."""
    if not isinstance(currency, str) or currency not in _known_currencies():
        raise PricingError("currency", f"unknown currency {currency!r} (expected an ISO 4217 code)")
    return int(get_currency_precision(currency))


def round_money(amount: Decimal, currency: str) -> Decimal:
    """Round ``amount`` to ``currency``'s minor unit, half to even (``ROUNDING``, as the ERP does)."""
    exponent = currency_exponent(currency)
    return amount.quantize(Decimal(1).scaleb(-exponent), rounding=ROUNDING, context=_CONTEXT)


def net_unit_price(unit_price: Number, discount_percent: Number = 0) -> Decimal:
    """The discounted unit price rounded to ``PRICE_DIGITS`` (half to even): what a line's amount is computed
    from, and the unit price the ERP receives for it."""
    price, discount = _decimal("unit_price", unit_price), _decimal("discount_percent", discount_percent)
    kept = _CONTEXT.subtract(1, _CONTEXT.divide(discount, _HUNDRED))
    return _CONTEXT.multiply(price, kept).quantize(Decimal(1).scaleb(-PRICE_DIGITS), rounding=ROUNDING,
                                                   context=_CONTEXT)


@dataclass(frozen=True, slots=True, init=False)
class QuoteLineInput:
    """One quote line as entered; values are checked and converted to ``Decimal`` on construction."""

    quantity: Decimal
    unit_price: Decimal
    discount_percent: Decimal = Decimal(0)
    tax_rate: Decimal = Decimal(0)

    def __init__(
        self, quantity: Number, unit_price: Number, discount_percent: Number = 0, tax_rate: Number = 0
    ) -> None:
        values = {
            "quantity": _decimal("quantity", quantity),
            "unit_price": _decimal("unit_price", unit_price),
            "discount_percent": _decimal("discount_percent", discount_percent),
            "tax_rate": _decimal("tax_rate", tax_rate),
        }
        if values["quantity"] < 0:
            raise PricingError("quantity", "must not be negative")
        if values["unit_price"] < 0:
            raise PricingError("unit_price", "must not be negative")
        if not 0 <= values["discount_percent"] <= _HUNDRED:
            raise PricingError("discount_percent", "must be between 0 and 100")
        if not 0 <= values["tax_rate"] <= 1:
            # A rate of 13 almost certainly meant 13 %; say so rather than quote a 1300 % tax.
            raise PricingError("tax_rate", "must be a fraction between 0 and 1 (0.13 for 13 %)")
        for name, value in values.items():
            places = STORED_DECIMALS[name]
            exponent = value.normalize(_CONTEXT).as_tuple().exponent  # 12.3450 → 12.345: -3
            if isinstance(exponent, int) and exponent < -places:
                # stored rounded, it would no longer give the figures computed from it
                raise PricingError(name, f"at most {places} decimal places ({value} has more)")
        for name, value in values.items():
            object.__setattr__(self, name, value)


@dataclass(frozen=True, slots=True)
class LineTotals:
    """Rounded figures of one line; ``subtotal − discount == untaxed`` and ``untaxed + tax == total``."""

    subtotal: Decimal
    discount: Decimal
    untaxed: Decimal
    tax: Decimal
    total: Decimal


@dataclass(frozen=True, slots=True)
class QuoteTotals:
    """Totals of a quote: each figure is the exact sum of the corresponding line figures."""

    untaxed: Decimal
    tax: Decimal
    total: Decimal
    lines: tuple[LineTotals, ...]
    currency: str
    subtotal: Decimal
    discount: Decimal


def line_totals(line: QuoteLineInput, currency: str) -> LineTotals:
    """Compute one line's rounded figures (see the module docstring for the rule)."""
    net = _CONTEXT.multiply(line.quantity, net_unit_price(line.unit_price, line.discount_percent))
    subtotal = round_money(_CONTEXT.multiply(line.quantity, line.unit_price), currency)
    untaxed = round_money(net, currency)
    tax = round_money(_CONTEXT.multiply(net, line.tax_rate), currency)
    return LineTotals(
        subtotal=subtotal,
        discount=_CONTEXT.subtract(subtotal, untaxed),
        untaxed=untaxed,
        tax=tax,
        total=_CONTEXT.add(untaxed, tax),
    )


def quote_totals(lines: Iterable[QuoteLineInput], currency: str) -> QuoteTotals:
    """Compute every line and the quote's totals in ``currency`` (an ISO 4217 code such as ``"CNY"``)."""
    exponent = currency_exponent(currency)
    computed = tuple(line_totals(line, currency) for line in lines)
    zero = Decimal(0).scaleb(-exponent)  # "0.00" for CNY, so an empty quote still prints two decimals

    def total(attr: str) -> Decimal:
        return sum((getattr(line, attr) for line in computed), zero)

    return QuoteTotals(
        untaxed=total("untaxed"),
        tax=total("tax"),
        total=total("total"),
        lines=computed,
        currency=currency,
        subtotal=total("subtotal"),
        discount=total("discount"),
    )


def format_money(amount: Number, currency: str, locale: str | Locale) -> str:
    """Format ``amount`` for display in ``locale`` (``"zh_CN"`` → ``¥1,234.50``, ``"en"`` → ``CN¥1,234.50``).

    The inputs are checked like the quote arithmetic's (a ``PricingError`` naming ``amount`` or ``currency``)
    and the amount rounded with :func:`round_money`, so the printed last digit is the one the totals were
    computed with; the kernel's :func:`core.formatting.format_money` does the rest.
    """
    return formatting.format_money(round_money(_decimal("amount", amount), currency), currency, locale)
