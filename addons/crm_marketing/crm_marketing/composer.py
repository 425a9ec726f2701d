"""A campaign mail for one recipient: subject, inlined HTML with tracked links, text part.

:func:`compose` does it from scratch (Jinja2 sandbox, lxml for the links and footer, css-inline). A send uses
:class:`Compiled` instead: the body is rendered, rewritten and inlined once per campaign text and language with a
marker in place of each personal value and link, and a recipient costs string substitutions (values HTML-escaped
as autoescape would) plus its signed tokens. That is exact only when the template prints the values as they are
(``{{ contact.name }}``): a value used in a test, a filter or an attribute could change the markup around it, so
such a body (and anything odd found in its skeleton) is composed from scratch for every recipient, as before.
"""

from __future__ import annotations

import html as html_lib
import re
import uuid
from collections.abc import Callable
from typing import Any

import css_inline
import lxml.html
from jinja2 import nodes

from crm_marketing import personalization, tokens

_PAGE = (
    "<html><head><style>body{font-family:sans-serif;color:#222}"
    "p.unsubscribe{font-size:12px;color:#888}</style></head><body>%s</body></html>"
)
_INERT = {"unsubscribe_url": "#", "preferences_url": "#", "open_url": ""}


def pick(campaign: dict[str, Any], language: str) -> tuple[str, str]:
    """(subject, body) source in the recipient's language, else the other one."""
    zh = language.startswith("zh")
    first, second = ("zh", "en") if zh else ("en", "zh")
    for lang in (first, second):
        if campaign[f"subject_{lang}"]:
            return campaign[f"subject_{lang}"], campaign[f"body_{lang}"]
    return "", ""


def _assemble(
    body: str, language: str, links: dict[str, str], rewrite: Callable[[str], str] | None
) -> tuple[Any, str, str]:
    """(lxml tree, inlined HTML, text before the footer's lines) of a rendered body; ``rewrite`` maps a link's
    URL to its tracked one (None: links stay as written)."""
    doc = lxml.html.fragment_fromstring(body or "<p></p>", create_parent="div")
    text = doc.text_content()
    if rewrite is not None:
        for anchor in doc.iter("a"):
            href = anchor.get("href") or ""
            if href.startswith(("http://", "https://")) and href not in (
                links["unsubscribe_url"],
                links["preferences_url"],
            ):
                anchor.set("href", rewrite(href))
    zh = language.startswith("zh")
    footer = lxml.html.fragment_fromstring('<p class="unsubscribe"><a href="">unsubscribe</a></p>')
    link = footer.find("a")
    assert link is not None
    link.set("href", links["unsubscribe_url"])
    link.text = "退订" if zh else "Unsubscribe"
    prefs = lxml.html.fragment_fromstring("<a></a>")
    prefs.set("href", links["preferences_url"])
    prefs.text = "邮件偏好" if zh else "E-mail preferences"
    link.tail = " · "
    footer.append(prefs)
    doc.append(footer)
    if links["open_url"]:
        pixel = lxml.html.fragment_fromstring('<img alt="" width="1" height="1">')
        pixel.set("src", links["open_url"])
        doc.append(pixel)
    page = _PAGE % lxml.html.tostring(doc, encoding="unicode")
    return doc, css_inline.inline(page), text


def _footer_text(language: str, links: dict[str, str]) -> str:
    zh = language.startswith("zh")
    unsubscribe, prefs = ("退订", "邮件偏好") if zh else ("Unsubscribe", "E-mail preferences")
    return f"\n\n{unsubscribe}: {links['unsubscribe_url']}\n{prefs}: {links['preferences_url']}"


def compose(
    campaign: dict[str, Any], contact: dict[str, Any], language: str, recipient_id: int | None
) -> tuple[str, str, str, dict[str, str]]:
    """(subject, html, text, links) for one contact; tracking links only for a real recipient."""
    links = tokens.links(recipient_id) if recipient_id is not None else dict(_INERT)
    values = personalization.context(contact, campaign, language, links)
    subject_src, body_src = pick(campaign, language)
    subject = " ".join(personalization.render(subject_src, values, html=False).split())
    body = personalization.render(body_src, values, html=True)
    rewrite = None if recipient_id is None else (lambda href: tokens.click_url(recipient_id, href))
    _doc, html, text = _assemble(body, language, links, rewrite)
    return subject, html, text.strip() + _footer_text(language, links), links


_URLS = {"unsubscribe_url": "U", "preferences_url": "P", "open_url": "O"}


def _prints_values_only(source: str) -> bool:
    """True when every variable of ``source`` is printed as is: ``{{ contact.x }}``, ``{{ unsubscribe_url }}``."""
    tree = personalization.parse(source)
    printed: set[int] = set()
    for out in tree.find_all(nodes.Output):
        for node in out.nodes:
            if isinstance(node, nodes.Getattr) and isinstance(node.node, nodes.Name):
                printed.add(id(node.node))
            elif isinstance(node, nodes.Name) and node.name in _URLS:
                printed.add(id(node))
    return all(id(name) in printed for name in tree.find_all(nodes.Name))


class Compiled:
    """One campaign text (a subject and a body) in one language, rendered once with markers; :meth:`render` fills
    in a recipient. ``campaign`` holds the texts (``subject_zh``… as :func:`pick` reads them) and ``name``."""

    def __init__(self, campaign: dict[str, Any], language: str) -> None:
        self.campaign, self.language = campaign, language
        # a marker is ASCII letters and digits (lxml percent-encodes anything else in a link) with a random part
        # no template will contain by chance, and ends at a dot no key has
        self.prefix = f"M{uuid.uuid4().hex}"
        self.marks = re.compile(re.escape(self.prefix) + r"([a-z_]+|[UPO]|C[0-9]+)\.")
        self.subject_src, body_src = pick(campaign, language)
        self.clicks: list[str] = []
        self.skeleton: tuple[str, str] | None = None  # (HTML, text) with markers; None: compose each one
        try:
            if _prints_values_only(body_src):
                self.skeleton = self._skeleton(body_src)
        except Exception:  # noqa: BLE001 - a template saved before a check tightened: compose it from scratch
            self.skeleton = None

    def _mark(self, key: str) -> str:
        return f"{self.prefix}{key}."

    def _skeleton(self, body_src: str) -> tuple[str, str] | None:
        _mark = self._mark
        marked = {f: _mark(f) for f in personalization.CONTACT_FIELDS}
        links = {key: _mark(short) for key, short in _URLS.items()}
        values = personalization.context(marked, self.campaign, self.language, links)
        body = personalization.render(body_src, values, html=True)

        def rewrite(href: str) -> str:
            self.clicks.append(href)
            return _mark(f"C{len(self.clicks) - 1}")

        doc, html, text = _assemble(body, self.language, links, rewrite)
        own = {_mark(k) for k in (*_URLS.values(), *(f"C{i}" for i in range(len(self.clicks))))}
        for element in doc.iter():
            if self.prefix in (element.text or "") and element.tag in ("style", "script"):
                return None  # a value inside CSS or script: escaping differs there
            if any(self.prefix in v and v not in own for v in element.attrib.values()):
                return None  # a value inside an attribute, or a link built around one
        known = {*marked.values(), *own}
        if any(self.prefix in h for h in self.clicks) or html.count(self.prefix) != sum(
            1 for m in self.marks.finditer(html) if m.group(0) in known
        ):
            return None  # a marker cut or changed on the way: not the plain printing we can fill in
        return html, text

    def render(self, contact: dict[str, Any], recipient_id: int) -> tuple[str, str, str, dict[str, str]]:
        """(subject, html, text, links) exactly as :func:`compose` would make them for this recipient."""
        if self.skeleton is None:
            return compose(self.campaign, contact, self.language, recipient_id)
        links = tokens.links(recipient_id)
        values = personalization.context(contact, self.campaign, self.language, links)
        subject = " ".join(personalization.render(self.subject_src, values, html=False).split())
        fill = dict(values["contact"])
        fill.update({short: links[key] for key, short in _URLS.items()})
        fill.update({f"C{i}": tokens.click_url(recipient_id, href) for i, href in enumerate(self.clicks)})
        page, text = self.skeleton
        html = self.marks.sub(lambda m: html_lib.escape(fill[m.group(1)]), page)
        body_text = self.marks.sub(lambda m: fill[m.group(1)], text)
        return subject, html, body_text.strip() + _footer_text(self.language, links), links
