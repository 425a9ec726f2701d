"""core.formatting: money, numbers, percentages, dates and times per locale and time zone, in Python and as
Jinja2 filters."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from core import formatting, i18n
from core.security import context
from core.security.principal import Principal

MOMENT = dt.datetime(2026, 12, 1, 20, 30, tzinfo=dt.UTC)  # 04:30 the next day in Shanghai
# (CLDR puts a narrow no-break space, U+202F, between an English time and AM/PM)


@pytest.fixture
def as_user():
    """Run as a principal with the given language and time zone, the way the middleware sets a request up."""
    before_lang = i18n.language()

    def go(language: str, timezone: str = "") -> None:
        who = Principal(user_id=1, login="amy", name="Amy", language=language, roles=frozenset(), timezone=timezone)
        context.set_context(context.RequestContext(principal=who))
        i18n.set_language(language)

    yield go
    context.set_context(context.RequestContext())
    i18n.set_language(before_lang)


def test_money_carries_the_locales_currency_sign_and_rounds_half_up() -> None:
    assert formatting.format_money(Decimal("120506.2"), "CNY", "zh_CN") == "¥120,506.20"
    assert formatting.format_money(Decimal("120506.2"), "CNY", "en") == "CN¥120,506.20"
    # Babel alone rounds half-even (0.125 → 0.12): the kernel rounds half away from zero first
    assert formatting.format_money(Decimal("0.125"), "CNY", "en") == "CN¥0.13"
    assert formatting.format_money(Decimal("-0.125"), "CNY", "zh_CN") == "-¥0.13"
    assert formatting.format_money("259.9700", "CNY", "zh_CN") == "¥259.97"
    assert formatting.format_money(Decimal("1234.5"), "JPY", "en") == "¥1,235"  # no minor unit
    assert formatting.round_money(Decimal("2.675"), "CNY") == Decimal("2.68")
    with pytest.raises(TypeError):
        formatting.format_money(0.1, "CNY", "en")  # type: ignore[arg-type]


def test_numbers_and_percentages() -> None:
    assert formatting.format_number(Decimal("1234567.5"), locale="en") == "1,234,567.5"
    assert formatting.format_number(Decimal("2.000"), locale="zh_CN") == "2"
    assert formatting.format_number(Decimal("1234.5"), 2, locale="zh_CN") == "1,234.50"
    assert formatting.format_number(Decimal("0.125"), 2, locale="en") == "0.13"
    assert formatting.format_number(1234567, locale="zh_CN") == "1,234,567"
    assert formatting.format_percent(Decimal("0.13"), locale="zh_CN") == "13%"
    assert formatting.format_percent(Decimal("0.125"), locale="en") == "13%"  # half-up, not Babel's 12%
    assert formatting.format_percent(Decimal("0.125"), 1, locale="en") == "12.5%"
    assert formatting.format_percent(Decimal("12.5"), 1, locale="zh_CN", of_hundred=True) == "12.5%"
    assert formatting.format_percent(60, locale="en", of_hundred=True) == "60%"
    assert formatting.format_percent(0.1, 1, locale="en") == "10.0%"  # a float score, by its shortest repr
    assert formatting.format_number(-0.25, 1, locale="en") == "-0.3"


def test_datetimes_in_the_given_time_zone() -> None:
    assert formatting.format_datetime(MOMENT, locale="zh_CN", tz="Asia/Shanghai") == "2026年12月2日 04:30"
    assert formatting.format_datetime(MOMENT, locale="zh_CN", tz="UTC") == "2026年12月1日 20:30"
    assert formatting.format_datetime(MOMENT, locale="en", tz="Asia/Shanghai") == "Dec 2, 2026, 4:30\u202fAM"
    assert formatting.format_datetime(MOMENT, locale="en", tz="UTC") == "Dec 1, 2026, 8:30\u202fPM"
    assert formatting.format_datetime(MOMENT, "yyyy-MM-dd HH:mm", locale="en", tz="Asia/Shanghai") \
        == "2026-12-02 04:30"
    # the day of a moment is the day where the reader is
    assert formatting.format_date(MOMENT, locale="en", tz="Asia/Shanghai") == "Dec 2, 2026"
    assert formatting.format_date(MOMENT, locale="en", tz="UTC") == "Dec 1, 2026"
    assert formatting.format_date(dt.date(2026, 12, 1), locale="zh_CN") == "2026年12月1日"
    naive = MOMENT.replace(tzinfo=None)  # what some backends hand back: UTC
    assert formatting.format_datetime(naive, locale="en", tz="UTC") == "Dec 1, 2026, 8:30\u202fPM"
    hours_ago = MOMENT - dt.timedelta(hours=3)
    assert formatting.format_relative(hours_ago, now=MOMENT, locale="en") == "3 hours ago"
    assert formatting.format_relative(hours_ago, now=MOMENT, locale="zh_CN") == "3小时前"
    assert formatting.format_relative(MOMENT + dt.timedelta(days=2), now=MOMENT, locale="en") == "in 2 days"


def test_defaults_come_from_the_request_user(as_user) -> None:
    as_user("zh_CN", "UTC")
    assert formatting.current_timezone() == "UTC"
    assert formatting.format_datetime(MOMENT) == "2026年12月1日 20:30"
    assert formatting.format_money(Decimal("5"), "CNY") == "¥5.00"
    as_user("en")  # no time zone of one's own: the site's (Asia/Shanghai when not booted)
    assert formatting.current_timezone() == formatting.DEFAULT_TIMEZONE == "Asia/Shanghai"
    assert formatting.format_datetime(MOMENT) == "Dec 2, 2026, 4:30\u202fAM"
    assert formatting.format_money(Decimal("5"), "CNY") == "CN¥5.00"


def test_time_zone_names_are_validated() -> None:
    assert formatting.is_timezone("Asia/Shanghai") and formatting.is_timezone("UTC")
    assert not formatting.is_timezone("Mars/Olympus") and not formatting.is_timezone("")
    assert not formatting.is_timezone("../../etc/passwd")
    assert not formatting.is_timezone("localtime")  # the machine's, not a zone a person picks
    assert formatting.is_timezone("PRC")  # a legacy alias is accepted, only not offered
    offered = formatting.timezones()
    assert "Europe/Paris" in offered and "UTC" in offered and "PRC" not in offered and "localtime" not in offered


def test_template_filters(as_user) -> None:
    from core.templating import environment

    env = environment([])
    page = env.from_string(
        "{{ amount|money('CNY') }}|{{ n|number }}|{{ rate|percent }}|{{ at|datetime }}|{{ at|date }}|"
        "{{ none|datetime or '—' }}|{{ none|money('CNY') }}|{{ timezone() }}")
    values = {"amount": Decimal("120506.2"), "n": Decimal("1234.5"), "rate": Decimal("0.13"), "at": MOMENT,
              "none": None}
    as_user("zh_CN", "Asia/Shanghai")
    assert page.render(**values) == "¥120,506.20|1,234.5|13%|2026年12月2日 04:30|2026年12月2日|—||Asia/Shanghai"
    as_user("en", "UTC")
    assert page.render(**values) == "CN¥120,506.20|1,234.5|13%|Dec 1, 2026, 8:30\u202fPM|Dec 1, 2026|—||UTC"
