"""A campaign mail compiled once per text and language fills in a recipient exactly as composing it from scratch
does, and falls back to composing for templates where filling in could differ; its MIME bytes parse back to the
same subject, headers and parts."""

from __future__ import annotations

import email
import email.policy
from types import SimpleNamespace
from typing import Any

import lxml.html
import pytest
from crm_marketing import composer, mime, tokens

CAMPAIGN = {
    "id": 7,
    "name": "双十二",
    "subject_zh": "{{ contact.name }} 的优惠",
    "subject_en": "Hi {{ contact.first_name }}",
}
PLAIN = (
    "<style>p{margin:0}</style><p>{{ contact.name }}，您好！{{ contact.company }} · {{ contact.city }}</p>"
    '<p><a href="https://shop.example.cn/sale?a=1&amp;b=商品">立即选购</a> <a href="{{ unsubscribe_url }}">退订</a></p>'
    "<p>{{ campaign.name }} {{ contact.owner }} {{ unsubscribe_url }}</p>"
)
NOT_PLAIN = [
    "<p>{{ contact.name|upper }}</p>",
    "{% if contact.city %}<p>{{ contact.city }}</p>{% endif %}",
    '<p><a href="https://shop.example.cn/?n={{ contact.name }}">x</a></p>',
    "<style>p::after{content:'{{ contact.name }}'}</style><p>x</p>",
    '<p><a href="{{ unsubscribe_url }}&x=1">x</a></p>',
]
CONTACTS: list[dict[str, Any]] = [
    {"name": "王芳", "first_name": "芳", "company": "深圳魏信", "owner": "李杰", "city": "深圳"},
    {"name": "<b>A & \"B\" 'C'</b>", "company": "", "owner": None, "city": "  "},
    {},
]


@pytest.fixture(autouse=True)
def settings(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = SimpleNamespace(settings=SimpleNamespace(secret_key="test-secret", base_url="https://crm.example.com"))
    monkeypatch.setattr(tokens, "current", lambda: fake)


def _shape(html: str) -> list[tuple[str, str, str, list[tuple[str, str]]]]:
    doc = lxml.html.document_fromstring(html)
    return [(str(e.tag), e.text or "", e.tail or "", sorted(e.attrib.items())) for e in doc.iter()]


@pytest.mark.parametrize("language", ["zh_CN", "en"])
def test_filling_in_a_compiled_mail_equals_composing_it(language: str) -> None:
    compiled = composer.Compiled({**CAMPAIGN, "body_zh": PLAIN, "body_en": PLAIN}, language)
    assert compiled.skeleton is not None  # the fast path is taken
    for rid, contact in enumerate(CONTACTS, start=1):
        fast = compiled.render(contact, rid)
        slow = composer.compose({**CAMPAIGN, "body_zh": PLAIN, "body_en": PLAIN}, contact, language, rid)
        assert fast[0] == slow[0] and fast[2] == slow[2] and fast[3] == slow[3]
        assert _shape(fast[1]) == _shape(slow[1])
        assert "/marketing/public/click/" in fast[1] and "/marketing/public/open/" in fast[1]
    assert "&lt;b&gt;A &amp; " in compiled.render(CONTACTS[1], 2)[1]  # contact data escaped as autoescape does


@pytest.mark.parametrize("body", NOT_PLAIN)
def test_templates_that_use_values_otherwise_are_composed_each_time(body: str) -> None:
    compiled = composer.Compiled({**CAMPAIGN, "body_zh": body, "body_en": body}, "zh_CN")
    assert compiled.skeleton is None
    contact = {"name": "<i>王芳</i>", "city": ""}
    assert compiled.render(contact, 3) == composer.compose(
        {**CAMPAIGN, "body_zh": body, "body_en": body}, contact, "zh_CN", 3
    )


def test_mime_bytes_parse_back_and_refuse_header_injection() -> None:
    envelope = mime.Envelope("商城 <news@example.cn>")
    assert envelope.mail_from == "news@example.cn"
    subject = "王芳 的优惠 " * 12  # long: folded into several encoded words
    raw = envelope.build(
        to="wang.fang@example.cn",
        subject=subject.strip(),
        text="您好\n.\n第二行",  # a lone dot line: the SMTP client stuffs it, base64 never has one
        html="<p>您好</p>",
        message_id="<crm-marketing-7-1@example.cn>",
        list_unsubscribe="https://crm.example.com/marketing/public/unsubscribe/" + "x" * 120,
    )
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["Subject"] == subject.strip() and msg["To"] == "wang.fang@example.cn"
    assert msg["From"].addresses[0].display_name == "商城" and msg["Date"]
    assert msg["List-Unsubscribe"] == "<https://crm.example.com/marketing/public/unsubscribe/" + "x" * 120 + ">"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    parts = {p.get_content_type(): p.get_content() for p in msg.walk() if not p.is_multipart()}
    assert parts == {"text/plain": "您好\n.\n第二行", "text/html": "<p>您好</p>"}
    for bad in ({"to": "a@example.cn\r\nBcc: x@example.cn"}, {"subject": "hi\r\nBcc: x@example.cn"}):
        with pytest.raises(mime.BadHeader):
            envelope.build(**{"to": "a@example.cn", "subject": "s", "text": "", "html": "", **bad})
