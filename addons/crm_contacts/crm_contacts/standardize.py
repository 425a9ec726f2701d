"""Standardization of contact fields: phones, emails, names, Chinese regions, exact dedup keys.

Every function either returns a clean value or raises ``StandardizationError(field, message)``; ``field``
names the input field so the API can answer 422 with ``{"fields": {field: message}}``. Callers pass
``field=`` when the value comes from a differently named input (``normalize_phone(v, field="mobile")``).

Decisions:

- **Width**: every input is first folded with NFKC (``fold_width``): full-width Latin letters, digits and
  punctuation (ＡＢＣ１２３, ＠, ＋, （）, the ideographic space) become ASCII, half-width katakana becomes
  normal katakana, and CJK ideographs are left as they are (NFKC maps no unified ideograph to another).
- **Emails**: ``normalize_email`` keeps the local part exactly as typed (RFC 5321 says it may be
  case-sensitive, and we send mail to what the user typed) and lowercases the domain; ``email_key`` is the
  all-lowercase form used to find duplicates, because in practice no provider distinguishes case. We do not
  strip dots or ``+tags``: that is Gmail-specific and would merge distinct people elsewhere.
- **Names**: see ``normalize_name``.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from core.i18n import N_
from crm_contacts.regions import Region, RegionError, lookup_region

__all__ = [
    "Phone",
    "PhoneKind",
    "Region",
    "StandardizationError",
    "canonical_region",
    "dedup_keys",
    "email_key",
    "fold_width",
    "normalize_email",
    "normalize_name",
    "normalize_phone",
    "normalize_tax_id",
]

PhoneKind = Literal[
    "mobile",
    "fixed_line",
    "fixed_line_or_mobile",
    "toll_free",
    "premium_rate",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
    "unknown",
]

_KINDS: dict[int, PhoneKind] = {
    phonenumbers.PhoneNumberType.MOBILE: "mobile",
    phonenumbers.PhoneNumberType.FIXED_LINE: "fixed_line",
    phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed_line_or_mobile",
    phonenumbers.PhoneNumberType.TOLL_FREE: "toll_free",
    phonenumbers.PhoneNumberType.PREMIUM_RATE: "premium_rate",
    phonenumbers.PhoneNumberType.SHARED_COST: "shared_cost",
    phonenumbers.PhoneNumberType.VOIP: "voip",
    phonenumbers.PhoneNumberType.PERSONAL_NUMBER: "personal_number",
    phonenumbers.PhoneNumberType.PAGER: "pager",
    phonenumbers.PhoneNumberType.UAN: "uan",
    phonenumbers.PhoneNumberType.VOICEMAIL: "voicemail",
}

# Invisible characters that sneak in from copy-paste (zero-width space, BOM, direction marks, word joiner).
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u200e\u200f\u2060\ufeff"))
_SPACES = re.compile(r"\s+")
_SEPARATORS = str.maketrans("", "", " -.")
_PLAIN_CN_MOBILE = re.compile(r"(?:\+86|0086)?(1[3-9]\d{9})")


# An import checks the same few domains again and again, and email-validator's domain check (IDNA, UTS-46
# character by character) is two thirds of its cost. Its result depends on its arguments only and is read, never
# changed, by validate_email: remember the last domains seen. Invalid domains raise, so are never remembered.
# (the package's attribute validate_email is the function, which hides its module of the same name)
_email_validator_impl: Any = importlib.import_module("email_validator.validate_email")  # patched: no stub
if not hasattr(_email_validator_impl.validate_email_domain_name, "cache_info"):
    _email_validator_impl.validate_email_domain_name = functools.lru_cache(maxsize=4096)(
        _email_validator_impl.validate_email_domain_name)


class StandardizationError(ValueError):
    """A field value that cannot be standardized; ``field`` names the input field for a 422 answer."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class Phone:
    """A validated phone number: ``e164`` is the canonical key, ``original`` what the user typed."""

    e164: str
    original: str
    region: str | None
    kind: PhoneKind


def fold_width(text: str) -> str:
    """Fold full-width/half-width and other compatibility forms to their plain form (NFKC).

    "ＡＢＣ１２３" → "ABC123", "ｶﾞ" → "ガ", ideographic space → space; CJK ideographs are unchanged.
    Idempotent.
    """
    return unicodedata.normalize("NFKC", text)


def _require(raw: object, field: str) -> str:
    if raw is None:
        raise StandardizationError(field, N_("is required"))
    if not isinstance(raw, str):
        raise StandardizationError(field, N_("must be a string"))
    text = _SPACES.sub(" ", fold_width(raw).translate(_INVISIBLE)).strip()
    if not text:
        raise StandardizationError(field, N_("is required"))
    return text


def normalize_phone(raw: str, default_region: str = "CN", *, field: str = "phone") -> Phone:
    """Parse and validate a phone number; numbers without a country code are read in ``default_region``.

    Accepts full-width digits, spaces, dashes, dots, "+86", "0086" and "(010) 6552 9988" style landlines.
    Raises ``StandardizationError`` if the number is not a valid number of its country.
    """
    text = _require(raw, field)
    fast = _plain_cn_mobile(text, raw, default_region)
    if fast is not None:
        return fast
    candidates = [text]
    if text.startswith("00"):
        # "0086…" is the international prefix of most countries but not of the default region's (US: 011).
        candidates.append("+" + text[2:])
    for candidate in candidates:
        try:
            number = phonenumbers.parse(candidate, default_region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
            region = phonenumbers.region_code_for_number(number)
            kind = _KINDS.get(phonenumbers.number_type(number), "unknown")
            return Phone(e164, raw, region if region and region != "001" else None, kind)
    raise StandardizationError(field, N_("%(value)s is not a valid phone number") % {"value": repr(raw)})


def _plain_cn_mobile(text: str, raw: str, default_region: str) -> Phone | None:
    """A Chinese mobile number written plainly (11 digits after an optional +86/0086, only spaces, dashes or
    dots between), validated without ``phonenumbers.parse``: two thirds of the cost, and most of an import.

    Validity and kind still come from the library's metadata (``number_type`` is what ``is_valid_number``
    asks too), so the result is the general path's. ``179x`` is a carrier prefix that parsing may strip: left
    to the general path, like anything that is not plainly a mobile number (None)."""
    if default_region != "CN":
        return None
    found = _PLAIN_CN_MOBILE.fullmatch(text.translate(_SEPARATORS))
    if found is None or found.group(1).startswith("179"):
        return None
    national = found.group(1)
    kind = phonenumbers.number_type(phonenumbers.PhoneNumber(country_code=86, national_number=int(national)))
    if kind == phonenumbers.PhoneNumberType.UNKNOWN:
        return None
    return Phone("+86" + national, raw, "CN", _KINDS.get(kind, "unknown"))


def normalize_email(raw: str, *, field: str = "email") -> str:
    """Validate an email address (syntax only, no DNS) and return it with the domain lowercased.

    Full-width input ("ｊｏｈｎ＠ｅｘａｍｐｌｅ．ｃｏｍ") is folded first. The local part keeps its case; use
    ``email_key`` for duplicate lookups.
    """
    text = _require(raw, field)
    try:
        valid = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        raise StandardizationError(field, str(exc)) from exc
    # email_validator already lowercases ASCII domains and IDNA-normalises the rest; be explicit anyway.
    return f"{valid.local_part}@{valid.domain.lower()}"


def email_key(raw: str, *, field: str = "email") -> str:
    """The duplicate-detection key of an email address: the normalized address, all lowercase."""
    return normalize_email(raw, field=field).lower()


def _has_case(char: str) -> bool:
    return char.lower() != char.upper()


def _title_word(word: str) -> str:
    # str.title() capitalises after apostrophes and hyphens too: o'brien → O'Brien, jean-luc → Jean-Luc.
    titled = word.title()
    if len(titled) > 2 and titled.startswith("Mc") and _has_case(titled[2]):
        # The Mc prefix is (almost) always followed by a capital; Mac is not (Mack, Macy), so it is left alone.
        titled = "Mc" + titled[2].upper() + titled[3:]
    return titled


@functools.lru_cache(maxsize=65536)  # imports repeat the same names (王伟, 李娜…); a bad one raises, never cached
def normalize_name(raw: str, *, field: str = "name") -> str:
    """Clean a person or organisation name for display and storage.

    Rule: fold width (NFKC), drop invisible characters, trim and collapse whitespace. Then, only if every
    letter that has case is lowercase or every one is uppercase ("JOHN SMITH", "mary o'brien"), title-case
    each word (with the "Mc" prefix kept as McX). Mixed-case input is trusted as typed, so "McDonald",
    "van der Berg", "DiCaprio" and "iPhone Ltd" are never changed. Scripts without case (Chinese, Japanese,
    Arabic…) pass through untouched. Known limit: all-caps "VAN DER BERG" becomes "Van Der Berg".
    Idempotent.
    """
    text = _require(raw, field)
    cased = [c for c in text if _has_case(c)]
    if cased and (all(c.islower() for c in cased) or all(c.isupper() for c in cased)):
        text = fold_width(" ".join(_title_word(w) for w in text.split(" ")))
    return text


def canonical_region(raw: str, *, field: str = "region") -> Region:
    """Canonicalize a Chinese province/city in Chinese, pinyin or English to ``Region(province, city)``.

    "北京市" → ("北京", "北京"), "广东省" → ("广东", None), "深圳市" → ("广东", "深圳"),
    "广西壮族自治区" → ("广西", None), "香港特别行政区" → ("香港", "香港"), "广东省深圳市" → ("广东", "深圳"),
    "Shenzhen" → ("广东", "深圳"). Municipalities and SARs repeat themselves as city.
    """
    text = _require(raw, field)
    try:
        return lookup_region(text)
    except RegionError as exc:
        raise StandardizationError(field, str(exc)) from exc


def normalize_tax_id(raw: str, *, field: str = "tax_id") -> str:
    """Normalize an organisation tax id (e.g. the 18-character unified social credit code) for comparison.

    Folds width, uppercases and drops spaces, dashes and dots; it does not validate check digits because
    foreign VAT numbers are stored in the same field.
    """
    text = "".join(c for c in _require(raw, field).upper() if c.isalnum())
    if not text:
        raise StandardizationError(field, N_("is required"))
    return text


def _values(record: Mapping[str, Any], *names: str) -> Iterable[str]:
    for name in names:
        value = record.get(name)
        if isinstance(value, str):
            yield value
        elif isinstance(value, Iterable):
            yield from (v for v in value if isinstance(v, str))


def dedup_keys(record: Mapping[str, Any], default_region: str = "CN") -> set[str]:
    """Exact duplicate keys of a contact: ``phone:<E.164>``, ``email:<lowercase>``, ``tax:<id>``.

    Reads ``phone``/``mobile``/``phones``, ``email``/``emails`` and ``tax_id``/``org_tax_id`` (single values
    or iterables). Values that do not standardize are skipped: keys are a lookup aid, validation happens
    on input. Two records sharing any key are exact duplicate candidates.
    """
    keys: set[str] = set()
    for value in _values(record, "phone", "mobile", "phones"):
        with contextlib.suppress(StandardizationError):
            keys.add("phone:" + normalize_phone(value, default_region).e164)
    for value in _values(record, "email", "emails"):
        with contextlib.suppress(StandardizationError):
            keys.add("email:" + email_key(value))
    for value in _values(record, "tax_id", "org_tax_id"):
        with contextlib.suppress(StandardizationError):
            keys.add("tax:" + normalize_tax_id(value))
    return keys
