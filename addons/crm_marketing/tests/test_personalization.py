"""Personalization: blank fields render a fallback in the recipient's language, a template may give its own,
and what could break a send (syntax errors, unknown variables, sandbox escapes) is refused on save with the line."""

from __future__ import annotations

import pytest
from crm_marketing import personalization as p

from core.errors import ValidationError

LINKS = {"unsubscribe_url": "https://crm.example.com/u"}


def _render(source: str, contact: dict[str, object], language: str) -> str:
    p.check(source, "body_en")
    return p.render(source, p.context(contact, {"name": "双十二"}, language, LINKS), html=True)


def test_blank_fields_fall_back_in_the_recipients_language() -> None:
    source = "{{ contact.name }}|{{ contact.company }}|{{ contact.owner }}|{{ campaign.name }}"
    assert _render(source, {"name": "", "company": None}, "zh_CN") == "尊敬的客户|贵公司|我们的团队|双十二"
    assert _render(source, {}, "en") == "Valued customer|your company|our team|双十二"
    assert (
        _render(source, {"name": "王芳", "company": "深圳魏信", "owner": "李杰"}, "zh_CN")
        == "王芳|深圳魏信|李杰|双十二"
    )
    assert _render("{{ contact.city or 'your city' }}", {"city": ""}, "en") == "your city"
    assert _render("<b>{{ contact.name }}</b>", {"name": "<script>x</script>"}, "en") == (
        "<b>&lt;script&gt;x&lt;/script&gt;</b>"
    )  # contact data is escaped in HTML bodies


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("Hello\n{{ contact.name", "line 2: "),
        ("a\nb\n{{ customer.name }}", "line 3: unknown variable 'customer'"),
        ("{{ contact.phone }}", "line 1: unknown variable 'contact.phone'"),
        ("{% for x in contact.__class__.__mro__ %}{% endfor %}", "line 1: unknown variable 'contact.__class__'"),
    ],
)
def test_templates_that_would_break_are_refused_with_the_line(source: str, message: str) -> None:
    with pytest.raises(ValidationError) as err:
        p.check(source, "body_zh")
    assert err.value.fields["body_zh"].startswith(message)
