"""Audit changes of the kernel's own metadata records (a custom field's definition) read as words on the audit
page and timelines: no model keys, JSON or ``{}`` (the page crawl found them after a field was added)."""

from __future__ import annotations

from typing import Any

from core.timeline import changes


async def test_kernel_metadata_values_read_as_words() -> None:
    reader = changes.Reader(access=None)  # type: ignore[arg-type]  # these values need no record read

    async def shown(model: str, field: str, value: Any) -> str:
        return await reader.value(model, None, field, value)

    options = [{"key": "gold", "en": "Gold", "zh": "金卡"}, {"key": "silver", "en": "Silver", "zh": "银卡"}]
    assert await shown("core.custom_field", "options", options) == "Gold, Silver"
    assert await shown("core.custom_field", "validation", {}) == "—"
    assert await shown("core.custom_field", "validation", {"max_length": 20}) == "Max length: 20"
    assert await shown("core.custom_field", "name", "custom.loyalty_tier") == "Loyalty tier"
    # the same options stored in the definition's JSON column
    from core.models import CustomField

    assert await reader.value("core.custom_field", CustomField, "options", options) == "Gold, Silver"
    assert await reader.value("core.custom_field", CustomField, "options", ["a", "b"]) == "a, b"
    # elsewhere a dotted value is data, kept as entered
    assert await shown("crm_contacts.organization", "website", "example.com") == "example.com"
