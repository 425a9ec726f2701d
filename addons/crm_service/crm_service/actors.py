"""Jobs of crm_service. Each is idempotent: running one twice changes nothing the second time."""

from __future__ import annotations

from core.jobs import actor


@actor("crm_service.check_sla", max_retries=3)
async def check_sla() -> None:
    from crm_service.followup import remind_due
    from crm_service.sla import check_open_tickets

    await check_open_tickets()
    await remind_due()


@actor("crm_service.fetch_mail", max_retries=1)
async def fetch_mail() -> None:
    from crm_service.mailbox import fetch_configured

    await fetch_configured()


@actor("crm_service.send_reply", max_retries=5)
async def send_reply(message_id: int) -> None:
    from crm_service.mail_out import send_reply as send

    await send(message_id)


@actor("crm_service.send_portal_invite", max_retries=5)
async def send_portal_invite(to: str, path: str, user_id: int | None = None) -> None:
    from crm_service.mail_out import send_invite

    await send_invite(to, path, user_id)
