"""Translations (Babel/gettext): each addon ships ``locale/<lang>/LC_MESSAGES/<addon>.po``.

Catalogs are compiled in memory at boot (no binary ``.mo`` in the repository) and merged in dependency
order. The language of a request is the user's, else the best match of ``Accept-Language``.
"""

from __future__ import annotations

import io
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


def ngettext(singular: str, plural: str, n: int) -> str:
    return _catalogs.get(language(), NullTranslations()).ngettext(singular, plural, n)


def in_language(lang: str, message: str) -> str:
    """``message`` translated to ``lang`` regardless of the request (e.g. a PDF in the customer's language)."""
    return _catalogs.get(lang, NullTranslations()).gettext(message)
