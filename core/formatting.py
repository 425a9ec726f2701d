"""Numbers, money, percentages, dates and times shown the way the reader expects (Babel/CLDR).

The same functions serve Python code and templates (registered as filters by :mod:`core.templating`:
``{{ amount|money(currency) }}``, ``{{ n|number }}``, ``{{ rate|percent }}``, ``{{ at|datetime }}``,
``{{ on|date }}``, ``{{ at|relative }}``). Without an explicit ``locale`` they use the request's language
(:func:`core.i18n.language`); without an explicit ``tz`` the time zone of the request's user, else the
site's default (``CRM_TIMEZONE``, Asia/Shanghai unless set).

Amounts are rounded half away from zero (``ROUND_HALF_UP``) to the currency's minor unit before Babel
sees them: Babel rounds half-even and could print a last digit that differs from the one totals were
computed with. Numbers with a fixed count of decimals are rounded the same way.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from typing import Any, Literal
from zoneinfo import ZoneInfo, available_timezones

from babel import Locale
from babel.dates import format_date as _babel_date
from babel.dates import format_datetime as _babel_datetime
from babel.dates import format_time as _babel_time
from babel.dates import format_timedelta, get_datetime_format
from babel.numbers import NumberPattern, format_currency, get_currency_precision

from core import i18n
from core.security import context

__all__ = [
    "DEFAULT_TIMEZONE",
    "FILTERS",
    "babel_locale",
    "current_timezone",
    "format_date",
    "format_datetime",
    "format_money",
    "format_number",
    "format_percent",
    "format_relative",
    "is_timezone",
    "round_money",
    "site_timezone",
    "timezones",
    "zone",
]

#: the site's time zone when neither the user nor ``CRM_TIMEZONE`` names one
DEFAULT_TIMEZONE = "Asia/Shanghai"

Number = Decimal | int | str
LocaleLike = str | Locale | None


# --- locale and time zone -----------------------------------------------------------------------------------

@cache
def _parse_locale(identifier: str) -> Locale:
    # Locale.parse of a string costs ~0.7 ms (it normalises against every known locale): a page formats
    # hundreds of values, so each locale is parsed once.
    return Locale.parse(identifier)


def babel_locale(locale: LocaleLike = None) -> Locale:
    """``locale`` as a Babel ``Locale``; ``None`` is the request's language (``zh_CN``, ``en``)."""
    if isinstance(locale, Locale):
        return locale
    return _parse_locale(locale or i18n.language())


#: the areas of the IANA names people pick from (``Asia/Shanghai``); legacy aliases (``PRC``) and ``Etc/…``
#: (whose signs read backwards) are still accepted, only not offered
_AREAS = ("Africa/", "America/", "Antarctica/", "Arctic/", "Asia/", "Atlantic/", "Australia/", "Europe/",
          "Indian/", "Pacific/")
#: keys of the system's zone folder that are not zones a person lives in
_NOT_ZONES = frozenset({"localtime", "Factory", "posixrules"})


@cache
def timezones() -> tuple[str, ...]:
    """The IANA time zone names to offer, sorted (``Asia/Shanghai``, ``Europe/Paris``…, ``UTC``)."""
    return (*sorted(n for n in available_timezones() if n.startswith(_AREAS)), "UTC")


def is_timezone(name: str) -> bool:
    """Whether ``name`` is an IANA time zone name (``zoneinfo`` would also open a path or ``localtime``)."""
    return name in _timezone_set()


@cache
def _timezone_set() -> frozenset[str]:
    return frozenset(available_timezones()) - _NOT_ZONES


def site_timezone() -> str:
    """The site's default time zone: the ``CRM_TIMEZONE`` setting once booted, else :data:`DEFAULT_TIMEZONE`."""
    from core.errors import ConfigError
    from core.runtime import current

    try:
        name = current().settings.default_timezone
    except ConfigError:  # not booted: a script or a unit test
        name = ""
    return name if is_timezone(name) else DEFAULT_TIMEZONE


def current_timezone() -> str:
    """The request's user's time zone, else the site's."""
    who = context.principal()
    chosen = who.timezone if who is not None else ""
    return chosen if chosen and is_timezone(chosen) else site_timezone()


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def zone(tz: str | dt.tzinfo | None = None) -> dt.tzinfo:
    """``tz`` as a ``tzinfo``; ``None`` is :func:`current_timezone`."""
    if isinstance(tz, dt.tzinfo):
        return tz
    return _zone(tz or current_timezone())


# --- numbers and money --------------------------------------------------------------------------------------

def _decimal(value: Number | float, *, money: bool = False) -> Decimal:
    # money is Decimal everywhere in this code base: a float amount is a bug upstream (0.1 is not one tenth),
    # refused; a float score or ratio is shown by its shortest repr ("0.1", not 0.1000000000000000055…)
    if isinstance(value, bool) or (money and isinstance(value, float)):
        raise TypeError(f"expected a Decimal, int or decimal string, not {type(value).__name__}")
    return value if isinstance(value, Decimal) else Decimal(str(value).strip())


def _fixed(pattern: NumberPattern, decimals: int) -> NumberPattern:
    fixed = copy.copy(pattern)
    fixed.frac_prec = (decimals, decimals)
    return fixed


def round_money(amount: Number, currency: str, rounding: str = ROUND_HALF_UP) -> Decimal:
    """``amount`` rounded to ``currency``'s minor unit (CNY 2 decimals, JPY 0), half away from zero unless
    ``rounding`` says otherwise (an addon whose figures follow another rule passes it, e.g. half-even)."""
    exponent = int(get_currency_precision(currency))
    return _decimal(amount, money=True).quantize(Decimal(1).scaleb(-exponent), rounding=rounding)


def format_money(amount: Number, currency: str, locale: LocaleLike = None, *, rounding: str = ROUND_HALF_UP) -> str:
    """``amount`` with ``currency``'s sign in ``locale``: ``120506.2`` CNY is ``¥120,506.20`` in ``zh_CN``
    and ``CN¥120,506.20`` in ``en``; rounded to the minor unit first (half-up unless ``rounding``)."""
    return str(format_currency(round_money(amount, currency, rounding), currency, locale=babel_locale(locale)))


def format_number(value: Number | float, decimals: int | None = None, locale: LocaleLike = None) -> str:
    """``value`` with the locale's group and decimal separators (``1,234,567.5``); with ``decimals``,
    exactly that many digits after the point (rounded half-up), else up to three."""
    loc = babel_locale(locale)
    places = 3 if decimals is None else decimals
    number = _decimal(value).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    pattern = loc.decimal_formats[None]
    if decimals is not None:
        pattern = _fixed(pattern, decimals)
    return str(pattern.apply(number, loc))


def format_percent(value: Number | float, decimals: int = 0, locale: LocaleLike = None, *,
                   of_hundred: bool = False) -> str:
    """``value`` as a percentage: a fraction (``0.13`` → ``13%``), or points with ``of_hundred=True``
    (``13`` → ``13%``, for discounts and probabilities kept as 0–100); rounded half-up to ``decimals``."""
    loc = babel_locale(locale)
    points = _decimal(value) * (1 if of_hundred else 100)
    points = points.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    return str(_fixed(loc.percent_formats[None], decimals).apply(points / 100, loc))


# --- dates and times ----------------------------------------------------------------------------------------

_Size = Literal["short", "medium", "long", "full"]
_SIZES: dict[str, _Size] = {"short": "short", "medium": "medium", "long": "long", "full": "full"}


def _aware(value: dt.datetime) -> dt.datetime:
    # the database hands back naive values on some backends: every stored timestamp is UTC
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def format_date(value: dt.date, format: str = "medium", locale: LocaleLike = None,
                tz: str | dt.tzinfo | None = None) -> str:
    """A date (``2026年12月1日``, ``Dec 1, 2026``); a date-time is first moved into ``tz`` (the user's), so
    an evening in Shanghai is not shown as the UTC day before or after. ``format``: short, medium, long,
    full or a CLDR pattern."""
    if isinstance(value, dt.datetime):
        value = _aware(value).astimezone(zone(tz)).date()
    return str(_babel_date(value, format, locale=babel_locale(locale)))


def format_datetime(value: dt.datetime, format: str = "medium", locale: LocaleLike = None,
                    tz: str | dt.tzinfo | None = None) -> str:
    """A moment in ``tz`` (the user's by default): ``medium`` is the date and the time to the minute
    (``2026年12月1日 16:30``, ``Dec 1, 2026, 4:30 PM``); short, long, full or a CLDR pattern otherwise."""
    if not isinstance(value, dt.datetime):  # a plain date has no time to show, nor to move
        return format_date(value, format, locale, tz)
    loc = babel_locale(locale)
    moment = _aware(value).astimezone(zone(tz))
    size = _SIZES.get(format)
    if size is None:  # a CLDR pattern
        return str(_babel_datetime(moment, format, tzinfo=moment.tzinfo, locale=loc))
    # to the minute up to medium: seconds are noise on a page of records
    time = _babel_time(moment, "short" if size == "medium" else size, tzinfo=moment.tzinfo, locale=loc)
    day = _babel_date(moment.date(), size, locale=loc)
    return str(get_datetime_format(size, locale=loc)).replace("'", "").replace("{0}", time).replace("{1}", day)


def format_relative(value: dt.datetime, now: dt.datetime | None = None, locale: LocaleLike = None) -> str:
    """How long ago or ahead ``value`` is, roughly (``3 hours ago``, ``3小时前``, ``in 2 days``)."""
    delta = _aware(value) - (now or dt.datetime.now(dt.UTC))
    return str(format_timedelta(delta, add_direction=True, locale=babel_locale(locale)))


# --- template filters ---------------------------------------------------------------------------------------

def _or_blank(fn: Callable[..., str]) -> Callable[..., str]:
    """``fn`` for templates: a missing value (``None``, ``""``) shows as nothing, so ``{{ x|date or '—' }}``
    reads naturally."""

    def filter_(value: Any, *args: Any, **kwargs: Any) -> str:
        if value is None or value == "":
            return ""
        return fn(value, *args, **kwargs)

    filter_.__name__ = fn.__name__
    filter_.__doc__ = fn.__doc__
    return filter_


#: what :mod:`core.templating` registers: ``{{ value|<name>(…) }}`` calls the function of the same role
FILTERS: dict[str, Callable[..., str]] = {
    "money": _or_blank(format_money),
    "number": _or_blank(format_number),
    "percent": _or_blank(format_percent),
    "date": _or_blank(format_date),
    "datetime": _or_blank(format_datetime),
    "relative": _or_blank(format_relative),
}
