"""SMTP ``DATA`` with a step between the server's 354 and the content: the content follows the step at once.

The send marks a recipient ``sending`` (a database commit) before its content goes out; a worker killed after
that mark and before the content's final dot has lost the message (it stays ``unknown``, never delivered).
With aiosmtplib's ``data()`` that window held a round trip to the SMTP server (``DATA`` → 354) and an event-loop
turn on each side; taking the 354 first leaves only the turn from the commit's reply to the write. aiosmtplib
has no public hook there, so this drives its protocol object as ``data()`` does (its command lock and its
"reply expected" flag, aiosmtplib 5.x); without them it falls back to the mark, then ``data()``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiosmtplib
from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings


class NotReady(Exception):
    """The step said no after the server was waiting for content: the connection was closed, nothing sent."""


def _hookable(protocol: Any) -> bool:
    return protocol is not None and hasattr(protocol, "_command_lock") and hasattr(protocol, "_response_pending")


async def data_after(
    smtp: aiosmtplib.SMTP, message: bytes, ready: Callable[[], Awaitable[bool]], timeout: float = 30.0
) -> None:
    """``DATA``; once the server answered 354, ``await ready()``; if true, the content (else :class:`NotReady`,
    connection closed: a message cut off before its final dot is never delivered). Raises what ``data()`` raises;
    an exception from ``ready`` closes the connection the same way and propagates."""
    protocol: Any = smtp.protocol
    if not _hookable(protocol):
        if not await ready():
            raise NotReady
        await smtp.data(message)
        return
    content = PERIOD_REGEX.sub(b"..", normalize_message_line_endings(message)) + b".\r\n"
    if protocol._command_lock is None:
        raise aiosmtplib.SMTPServerDisconnected("Server not connected")
    try:
        await _exchange(smtp, protocol, content, ready, timeout)
    except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError):
        smtp.close()  # as data() does
        raise


async def _exchange(
    smtp: aiosmtplib.SMTP, protocol: Any, content: bytes, ready: Callable[[], Awaitable[bool]], timeout: float
) -> None:
    async with protocol._command_lock:
        protocol._response_pending = True
        protocol.write(b"DATA\r\n")
        start = await protocol.read_response(timeout=timeout)
        if start.code != aiosmtplib.SMTPStatus.start_input:
            raise aiosmtplib.SMTPDataError(start.code, start.message)
        try:
            go = await ready()
        except BaseException:
            smtp.close()
            raise
        if not go:
            smtp.close()
            raise NotReady
        protocol._response_pending = True
        protocol.write(content)
        response = await protocol.read_response(timeout=timeout)
        if response.code != aiosmtplib.SMTPStatus.completed:
            raise aiosmtplib.SMTPDataError(response.code, response.message)
