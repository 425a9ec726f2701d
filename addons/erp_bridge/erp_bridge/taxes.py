"""CRM tax rates → the ERP's taxes: the mapping, its use on every pushed line, and the checks that keep both in step.

A CRM line carries a tax *rate* (``0.13``); the ERP needs a tax *record*. Finance maps each rate once — the settings
page "ERP tax mapping", the API (``/api/erp/tax-map``) or ``crm erp taxes map 0.13 "VAT 13%"`` — to the ERP tax
with that same rate, or, for 0 %, to no tax at all. Then:

- every line pushed to the ERP carries exactly the mapped tax (``OrderLinePayload.taxes``), never the product's
  default taxes or the party's tax rule; an order with a rate nobody mapped fails with a ``PayloadError`` naming
  the rate (map it, then re-drive);
- while an ERP backend is configured, a quote with an unmapped rate cannot be sent (the ``crm_sales_quote_sent``
  listener answers a 422 naming the line's ``tax_rate``): the customer never sees a tax the ERP cannot apply;
- ``crm erp check`` verifies that every rate the CRM uses is mapped to a tax the ERP has, with the same rate, and
  that the ERP computes amounts like the CRM (taxes rounded per line, unit price digits, currency rounding).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from core.errors import ValidationError
from core.i18n import N_
from erp_bridge.backends.base import ErpRules, RemoteTax

__all__ = ["Mapped", "check_erp", "check_quote", "erp_rules", "key", "load", "percent", "problems", "resolve",
           "set_mapping", "validate_row"]

_RATE_PLACES = Decimal("0.0001")  # crm_sales' tax_rate column: Numeric(6, 4)


@dataclass(frozen=True)
class Mapped:
    """What a CRM rate becomes in the ERP: ``erp_tax`` (its id) or ``""`` for no tax."""

    rate: Decimal
    erp_tax: str
    erp_tax_name: str = ""

    @property
    def taxes(self) -> tuple[str, ...]:
        """The ERP tax ids a line at this rate is sent with."""
        return (self.erp_tax,) if self.erp_tax else ()


def key(rate: Decimal | int | str) -> Decimal:
    """A rate as the mapping is keyed: ``Decimal("0.1300")``, ``"0.13"`` and ``0.13`` are one key."""
    value = Decimal(str(rate))
    return value.normalize() if value else Decimal(0)


def percent(rate: Decimal) -> str:
    """``0.13`` → ``"13 %"``, ``0.055`` → ``"5.5 %"``."""
    return f"{key(rate * 100):f} %"


async def load() -> dict[Decimal, Mapped]:
    """The mapping, keyed by :func:`key`."""
    from erp_bridge.models import TaxMapping

    rows = await TaxMapping.select(TaxMapping.rate, TaxMapping.erp_tax, TaxMapping.erp_tax_name)
    return {key(r["rate"]): Mapped(key(r["rate"]), r["erp_tax"] or "", r["erp_tax_name"] or "") for r in rows}


async def set_mapping(rate: Decimal | str, erp_tax: str = "", erp_tax_name: str = "") -> int:
    """Map ``rate`` to the ERP tax ``erp_tax`` (its id; ``""``: no tax, for 0 % only); returns the row's id."""
    from core.values import finite_decimal
    from erp_bridge.models import TaxMapping

    wanted = finite_decimal(rate, "rate")
    found = await TaxMapping.select().where(TaxMapping.rate == wanted.quantize(_RATE_PLACES)).first() if (
        0 <= wanted <= 1 and wanted == wanted.quantize(_RATE_PLACES)) else None  # else validate_row says why
    values = await validate_row({"rate": rate, "erp_tax": erp_tax, "erp_tax_name": erp_tax_name}, found)
    if found:
        await TaxMapping.update({TaxMapping.erp_tax: values["erp_tax"],
                                 TaxMapping.erp_tax_name: values["erp_tax_name"]}).where(TaxMapping.id == found["id"])
        return int(found["id"])
    rows = await TaxMapping.insert(TaxMapping(**values)).returning(TaxMapping.id)
    return int(rows[0]["id"])


async def validate_row(values: dict[str, Any], before: dict[str, Any] | None) -> dict[str, Any]:
    """A mapping row as written through the API, the settings page or :func:`set_mapping`: the rate a fraction
    with at most 4 decimals (as crm_sales stores it), one row per rate, an ERP tax for every rate but 0."""
    from core.values import finite_decimal
    from erp_bridge.models import TaxMapping

    out = dict(values)
    merged = {**(before or {}), **values}
    if "rate" in values or before is None:
        if merged.get("rate") is None:
            raise ValidationError({"rate": N_("required: a fraction, 0.13 for 13 %")})
        rate = finite_decimal(merged["rate"], "rate")
        if not 0 <= rate <= 1:
            raise ValidationError({"rate": N_("must be a fraction between 0 and 1 (0.13 for 13 %)")})
        if rate != rate.quantize(_RATE_PLACES):
            raise ValidationError({"rate": N_("at most 4 decimal places, as the CRM stores tax rates")})
        query = TaxMapping.select(TaxMapping.id).where(TaxMapping.rate == rate.quantize(_RATE_PLACES))
        if before is not None:
            query = query.where(TaxMapping.id != before["id"])
        if await query.first():
            raise ValidationError({"rate": N_("%(rate)s is mapped already: edit that row") % {"rate": percent(rate)}})
        out["rate"] = rate.quantize(_RATE_PLACES)
        merged["rate"] = out["rate"]
    erp_tax = str(merged.get("erp_tax") or "").strip()
    if erp_tax and not erp_tax.isdigit():
        raise ValidationError({"erp_tax": N_("the ERP's id of the tax (a number; `crm erp taxes` lists them)")})
    if not erp_tax and Decimal(merged["rate"]) != 0:
        raise ValidationError({"erp_tax": f"{percent(Decimal(merged['rate']))} needs an ERP tax: only 0 % may be "
                                          "sent with no tax"})
    if "erp_tax" in values or before is None:
        out["erp_tax"] = erp_tax
    return out


def resolve(rules: ErpRules, spec: str) -> RemoteTax | None:
    """The ERP tax ``spec`` names — its id or its exact name (unique) —, or None for ``none``/``""``."""
    wanted = spec.strip()
    if wanted.lower() in ("", "none", "no tax"):
        return None
    by_id = [t for t in rules.taxes if t.external_id == wanted]
    by_name = [t for t in rules.taxes if t.name == wanted]
    found = by_id or by_name
    if len(found) != 1:
        known = ", ".join(f"#{t.external_id} {t.name!r}" for t in rules.taxes) or "none"
        what = "several ERP taxes are" if found else "no ERP sale tax is"
        raise ValidationError({"erp_tax": f"{what} named {wanted!r} (ERP sale taxes: {known})"})
    return found[0]


def problems(rules: ErpRules, mapping: dict[Decimal, Mapped], rates_in_use: Iterable[Decimal],
             currencies: Sequence[str]) -> list[str]:
    """Where the CRM and the ERP would compute a sale differently, or could not send it: one sentence each."""
    from crm_sales.api import PRICE_DIGITS, TAX_ROUNDING

    from erp_bridge.money import exponent

    out: list[str] = []
    if rules.tax_rounding != TAX_ROUNDING:
        out.append(f"the ERP rounds taxes per {rules.tax_rounding}, the CRM per {TAX_ROUNDING}: set the ERP's "
                   f"tax rounding to per {TAX_ROUNDING} (Tryton: Accounting configuration, Tax Rounding)")
    if rules.price_digits is not None and rules.price_digits < PRICE_DIGITS:
        out.append(f"the ERP keeps {rules.price_digits} decimals of a unit price, the CRM sends {PRICE_DIGITS} "
                   "(Tryton: [product] price_decimal)")
    for code in currencies:
        step = rules.currency_rounding.get(code)
        expected = Decimal(1).scaleb(-exponent(code))
        if step is None:
            out.append(f"the ERP has no currency {code} (used by the CRM)")
        elif step != expected:
            out.append(f"the ERP rounds {code} to {step:f}, the CRM to {expected:f} (ISO 4217): fix the currency's "
                       "rounding in the ERP")
    taxes = {t.external_id: t for t in rules.taxes}
    for rate in sorted({key(r) for r in rates_in_use}):
        if rate not in mapping:
            out.append(f"tax rate {percent(rate)} is used by the CRM but mapped to no ERP tax "
                       f"(crm erp taxes map {rate:f} TAX)")
    for rate, mapped in sorted(mapping.items()):
        if not mapped.erp_tax:
            if rate != 0:
                out.append(f"tax rate {percent(rate)} is mapped to no ERP tax")
            continue
        tax = taxes.get(mapped.erp_tax)
        if tax is None:
            out.append(f"tax rate {percent(rate)} is mapped to ERP tax #{mapped.erp_tax}, which the ERP does not "
                       "have (or not as a sale tax)")
        elif tax.kind != "percentage" or tax.is_composite or tax.rate is None:
            out.append(f"tax rate {percent(rate)} is mapped to ERP tax #{tax.external_id} {tax.name!r}, which is "
                       "not a plain percentage")
        elif key(tax.rate) != rate:
            out.append(f"tax rate {percent(rate)} is mapped to ERP tax #{tax.external_id} {tax.name!r}, which is "
                       f"{percent(tax.rate)}")
    return out


async def erp_rules() -> ErpRules:
    """The active backend's `ErpRules` for the currencies the CRM uses (a call to the ERP, in a thread)."""
    import asyncio

    from crm_sales.api import currencies_in_use

    from erp_bridge import connection

    backend = connection.open_backend(await connection.active())
    return await asyncio.to_thread(backend.accounting_rules, await currencies_in_use())


async def check_erp() -> list[str]:
    """`problems` between the CRM as it is now (rates and currencies in use, the mapping) and the active ERP."""
    from crm_sales.api import currencies_in_use, tax_rates_in_use

    rules = await erp_rules()
    return problems(rules, await load(), await tax_rates_in_use(), await currencies_in_use())


async def check_quote(quote_id: int) -> None:
    """Refuse (422 naming ``lines[i].tax_rate``) a quote with a tax rate the ERP has no tax mapped for, while an
    ERP backend is configured."""
    from crm_sales.api import quote_line_taxes

    from erp_bridge import connection

    if not await connection.is_configured():
        return
    mapped = await load()
    errors = {
        f"lines[{line.index}].tax_rate": (
            f"line {line.index + 1} ({line.description[:60]!r}) is taxed at {percent(line.tax_rate)}, which the ERP "
            "has no tax mapped for: map the rate (Settings → ERP tax mapping) or use a mapped rate")
        for line in await quote_line_taxes(quote_id) if key(line.tax_rate) not in mapped}
    if errors:
        raise ValidationError(errors)
