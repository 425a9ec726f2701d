"""The SMS channel: one interface, and a recording backend (no provider is wired in yet).

A backend sends one text to one E.164 number and returns the provider's message id. ``key`` is the caller's
idempotency key (campaign and recipient): a backend must send a key once, whatever the retries — the recording
backend shows the contract. ``CRM_X_MARKETING_SMS_BACKEND=recording`` selects it; a provider (Aliyun, Tencent
Cloud SMS…) is another class with the same ``send``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol

from core.errors import ConfigError, ValidationError
from core.i18n import N_

E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
MAX_TEXT = 500  # long messages are split by providers into 70-character (Chinese) parts; 500 keeps it to 8


@dataclass(frozen=True)
class SmsMessage:
    to: str
    text: str
    key: str
    message_id: str


class SmsBackend(Protocol):
    name: str

    async def send(self, to: str, text: str, *, key: str) -> str: ...


def check(to: str, text: str) -> None:
    """422 naming the field for a number that is not E.164 or a text that is empty or too long."""
    if not E164.match(to):
        raise ValidationError({"to": N_("must be a phone number in international form (+8613800138000)")})
    if not text.strip() or len(text) > MAX_TEXT:
        raise ValidationError({"text": N_("must be 1 to 500 characters")})


@dataclass
class RecordingBackend:
    """Keeps what it is asked to send (tests, demos); a key already sent returns its first message id."""

    name: str = "recording"
    sent: list[SmsMessage] = field(default_factory=list)

    async def send(self, to: str, text: str, *, key: str) -> str:
        check(to, text)
        for message in self.sent:
            if message.key == key:
                return message.message_id
        message = SmsMessage(to, text, key, f"rec-{len(self.sent) + 1}")
        self.sent.append(message)
        return message.message_id


_recording = RecordingBackend()


def backend() -> SmsBackend:
    """The configured backend; a clear error when none is."""
    from core.runtime import current

    name = current().settings.extra.get("CRM_X_MARKETING_SMS_BACKEND", "")
    if name == "recording":
        return _recording
    raise ConfigError("no SMS backend is configured (CRM_X_MARKETING_SMS_BACKEND=recording is the only one)")
