"""Translations (Babel/gettext): each addon ships ``locale/<lang>/LC_MESSAGES/<addon>.po``.

Catalogs are compiled in memory at boot (no binary ``.mo`` in the repository) and merged in dependency
order. The language of a request is the user's, else the best match of ``Accept-Language``.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable
from contextvars import ContextVar
from importlib import resources
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LANGUAGES = ("en", "zh_CN")
_language: ContextVar[str] = ContextVar("crm_language", default="en")
_catalogs: dict[str, NullTranslations] = {}
#: per language, each message with ``%(name)s`` placeholders as a pattern matching its English formatted text
_patterns: dict[str, list[tuple[re.Pattern[str], str]]] = {}


def _compile(po: Path, locale: str) -> Translations:
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=locale)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer)


def load(packages: Iterable[str]) -> None:
    """Compile and merge the catalogs of ``packages`` (kernel first, then addons in dependency order)."""
    _catalogs.clear()
    _patterns.clear()
    for lang in LANGUAGES:
        merged: NullTranslations = Translations()
        for package in packages:
            root = resources.files(package).joinpath("locale", lang, "LC_MESSAGES")
            for name in (f"{package}.po",):
                po = Path(str(root.joinpath(name)))
                if po.is_file():
                    catalog = _compile(po, lang)
                    merged.merge(catalog)  # type: ignore[attr-defined]
                    # merge() takes the messages but not the plural rule: Chinese has one form, and the
                    # default rule (n != 1) would look for a second one and fall back to English
                    merged.plural = catalog.plural
        _catalogs[lang] = merged


def negotiate(accept_language: str | None, default: str = "en") -> str:
    """The first supported language in ``Accept-Language`` order (q-values honoured)."""
    if not accept_language:
        return default
    weighted: list[tuple[float, int, str]] = []
    for index, part in enumerate(accept_language.split(",")):
        tag, _, q = part.strip().partition(";q=")
        try:
            weight = float(q) if q else 1.0
        except ValueError:
            weight = 0.0
        weighted.append((-weight, index, tag.strip().replace("-", "_").lower()))
    for _, _, tag in sorted(weighted):
        for lang in LANGUAGES:
            if tag == lang.lower() or tag.split("_")[0] == lang.split("_")[0].lower():
                return lang
    return default


def set_language(lang: str) -> None:
    _language.set(lang if lang in LANGUAGES else "en")


def language() -> str:
    return _language.get()


def gettext(message: str) -> str:
    return _catalogs.get(language(), NullTranslations()).gettext(message)


def N_(message: str) -> str:
    """``message`` unchanged, marked for extraction: a label defined in code (a field's, a state's) that is
    translated where it is shown (``gettext(label)``, ``{{ label|t }}`` in templates)."""
    return message


def translate(text: str) -> str:
    """``text`` in the reader's language: a message of the catalogs, or the English formatting of one with
    ``%(name)s`` placeholders (an error raised as ``N_("is longer than %(limit)s characters") % {...}``, an
    import reason stored in English), translated with its values kept, or a ``field: message; …`` summary of
    a :class:`~core.errors.ValidationError` translated part by part. Anything else comes back unchanged."""
    done = gettext(text) if text else text
    if done != text or language() == "en":
        return done
    # ValidationError's own summary: "field: message; other_field: message"
    if "; " in text:
        return "; ".join(translate(part) for part in text.split("; "))
    for pattern, msgid in _formatted(language()):
        found = pattern.fullmatch(text)
        if found:
            return _fill(gettext(msgid), found.groupdict())
    name, colon, rest = text.partition(": ")
    if colon and re.fullmatch(r"[a-z][a-z0-9_]*", name):
        label = name.replace("_", " ").capitalize()
        field, message = translate(label), translate(rest)
        if (field, message) != (label, rest):
            return f"{field}: {message}"
    return text


def _fill(message: str, values: dict[str, str]) -> str:
    """``message % values`` that never raises: a translation naming a placeholder the English lacks says ""."""
    return re.sub(r"%\((\w+)\)[sd]|%%", lambda m: values.get(m.group(1), "") if m.group(1) else "%", message)


def _formatted(lang: str) -> list[tuple[re.Pattern[str], str]]:
    if lang not in _patterns:
        catalog = getattr(_catalogs.get(lang), "_catalog", {})
        out: list[tuple[re.Pattern[str], str]] = []
        for key in catalog:
            msgid = key[0] if isinstance(key, tuple) else key
            if not isinstance(msgid, str) or "%(" not in msgid or (isinstance(key, tuple) and key[1] != 0):
                continue
            parts = re.split(r"(%\(\w+\)[sd]|%%)", msgid)
            seen: set[str] = set()
            regex = ""
            for part in parts:
                name = re.fullmatch(r"%\((\w+)\)[sd]", part)
                if name and name.group(1) not in seen:
                    seen.add(name.group(1))
                    regex += f"(?P<{name.group(1)}>.+?)"
                elif name:
                    regex += f"(?P={name.group(1)})"
                else:
                    regex += "%" if part == "%%" else re.escape(part)
            if re.search(r"[^\W\d_]", re.sub(r"%\(\w+\)[sd]", "", msgid)):  # "%(a)s: %(b)s" would match anything
                out.append((re.compile(regex, re.DOTALL), msgid))
        # the most specific first: "no organization named %(name)s: …" before a bare "%(label)s: %(value)s"
        out.sort(key=lambda pair: -len(re.sub(r"%\(\w+\)[sd]", "", pair[1])))
        _patterns[lang] = out
    return _patterns[lang]


def ngettext(singular: str, plural: str, n: int) -> str:
    return _catalogs.get(language(), NullTranslations()).ngettext(singular, plural, n)


def in_language(lang: str, message: str) -> str:
    """``message`` translated to ``lang`` regardless of the request (e.g. a PDF in the customer's language)."""
    return _catalogs.get(lang, NullTranslations()).gettext(message)
