"""Countries: ISO 3166 codes read from what people type (a code, an English or Chinese name), and which countries
the shipped region dictionaries cover.

Names come from Babel's CLDR territory names (English, simplified and traditional Chinese), so no list is kept
here but a few aliases CLDR does not carry ("USA", "UK", "PRC"…). A region of a covered country is validated
and canonicalized (``regions.lookup_region``); any other country's region is kept as entered: a CRM that
refused "California" for an American customer would be wrong, and one that guessed would be worse.
"""

from __future__ import annotations

import functools
import re

from babel import Locale

from core.i18n import N_
from crm_contacts.standardize import StandardizationError, fold_width

__all__ = ["COVERED", "country_code", "country_name"]

#: countries whose regions a dictionary validates (``data/cn_regions.csv``)
COVERED = frozenset({"CN"})
_ALIASES = {
    "usa": "US", "us": "US", "unitedstatesofamerica": "US", "america": "US", "美利坚合众国": "US", "美國": "US",
    "uk": "GB", "greatbritain": "GB", "britain": "GB", "england": "GB", "英國": "GB",
    "prc": "CN", "peoplesrepublicofchina": "CN", "中华人民共和国": "CN", "中國": "CN", "mainlandchina": "CN",
    "hongkong": "HK", "香港": "HK", "macau": "MO", "macao": "MO", "澳门": "MO", "澳門": "MO", "台湾": "TW",
    "台灣": "TW", "taiwan": "TW", "korea": "KR", "southkorea": "KR", "韩国": "KR", "uae": "AE",
}
_NOISE = re.compile(r"[\s.,'’()\-·]+")


def _key(text: str) -> str:
    return _NOISE.sub("", fold_width(text).casefold())


@functools.cache
def _index() -> dict[str, str]:
    out: dict[str, str] = {}
    for locale in ("en", "zh", "zh_Hant"):
        for code, name in Locale.parse(locale).territories.items():
            if len(code) == 2 and code.isalpha():
                out.setdefault(_key(name), code)
                out.setdefault(code.casefold(), code)
    return out | _ALIASES


def country_code(raw: str, *, field: str = "country") -> str:
    """"us", "USA", "United States", "美国" → "US"; "" → ""; anything else raises ``StandardizationError``."""
    text = fold_width(raw).strip()
    if not text:
        return ""
    code = _index().get(_key(text))
    if code is None:
        raise StandardizationError(field, N_("%(value)s is not a country (use a code like US or a name like Germany)")
                                   % {"value": repr(raw)})
    return code


def country_name(code: str, language: str = "en") -> str:
    """The country's name in ``language`` (``zh_CN`` → 美国); the code itself if CLDR has no name for it."""
    try:
        return str(Locale.parse(language.replace("-", "_")).territories.get(code, code))
    except (ValueError, TypeError):
        return code
