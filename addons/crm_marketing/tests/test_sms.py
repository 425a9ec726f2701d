"""The SMS interface: numbers and texts checked (422 naming the field), a key sent once whatever the retries."""

from __future__ import annotations

import pytest
from crm_marketing import sms

from core.errors import ValidationError


async def test_recording_backend_sends_a_key_once_and_checks_input() -> None:
    backend = sms.RecordingBackend()
    first = await backend.send("+8613800138000", "双十二优惠，回复 TD 退订", key="campaign-1:7")
    again = await backend.send("+8613800138000", "双十二优惠，回复 TD 退订", key="campaign-1:7")
    assert first == again and [m.to for m in backend.sent] == ["+8613800138000"]
    with pytest.raises(ValidationError) as err:
        await backend.send("13800138000", "x", key="k")
    assert list(err.value.fields) == ["to"]
    with pytest.raises(ValidationError) as err:
        await backend.send("+8613800138000", "", key="k2")
    assert list(err.value.fields) == ["text"]
    assert len(backend.sent) == 1
