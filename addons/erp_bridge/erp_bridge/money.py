"""Amounts in the currency's minor unit: Decimal, quantized with the exponent ISO 4217 gives the currency."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from functools import cache

from babel.numbers import get_currency_precision


@cache  # babel's look-up costs ~10 µs: a reconciliation of 100k orders asks millions of times
def exponent(currency: str) -> int:
    """Digits after the point: CNY/EUR/USD 2, JPY/KRW 0, KWD 3 (babel's CLDR data; 2 if unknown)."""
    try:
        return int(get_currency_precision(currency.upper()))
    except Exception:  # an unknown code: reconciliation still needs a number to compare with
        return 2


def minor(amount: Decimal | int | str | None, currency: str) -> Decimal:
    """``amount`` rounded half to even to ``currency``'s minor unit (the CRM's rule, ``crm_sales.pricing``, and
    Tryton's)."""
    value = Decimal(0) if amount is None else amount if isinstance(amount, Decimal) else Decimal(str(amount))
    return value.quantize(_step(currency), rounding=ROUND_HALF_EVEN)


@cache
def _step(currency: str) -> Decimal:
    return Decimal(1).scaleb(-exponent(currency))
