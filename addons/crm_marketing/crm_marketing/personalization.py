"""Campaign subjects and bodies: Jinja2 in a sandbox, checked on save, rendered per recipient.

A template may use ``contact.name``, ``contact.first_name``, ``contact.company``, ``contact.owner``,
``contact.city``, ``campaign.name`` and the links ``unsubscribe_url`` / ``preferences_url``. A field a contact
lacks renders its fallback (``尊敬的客户`` / ``Valued customer`` for a name…) or the template's own
(``{{ contact.company or "your team" }}``), never an error. A syntax error or a variable outside that list is
refused on save with its line (422 naming the field).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from jinja2 import ChainableUndefined, Template, TemplateSyntaxError, meta, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from core.errors import ValidationError

CONTACT_FIELDS = ("name", "first_name", "company", "owner", "city")
CAMPAIGN_FIELDS = ("name",)
NAMES = {"contact": CONTACT_FIELDS, "campaign": CAMPAIGN_FIELDS, "unsubscribe_url": (), "preferences_url": ()}
FALLBACKS = {
    "zh_CN": {"name": "尊敬的客户", "first_name": "尊敬的客户", "company": "贵公司", "owner": "我们的团队", "city": ""},
    "en": {
        "name": "Valued customer",
        "first_name": "there",
        "company": "your company",
        "owner": "our team",
        "city": "",
    },
}

_html = ImmutableSandboxedEnvironment(autoescape=True, undefined=ChainableUndefined)
_text = ImmutableSandboxedEnvironment(autoescape=False, undefined=ChainableUndefined)


def parse(source: str) -> nodes.Template:
    """The template's syntax tree (raises ``TemplateSyntaxError``)."""
    return _html.parse(source)


def check(source: str, field: str) -> None:
    """Refuse ``source`` (422 on ``field``) if it does not parse or names a variable it may not use."""
    try:
        tree = _html.parse(source)
    except TemplateSyntaxError as exc:
        raise ValidationError({field: f"line {exc.lineno}: {exc.message}"}) from None
    unknown = sorted(meta.find_undeclared_variables(tree) - set(NAMES))
    if unknown:
        line = next((n.lineno for n in tree.find_all(nodes.Name) if n.name == unknown[0]), 1)
        raise ValidationError({field: f"line {line}: unknown variable {unknown[0]!r} (use {', '.join(sorted(NAMES))})"})
    for node in tree.find_all(nodes.Getattr):
        if isinstance(node.node, nodes.Name) and node.node.name in NAMES and node.attr not in NAMES[node.node.name]:
            allowed = ", ".join(f"{node.node.name}.{a}" for a in NAMES[node.node.name]) or "nothing"
            raise ValidationError(
                {field: f"line {node.lineno}: unknown variable '{node.node.name}.{node.attr}' (use {allowed})"}
            )


def context(
    contact: Mapping[str, Any], campaign: Mapping[str, Any], language: str, links: Mapping[str, str]
) -> dict[str, Any]:
    """What a template sees for one recipient: every contact field present, blank ones filled from the
    language's fallbacks."""
    fallbacks = FALLBACKS["zh_CN" if language.startswith("zh") else "en"]
    filled = {k: (str(contact.get(k) or "").strip() or fallbacks[k]) for k in CONTACT_FIELDS}
    return {
        "contact": filled,
        "campaign": {"name": str(campaign.get("name") or "")},
        "unsubscribe_url": links.get("unsubscribe_url", ""),
        "preferences_url": links.get("preferences_url", links.get("unsubscribe_url", "")),
    }


@functools.lru_cache(maxsize=64)
def _compiled(source: str, html: bool) -> Template:
    # one campaign's subject and body are rendered for every recipient: compile them once
    return (_html if html else _text).from_string(source)


def render(source: str, values: Mapping[str, Any], *, html: bool) -> str:
    """``source`` rendered in the sandbox (checked on save; anything odd left renders empty, never raises)."""
    try:
        return _compiled(source, html).render(values)
    except Exception:  # a template saved before a check tightened: send nothing odd, but never crash a batch
        return ""
