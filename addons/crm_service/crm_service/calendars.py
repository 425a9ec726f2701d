"""Working hours as stored on a calendar: ``{"0": [["09:00", "12:00"], ["13:00", "18:00"]], ...}``."""

from __future__ import annotations

import json
import re
from typing import Any

from core.errors import ValidationError
from core.i18n import N_

_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")


def clean_hours(raw: Any) -> dict[str, list[list[str]]]:
    """Weekday (0 = Monday … 6) → sorted, non-overlapping windows of "HH:MM"; 422 naming ``hours`` otherwise."""
    bad = ValidationError({"hours": N_('must look like {"0": [["09:00", "18:00"]]} (0 = Monday)')})
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise bad from None
    if not isinstance(raw, dict):
        raise bad
    out: dict[str, list[list[str]]] = {}
    for day, windows in raw.items():
        if str(day) not in {str(d) for d in range(7)} or not isinstance(windows, list):
            raise bad
        clean: list[list[str]] = []
        for w in windows:
            if (not isinstance(w, list) or len(w) != 2 or not all(isinstance(x, str) and _HHMM.match(x) for x in w)
                    or w[0] >= w[1]):
                raise bad
            clean.append([w[0], w[1]])
        clean.sort()
        if any(a[1] > b[0] for a, b in zip(clean, clean[1:], strict=False)):
            raise bad
        out[str(day)] = clean
    return out
