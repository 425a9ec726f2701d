"""Jobs of crm_sales. Each is idempotent: running one twice changes nothing the second time."""

from __future__ import annotations

from core.jobs import actor


@actor("crm_sales.send_activity_reminders", max_retries=3)
async def send_activity_reminders() -> None:
    from crm_sales.activities import send_reminders

    await send_reminders()


@actor("crm_sales.flag_stalled_deals", max_retries=3)
async def flag_stalled_deals() -> None:
    from crm_sales.activities import flag_stalled

    await flag_stalled()


@actor("crm_sales.assign_pending_leads", max_retries=3)
async def assign_pending_leads() -> None:
    from crm_sales.assignment import assign_pending

    await assign_pending()


@actor("crm_sales.train_win_model", max_retries=2)
async def train_win_model() -> None:
    from crm_sales import win

    await win.rescore(await win.train())


@actor("crm_sales.send_quote_email", max_retries=5, min_backoff_ms=1000)
async def send_quote_email(quote_id: int, accept_url: str) -> None:
    # At-least-once: if the SMTP server took the message and the worker died before the outbox row was
    # marked done, the customer gets the same e-mail (same link, same Message-ID) twice, never a different link.
    # A short heartbeat lease: a killed worker's e-mail goes out again within ~30 s, not after the time limit.
    from core.outbox import heartbeat, last_attempt
    from crm_sales.documents import mark_email_failed, send_email

    try:
        async with heartbeat(30):
            await send_email(quote_id, accept_url)
    except Exception:
        if last_attempt():  # the retries are spent: the quote no longer says "sending"
            await mark_email_failed(quote_id)
        raise
