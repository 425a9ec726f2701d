"""The JSON API (and kernel settings pages) of RFM scoring: value tiers, and the rebuilds of the scores.

``/api/marketing/tiers`` edits the tiers — names in en and zh-CN, a rule in the condition language over RFM
fields (checked: 422 naming ``rule.…``), order and whether it is active; the kernel serves the same resource as
a settings page under Marketing. ``POST /api/marketing/rfm-builds`` rebuilds the scores and tiers now and
answers with the build (when, how long, how many customers); ``GET`` lists past builds.
"""

from __future__ import annotations

import json
import re
from typing import Any

from core.api import Resource
from core.conditions import as_json
from core.errors import ValidationError
from core.i18n import N_
from core.security.access import Access
from crm_marketing.manifest import SEGMENT
from crm_marketing.models import RfmBuild, ValueTier

_KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
LABELS = {
    "key": N_("Key"),
    "name_en": N_("Name (English)"),
    "name_zh": N_("Name (Chinese)"),
    "rule": N_("Rule"),
    "sequence": N_("Priority"),
    "is_active": N_("Active"),
}


async def _validate_tier(values: dict[str, Any], before: dict[str, Any] | None) -> dict[str, Any]:
    from crm_marketing import rfm

    if "key" in values:
        if before is not None and values["key"] != before.get("key"):
            raise ValidationError({"key": N_("a tier's key is what segments name: it cannot change")})
        if not isinstance(values["key"], str) or not _KEY.match(values["key"]):
            raise ValidationError({"key": N_("must be lowercase letters, digits or _ (e.g. gold)")})
    if "rule" in values:
        values["rule"] = json.dumps(as_json(rfm.check_rule(values["rule"])), ensure_ascii=False)
    return values


async def _rebuild(acc: Access, values: dict[str, Any]) -> int:
    from crm_marketing import rfm

    await rfm.rebuild()
    row = await RfmBuild.select(RfmBuild.id).order_by(RfmBuild.id, ascending=False).first()
    return int(row["id"]) if row else 0


async def _validate_build(values: dict[str, Any], before: dict[str, Any] | None) -> dict[str, Any]:
    if before is not None:
        raise ValidationError({"currency": N_("a build is a record of what happened: it is not changed")})
    return {}


def resources() -> list[Resource]:
    return [
        Resource(
            path="/marketing/tiers",
            settings=N_("Marketing"),
            model=SEGMENT,
            table=ValueTier,
            summary=N_("Value tiers (rules over RFM scores)"),
            labels=LABELS,
            fields=("key", "name_en", "name_zh", "rule", "sequence", "is_active", "version"),
            writable=("key", "name_en", "name_zh", "rule", "sequence", "is_active"),
            required=("key", "name_en"),
            filters=("key", "is_active"),
            sortable=("id", "sequence"),
            validate=_validate_tier,
        ),
        Resource(
            path="/marketing/rfm-builds",
            model=SEGMENT,
            table=RfmBuild,
            summary="RFM rebuilds: POST rebuilds the scores and tiers now",
            fields=("built_at", "build_ms", "customers", "currency"),
            writable=("currency",),  # a POST takes no field; the build records the configured currency
            sortable=("id", "built_at"),
            validate=_validate_build,
            create=_rebuild,
        ),
    ]
