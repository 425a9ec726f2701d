"""The signature a receiver checks: ``X-CRM-Signature: t=<unix seconds>,v1=<hex>``, where ``v1`` is
HMAC-SHA256 over ``"<t>." + body`` with the subscription's secret.

The timestamp is signed with the body, so a receiver that also refuses a ``t`` more than :data:`REPLAY_WINDOW`
seconds from its own clock cannot be made to accept a captured request later; within the window it drops a
second request with an ``X-CRM-Event-Id`` it has already handled (every retry of one event carries the same).
"""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "X-CRM-Signature"
REPLAY_WINDOW = 300


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The header's value for ``body`` sent now (or at ``timestamp``)."""
    t = int(time.time()) if timestamp is None else int(timestamp)
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def verify(secret: str, header: str, body: bytes, *, tolerance: int = REPLAY_WINDOW, now: float | None = None) -> bool:
    """What a receiver does (Python receivers may copy it): the signature matches and is fresh."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        t = int(parts.get("t", ""))
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - t) > tolerance:
        return False
    expected = sign(secret, body, t).split(",v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))
