"""Canned replies: prepared answers with a few named placeholders, filled in for the ticket at hand. Only the
names below are replaced (no attribute access, no expressions): a reply text can never reach other data."""

from __future__ import annotations

import re
from typing import Any

from core.errors import ValidationError
from core.i18n import N_

PLACEHOLDERS = ("customer_name", "ticket_ref", "subject", "agent_name")
_FIELD = re.compile(r"\{(\w+)\}")
_ANY = re.compile(r"\{([^{}]*)\}")


def check(body: str) -> str:
    unknown = sorted({m for m in _ANY.findall(body or "") if m not in PLACEHOLDERS})
    if unknown:
        raise ValidationError({"body": N_("unknown placeholder(s): %(names)s; use %(known)s") % {
            "names": ", ".join(unknown), "known": ", ".join("{" + p + "}" for p in PLACEHOLDERS)}})
    return body


def fill(body: str, values: dict[str, Any]) -> str:
    return _FIELD.sub(lambda m: str(values.get(m.group(1), m.group(0))), body or "")


async def validate(values: dict[str, Any], before: dict[str, Any] | None) -> dict[str, Any]:
    if "body" in values:
        values["body"] = check(str(values["body"] or ""))
    return values
