"""Chinese administrative regions: the shipped dictionary and a tolerant parser.

The dictionary (``data/cn_regions.csv``) holds all 34 provincial-level divisions and the major
prefecture-level cities, each with its official name, pinyin, historic/English/traditional aliases and
(for provinces) the one-character abbreviation. It is loaded once per process.

Canonical form (decided here, documented in the addon's docs):

- ``province`` is the short name without the administrative suffix: 广东, 北京, 广西, 香港.
- ``city`` is the short prefecture-level name: 深圳, 苏州. For the four municipalities and the two SARs the
  province-level division *is* the city, so ``city`` repeats it (北京市 → Region("北京", "北京")); that way a
  filter on city finds Beijing contacts too.
- Anything after the city (district, street) is ignored; a name that is neither is an error.
"""

from __future__ import annotations

import csv
import functools
import io
import unicodedata
from dataclasses import dataclass
from importlib import resources

__all__ = ["Region", "RegionError", "lookup_region", "regions"]

# Kinds whose single division is also its own city.
_CITY_LIKE_KINDS = frozenset({"municipality", "sar"})
# Leading country names people prepend to an address.
_COUNTRY_PREFIXES = ("中华人民共和国", "中國", "中国", "peoplesrepublicofchina", "china", "prc", "cn")
# Suffixes people write after a bare name, by kind: (Chinese, English/pinyin). Kept per kind so that
# "Hubei Shiyan" is not read as "Hubei shi" + "yan".
_SUFFIXES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "province": (("省",), ("province", "sheng")),
    "municipality": (("市",), ("municipality", "city", "shi")),
    "autonomous_region": (("自治区",), ("autonomousregion", "zizhiqu")),
    "sar": (("特别行政区",), ("sar", "specialadministrativeregion")),
    "city": (("市",), ("city", "shi", "prefecture")),
}


@dataclass(frozen=True, slots=True)
class Region:
    """A canonical Chinese region: short province name and, when known, short city name."""

    province: str
    city: str | None = None


@dataclass(frozen=True, slots=True)
class _Entry:
    province: str
    city: str | None
    kind: str

    @property
    def is_province(self) -> bool:
        return self.city is None

    def region(self) -> Region:
        if self.city is None and self.kind in _CITY_LIKE_KINDS:
            return Region(self.province, self.province)
        return Region(self.province, self.city)


class RegionError(ValueError):
    """The text names no known region, or names several incompatible ones."""


def region_key(text: str) -> str:
    """Fold text to the form the index is keyed by: NFKC, no accents, lowercase, letters/digits only.

    Pinyin is written with or without tone marks and apostrophes (Xī'ān, Xian), so both go.
    """
    decomposed = unicodedata.normalize("NFD", unicodedata.normalize("NFKC", text))
    return "".join(c for c in decomposed.lower() if c.isalnum() and not unicodedata.combining(c))


@dataclass(frozen=True, slots=True)
class _Index:
    keys: dict[str, tuple[_Entry, ...]]  # folded alias -> entries it may mean
    abbreviations: dict[str, _Entry]  # 粤 -> 广东, matched only as the whole input
    max_len: int
    entries: tuple[_Entry, ...]


def _aliases(row: dict[str, str]) -> set[str]:
    cjk = {row["city"] or row["province"], row["full_name"]}
    latin = {row["pinyin"]}
    for alias in filter(None, (a.strip() for a in row["aliases"].split("|"))):
        (cjk if any(_is_cjk(c) for c in alias) else latin).add(alias)
    cjk_suffixes, latin_suffixes = _SUFFIXES[row["kind"]]
    keys = {region_key(a) for a in cjk | latin}
    keys |= {region_key(a) + s for a in cjk for s in cjk_suffixes}
    keys |= {region_key(a) + s for a in latin for s in latin_suffixes}
    return keys


def _is_cjk(char: str) -> bool:
    return "\u3400" <= char <= "\u9fff" or "\uf900" <= char <= "\ufaff"


@functools.cache
def _index() -> _Index:
    keys: dict[str, list[_Entry]] = {}
    abbreviations: dict[str, _Entry] = {}
    entries: list[_Entry] = []
    source = resources.files("crm_contacts").joinpath("data/cn_regions.csv")
    for row in csv.DictReader(io.StringIO(source.read_text(encoding="utf-8"), newline="")):
        entry = _Entry(row["province"], row["city"] or None, row["kind"])
        entries.append(entry)
        for key in _aliases(row):
            keys.setdefault(key, []).append(entry)
        if row["abbr"]:
            abbreviations[row["abbr"]] = entry
    frozen = {k: tuple(v) for k, v in keys.items()}
    return _Index(frozen, abbreviations, max(map(len, frozen)), tuple(entries))


def regions() -> tuple[Region, ...]:
    """Every region in the dictionary (provinces first), e.g. for a picker."""
    return tuple(e.region() for e in _index().entries)


def _terms(key: str, index: _Index) -> list[tuple[_Entry, ...]]:
    """Greedy longest-match split of a folded string into dictionary terms; stops at the first unknown part."""
    terms: list[tuple[_Entry, ...]] = []
    pos = 0
    while pos < len(key) and len(terms) < 2:
        for length in range(min(index.max_len, len(key) - pos), 0, -1):
            found = index.keys.get(key[pos : pos + length])
            if found:
                terms.append(found)
                pos += length
                break
        else:
            break  # a district, street or noise: the rest does not matter
    return terms


def _strip_country(key: str) -> str:
    for prefix in _COUNTRY_PREFIXES:
        if key.startswith(prefix) and len(key) > len(prefix):
            return key[len(prefix) :]
    return key


def _single(term: tuple[_Entry, ...], text: str) -> Region:
    provinces = [e for e in term if e.is_province]
    if provinces:  # "吉林" / "Jilin" is both a province and a city: the province is what people mean
        return provinces[0].region()
    if len(term) > 1:
        names = "、".join(f"{e.province}{e.city}" for e in term)
        raise RegionError(f"{text!r} is ambiguous ({names}); add the province")
    return term[0].region()


@functools.lru_cache(maxsize=4096)  # imports repeat a few hundred place names over and over; Region is frozen
def lookup_region(text: str) -> Region:
    """Parse free text (Chinese, pinyin or English, any width) into a canonical ``Region``.

    Accepts "广东省深圳市南山区", "深圳", "Shenzhen, Guangdong", "Guangxi Zhuang Autonomous Region",
    "ＢＥＩＪＩＮＧ", "粤". Raises ``RegionError`` when nothing is recognised or a city is ambiguous.
    """
    index = _index()
    stripped = unicodedata.normalize("NFKC", text).strip()
    if stripped in index.abbreviations:
        return index.abbreviations[stripped].region()
    key = _strip_country(region_key(text))
    terms = _terms(key, index)
    if not terms:
        raise RegionError(f"{text!r} is not a known Chinese province or city")
    if len(terms) == 1:
        return _single(terms[0], text)
    first, second = terms
    pairs = [
        (p, c)
        for a in first
        for b in second
        for p, c in ((a, b), (b, a))
        if p.is_province and not c.is_province and c.province == p.province
    ]
    if pairs:
        province, city = pairs[0]
        return Region(province.province, city.city)
    if any(e.is_province for e in first):
        # "北京市朝阳区": the second match is a same-named place elsewhere, i.e. part of the street address.
        return _single(first, text)
    raise RegionError(f"{text!r} names places in different provinces")
