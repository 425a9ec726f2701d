"""An IMAP mailbox an addon reads (crm_service's support inbox, crm_marketing's bounce address): its settings,
read from ``<PREFIX>_HOST`` / ``_PORT`` / ``_USER`` / ``_PASSWORD`` / ``_FOLDER`` / ``_SSL`` (1), and a login
with ``imap-tools`` (a dependency of the addons that read mail, imported only when one logs in)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Mailbox:
    host: str
    port: int = 143
    user: str = ""
    password: str = ""
    folder: str = "INBOX"
    ssl: bool = False


def configured(prefix: str) -> Mailbox | None:
    """The mailbox the settings name under ``prefix`` (e.g. ``CRM_X_SERVICE_IMAP``), or None when no host is set."""
    from core.runtime import current

    extra = current().settings.extra
    host = extra.get(f"{prefix}_HOST", "")
    if not host:
        return None
    ssl = extra.get(f"{prefix}_SSL", "") == "1"
    return Mailbox(host=host, port=int(extra.get(f"{prefix}_PORT", "993" if ssl else "143")),
                   user=extra.get(f"{prefix}_USER", ""), password=extra.get(f"{prefix}_PASSWORD", ""),
                   folder=extra.get(f"{prefix}_FOLDER", "INBOX"), ssl=ssl)


def login(cfg: Mailbox) -> Any:
    """A logged-in ``imap_tools`` mailbox on ``cfg.folder`` (blocking: call it in a thread)."""
    from imap_tools import MailBox, MailBoxUnencrypted

    box = MailBox(cfg.host, cfg.port, timeout=30) if cfg.ssl else MailBoxUnencrypted(cfg.host, cfg.port, timeout=30)
    box.login(cfg.user, cfg.password, initial_folder=cfg.folder)
    return box
