"""A custom field's values: checked and stored in one shape per kind, read from form and file text, shown to
people, described as JSON Schema.

Stored (inside the model's JSON column): text and long text as strings; number as a JSON number; money as
``{"amount": "12.50", "currency": "CNY"}`` (the amount a decimal string rounded to the currency's minor unit,
never a float); date ``"2026-01-31"``; date-time RFC 3339 in UTC; yes/no a boolean; one choice the option key;
several choices a list of option keys in the options' order; a link the record id. ``None`` is no value.
A value that does not fit raises ``ValueError`` with the reason (the callers turn it into a 422 naming the field).
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import re
from typing import Any

from core import values as core_values
from core.customfields.definitions import FieldDef
from core.i18n import gettext

TEXT_LENGTH = {"text": 255, "long_text": 10_000}
MAX_DIGITS = 15  # a number's significant digits: a float holds them exactly
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_AMOUNT = "^-?[0-9]{1,13}(\\.[0-9]{1,4})?$"
_TRUE = {"1", "true", "yes", "y", "on", "是", "对", "x"}
_FALSE = {"0", "false", "no", "n", "off", "否", "不"}
_SPLIT = re.compile(r"[,，;；|、]")


def max_length(fd: FieldDef) -> int:
    return min(fd.max_length or TEXT_LENGTH.get(fd.kind, 255), 20_000)


def _decimal(value: Any) -> decimal.Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, str, decimal.Decimal)):
        raise ValueError("must be a number")
    try:
        number = decimal.Decimal(str(value).strip())
    except decimal.InvalidOperation:
        raise ValueError("must be a number") from None
    if not number.is_finite():
        raise ValueError("must be a finite number")
    return number


def _bound(fd: FieldDef, raw: str) -> decimal.Decimal | None:
    try:
        return decimal.Decimal(raw) if raw else None
    except decimal.InvalidOperation:
        return None


def _range(fd: FieldDef, number: decimal.Decimal) -> None:
    low, high = _bound(fd, fd.min_value), _bound(fd, fd.max_value)
    if low is not None and number < low:
        raise ValueError(f"must be at least {fd.min_value}")
    if high is not None and number > high:
        raise ValueError(f"must be at most {fd.max_value}")


def currency_digits(currency: str) -> int:
    from babel.numbers import get_currency_precision

    return int(get_currency_precision(currency))


def _text(fd: FieldDef, value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be text")
    text = value.strip()
    problem = core_values.text_problem(text)
    if problem:
        raise ValueError(problem)
    limit = max_length(fd)
    if len(text) > limit:
        raise ValueError(f"is longer than {limit} characters")
    if text and fd.pattern and not re.fullmatch(fd.pattern, text):
        raise ValueError(f"does not match the pattern {fd.pattern}")
    return text


def _number(fd: FieldDef, value: Any) -> int | float:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("must be a finite number")
    number = _decimal(value)
    if len(number.normalize().as_tuple().digits) > MAX_DIGITS or abs(number.adjusted()) > MAX_DIGITS:
        raise ValueError(f"has more than {MAX_DIGITS} significant digits")
    _range(fd, number)
    return int(number) if number == number.to_integral_value() else float(number)


def _money(fd: FieldDef, value: Any) -> dict[str, str]:
    if isinstance(value, dict):
        unknown = set(value) - {"amount", "currency"}
        if unknown:
            raise ValueError(f"has unknown key {sorted(unknown)[0]!r} (amount, currency)")
        amount, currency = value.get("amount"), value.get("currency") or fd.currency or "CNY"
    else:
        amount, currency = value, fd.currency or "CNY"
    if not isinstance(currency, str) or not _CURRENCY.match(currency):
        raise ValueError("currency must be a three-letter code like CNY")
    number = _decimal(amount)
    if number.adjusted() >= 13:
        raise ValueError("amount is too large")
    number = number.quantize(decimal.Decimal(1).scaleb(-currency_digits(currency)),
                             rounding=decimal.ROUND_HALF_UP)
    _range(fd, number)
    return {"amount": format(number, "f"), "currency": currency}


def _date(fd: FieldDef, value: Any) -> str:
    if not isinstance(value, str) or len(value.strip()) != 10:
        raise ValueError("must be a date like 2026-01-31")
    try:
        day = dt.date.fromisoformat(value.strip())
    except ValueError:
        raise ValueError("must be a date like 2026-01-31") from None
    text = day.isoformat()
    if fd.min_value and text < fd.min_value:
        raise ValueError(f"must be on or after {fd.min_value}")
    if fd.max_value and text > fd.max_value:
        raise ValueError(f"must be on or before {fd.max_value}")
    return text


def _datetime(fd: FieldDef, value: Any) -> str:
    if not isinstance(value, str) or not 10 < len(value.strip()) <= 40:
        raise ValueError("must be a date and time like 2026-01-31T09:30:00+08:00")
    try:
        stamp = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("must be a date and time like 2026-01-31T09:30:00+08:00") from None
    stamp = (stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)
    return stamp.replace(microsecond=0).isoformat()


def _choice(fd: FieldDef, value: Any) -> str:
    if not isinstance(value, str) or fd.option(value) is None:
        raise ValueError(f"must be one of {', '.join(o.key for o in fd.options)}")
    return value


def _choices(fd: FieldDef, value: Any) -> list[str]:
    if not isinstance(value, list):
        raise ValueError("must be a list of choices")
    picked = {_choice(fd, v) for v in value}
    return [o.key for o in fd.options if o.key in picked]


def _link(fd: FieldDef, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= core_values.INT32[1]:
        raise ValueError("must be a record id")
    return value


def _boolean(fd: FieldDef, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


_CHECKS = {"text": _text, "long_text": _text, "number": _number, "money": _money, "date": _date,
           "datetime": _datetime, "boolean": _boolean, "choice": _choice, "choices": _choices, "link": _link}


def check(fd: FieldDef, value: Any) -> Any:
    """``value`` (as JSON gives it) in its stored shape; ``None`` and ``""`` (and ``[]``) mean no value."""
    if value is None or value == "" or value == []:
        return None
    out = _CHECKS[fd.kind](fd, value)
    return None if out in ("", []) else out


def from_text(fd: FieldDef, text: str) -> Any:
    """A form field's or a file cell's text as the JSON value :func:`check` takes (labels of choices and
    words like yes/是 understood); ``ValueError`` when it cannot be one."""
    raw = text.strip()
    if not raw:
        return None
    if fd.kind == "boolean":
        word = raw.lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        raise ValueError("must be yes or no")
    if fd.kind == "link":
        if not (raw.isascii() and raw.isdigit()):
            raise ValueError("must be a record id")
        return int(raw)
    if fd.kind == "choice":
        return _option_key(fd, raw)
    if fd.kind == "choices":
        return [_option_key(fd, part.strip()) for part in _SPLIT.split(raw) if part.strip()]
    if fd.kind == "money":
        parts = raw.replace(",", "").split()
        if len(parts) == 2 and _CURRENCY.match(parts[0].upper()):
            return {"amount": parts[1], "currency": parts[0].upper()}
        if len(parts) == 2 and _CURRENCY.match(parts[1].upper()):
            return {"amount": parts[0], "currency": parts[1].upper()}
        return raw.replace(",", "")
    if fd.kind == "number":
        return str(_decimal(raw.replace(",", "")))
    return raw


def _option_key(fd: FieldDef, raw: str) -> str:
    folded = raw.casefold()
    for option in fd.options:
        if folded in (option.key.casefold(), option.en.casefold(), option.zh.casefold()):
            return option.key
    raise ValueError(f"{raw[:50]!r} is not one of {', '.join(o.key for o in fd.options)}")


def to_text(fd: FieldDef, value: Any) -> str:
    """A stored value as a form input's text (the inverse of :func:`from_text`)."""
    if value is None:
        return ""
    if fd.kind == "money" and isinstance(value, dict):
        return str(value.get("amount", ""))
    if fd.kind == "datetime" and isinstance(value, str):
        return value[:16]  # datetime-local shows minutes
    if fd.kind == "boolean":
        return "1" if value else ""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def display(fd: FieldDef, value: Any) -> str:
    """A stored value as people read it: option labels, Yes/No, ``12.50 CNY``; a masked value as it came."""
    if value is None or value == "":
        return ""
    if fd.kind == "boolean" and isinstance(value, bool):
        return gettext("Yes") if value else gettext("No")
    if fd.kind == "choice" and isinstance(value, str):
        found = fd.option(value)
        return found.label if found else value
    if fd.kind == "choices" and isinstance(value, list):
        return ", ".join((o.label if (o := fd.option(str(v))) else str(v)) for v in value)
    if fd.kind == "money" and isinstance(value, dict):
        return f"{value.get('amount', '')} {value.get('currency', '')}".strip()
    if fd.kind == "datetime" and isinstance(value, str) and "T" in value:
        return value[:16].replace("T", " ") + " UTC"
    return str(value)


def schema(fd: FieldDef, *, write: bool = False) -> dict[str, Any]:
    """The JSON Schema of ``fd``'s value as the API shows it (``write=False``) or accepts it."""
    out: dict[str, Any]
    if fd.kind in ("text", "long_text"):
        out = {"type": "string", "maxLength": max_length(fd)}
        if write:
            out["pattern"] = f"^(?:{fd.pattern})$" if fd.pattern else "^[^\\u0000]*$"
    elif fd.kind == "number":
        out = {"type": "number"}
        low, high = _bound(fd, fd.min_value), _bound(fd, fd.max_value)
        if low is not None:
            out["minimum"] = float(low)
        if high is not None:
            out["maximum"] = float(high)
    elif fd.kind == "money":
        out = {"type": "object", "additionalProperties": False, "properties": {
            "amount": {"type": "string", "pattern": _AMOUNT} if write else {"type": "string", "format": "decimal"},
            "currency": {"type": "string", "pattern": "^[A-Z]{3}$"}}}
        out["required"] = ["amount"] if write else ["amount", "currency"]
    elif fd.kind == "date":
        out = {"type": "string", "format": "date"}
    elif fd.kind == "datetime":
        out = {"type": "string", "format": "date-time"}
    elif fd.kind == "boolean":
        out = {"type": "boolean"}
    elif fd.kind == "choice":
        out = {"type": "string", "enum": [o.key for o in fd.options]}
    elif fd.kind == "choices":
        out = {"type": "array", "uniqueItems": True, "items": {"type": "string", "enum": [o.key for o in fd.options]}}
    else:
        out = {"type": "integer", "minimum": 1, "maximum": core_values.INT32[1], "description": f"a {fd.target} id"}
    if fd.help_en:
        out["description"] = fd.help_en
    out["title"] = fd.label_en or fd.key
    if not (write and fd.is_required):
        out["type"] = [out["type"], "null"]
    return out
