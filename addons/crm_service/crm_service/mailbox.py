"""The IMAP side of inbound mail (imap-tools): fetch unseen messages, hand each to ``mail_in.process``, and
flag it \\Seen only after its outcome has committed. A crash in between leaves the mail unseen; the next fetch
finds its Message-ID already recorded and only flags it, so nothing is lost and nothing is doubled."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass

from imap_tools import AND, MailBox, MailBoxUnencrypted, MailMessageFlags

from crm_service import mail_in

log = logging.getLogger("crm.service.mail")


@dataclass(frozen=True)
class MailboxConfig:
    host: str
    port: int = 143
    user: str = ""
    password: str = ""
    folder: str = "INBOX"
    ssl: bool = False


def configured() -> MailboxConfig | None:
    """The support mailbox from ``CRM_X_SERVICE_IMAP_HOST`` / ``_PORT`` / ``_USER`` / ``_PASSWORD`` / ``_FOLDER``
    / ``_SSL`` (1), or None when no host is set."""
    from core.runtime import current

    extra = current().settings.extra
    host = extra.get("CRM_X_SERVICE_IMAP_HOST", "")
    if not host:
        return None
    ssl = extra.get("CRM_X_SERVICE_IMAP_SSL", "") == "1"
    return MailboxConfig(host=host, port=int(extra.get("CRM_X_SERVICE_IMAP_PORT", "993" if ssl else "143")),
                         user=extra.get("CRM_X_SERVICE_IMAP_USER", ""),
                         password=extra.get("CRM_X_SERVICE_IMAP_PASSWORD", ""),
                         folder=extra.get("CRM_X_SERVICE_IMAP_FOLDER", "INBOX"), ssl=ssl)


def _login(cfg: MailboxConfig) -> MailBox | MailBoxUnencrypted:
    box = MailBox(cfg.host, cfg.port, timeout=30) if cfg.ssl else MailBoxUnencrypted(cfg.host, cfg.port, timeout=30)
    box.login(cfg.user, cfg.password, initial_folder=cfg.folder)
    return box


def _raw(box: MailBox | MailBoxUnencrypted, uid: str) -> bytes:
    """The message exactly as stored (BODY.PEEK: reading it does not set \\Seen)."""
    status, data = box.client.uid("FETCH", uid, "(BODY.PEEK[])")
    for item in data or []:
        if isinstance(item, tuple) and len(item) == 2:
            return bytes(item[1])
    raise ValueError(f"IMAP returned no body for uid {uid} ({status})")


async def fetch_once(cfg: MailboxConfig, *, own_address: str = "", limit: int = 200) -> Counter[str]:
    """Process up to ``limit`` unseen messages; returns how many had each outcome."""
    counts: Counter[str] = Counter()
    box = await asyncio.to_thread(_login, cfg)
    try:
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
    finally:
        await asyncio.to_thread(box.logout)
    return counts


async def fetch_configured() -> Counter[str]:
    from core.runtime import current

    cfg = configured()
    if cfg is None:
        return Counter()
    return await fetch_once(cfg, own_address=current().settings.smtp_from)
