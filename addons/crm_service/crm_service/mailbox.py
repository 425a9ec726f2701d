"""The IMAP side of inbound mail (imap-tools): fetch unseen messages, hand each to ``mail_in.process``, and
flag it \\Seen only after its outcome has committed. A crash in between leaves the mail unseen; the next fetch
finds its Message-ID already recorded and only flags it, so nothing is lost and nothing is doubled.

Two ways to run it: the scheduled job ``crm_service.fetch_mail`` (``fetch_once`` every two minutes), or a
long-running watcher (``watch``, ``crm service watch-mail``) that stays logged in and waits with IMAP IDLE
(RFC 2177) for the server to announce new mail, so a mail becomes a ticket within seconds; on a server
without IDLE (or refusing it) it polls instead, and it logs in again after a lost connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import logging
from collections import Counter

from imap_tools import AND, MailBox, MailBoxUnencrypted, MailMessageFlags
from imap_tools.errors import MailboxLoginError, UnexpectedCommandStatusError

from core import db, imap
from crm_service import mail_in

log = logging.getLogger("crm.service.mail")


#: connections of the pool a fetcher keeps on its loop (PostgreSQL; none on SQLite, or where the loop has one):
#: without it every query outside a transaction opened a connection of its own, ten per mail (a server process
#: forked each time), and a watcher made 3 tickets a second on a loaded machine
POOL = 2

#: the support mailbox's settings (kept under this name for callers and tests)
MailboxConfig = imap.Mailbox
_login = imap.login


def configured() -> MailboxConfig | None:
    """The support mailbox from ``CRM_X_SERVICE_IMAP_HOST`` / ``_PORT`` / ``_USER`` / ``_PASSWORD`` / ``_FOLDER``
    / ``_SSL`` (1), or None when no host is set."""
    return imap.configured("CRM_X_SERVICE_IMAP")


def _raw(box: MailBox | MailBoxUnencrypted, uid: str) -> bytes:
    """The message exactly as stored (BODY.PEEK: reading it does not set \\Seen)."""
    status, data = box.client.uid("FETCH", uid, "(BODY.PEEK[])")
    for item in data or []:
        if isinstance(item, tuple) and len(item) == 2:
            return bytes(item[1])
    raise ValueError(f"IMAP returned no body for uid {uid} ({status})")


async def fetch_once(cfg: MailboxConfig, *, own_address: str = "", limit: int = 200) -> Counter[str]:
    """Process up to ``limit`` unseen messages; returns how many had each outcome."""
    await db.ensure_loop_pool(POOL)
    box = await asyncio.to_thread(_login, cfg)
    try:
        return await _drain(box, own_address=own_address, limit=limit)
    finally:
        await asyncio.to_thread(box.logout)


async def _drain(box: MailBox | MailBoxUnencrypted, *, own_address: str, limit: int) -> Counter[str]:
    """Process up to ``limit`` unseen messages of a logged-in ``box`` (see ``fetch_once``)."""
    counts: Counter[str] = Counter()
    uids = await asyncio.to_thread(box.uids, AND(seen=False))
    for uid in list(uids)[:limit]:
        try:
            raw = await asyncio.to_thread(_raw, box, uid)
            outcome = await mail_in.process(raw, own_address=own_address)
        except Exception:
            # left unseen: tried again at the next fetch (process() itself quarantines bad mail)
            log.exception("mail uid %s left for the next fetch", uid)
            counts["retry"] += 1
            continue
        await asyncio.to_thread(box.flag, uid, MailMessageFlags.SEEN, True)
        counts[outcome.outcome] += 1
    return counts


#: what a lost or refused connection raises (the watcher logs in again after a pause)
LOST = (OSError, imaplib.IMAP4.error, imaplib.IMAP4.abort, MailboxLoginError,
        UnexpectedCommandStatusError)


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def watch(cfg: MailboxConfig, stop: asyncio.Event, *, own_address: str = "", use_idle: bool | None = None,
                idle_seconds: float = 60, poll_seconds: float = 60, limit: int = 200) -> Counter[str]:
    """Fetch until ``stop`` is set: after each round wait in IDLE for up to ``idle_seconds`` (well below the
    29 minutes after which servers drop an idle client; ``stop`` is seen between two waits) or, without IDLE
    (``use_idle=False``, or the server lacks or refuses it), ``poll_seconds``. Returns the outcomes counted."""
    total: Counter[str] = Counter()
    await db.ensure_loop_pool(POOL)
    while not stop.is_set():
        try:
            box = await asyncio.to_thread(_login, cfg)
        except LOST:
            log.exception("IMAP login to %s failed: trying again in %ss", cfg.host, poll_seconds)
            await _pause(stop, poll_seconds)
            continue
        idle = use_idle if use_idle is not None else "IDLE" in box.client.capabilities
        try:
            while not stop.is_set():
                # until a round finds nothing: what arrived during a round was announced in the answer to one
                # of its commands (read and dropped by imaplib), so IDLE would not announce it again
                # (a mail left for a retry does not count, or a mail that always fails would spin here)
                while not stop.is_set():
                    got = await _drain(box, own_address=own_address, limit=limit)
                    total += got
                    if got.total() == got["retry"]:
                        break
                if stop.is_set():
                    break
                if idle:
                    try:
                        await asyncio.to_thread(box.idle.wait, idle_seconds)
                    except UnexpectedCommandStatusError:
                        log.warning("IMAP server %s refused IDLE: polling every %ss", cfg.host, poll_seconds)
                        idle = False
                else:
                    await _pause(stop, poll_seconds)
        except LOST:
            log.exception("IMAP connection to %s lost: logging in again", cfg.host)
            await _pause(stop, min(poll_seconds, 5))
        finally:
            with contextlib.suppress(*LOST):
                await asyncio.to_thread(box.logout)
    return total


async def fetch_configured() -> Counter[str]:
    from core.runtime import current

    cfg = configured()
    if cfg is None:
        return Counter()
    return await fetch_once(cfg, own_address=current().settings.smtp_from)
