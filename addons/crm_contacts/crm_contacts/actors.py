"""Background jobs of crm_contacts: imports and the duplicate scan (idempotent: safe to run twice)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.errors import PermanentJobError
from core.jobs import actor

if TYPE_CHECKING:
    from core.security.access import Access


async def _access(user_id: int | None) -> Access:
    """The Access of the user who asked for the job, and the audit context set to them."""
    from core.security import context
    from core.security.access import Access, policy
    from core.security.principal import load

    principal = await load(user_id, implied=policy().implied) if user_id else None
    if user_id and principal is None:
        raise PermanentJobError(f"user {user_id} no longer exists or is inactive")
    context.set_context(context.RequestContext(principal=principal, request_id="job"))
    return Access(principal)


@actor("crm_contacts.run_import", max_retries=3)
async def run_import(batch_id: int, user_id: int) -> None:
    """Run or resume import ``batch_id`` as ``user_id`` (rows already recorded are not redone)."""
    from core.outbox import heartbeat
    from crm_contacts.importing import run_batch

    # a killed worker's import resumes about a minute later instead of after the 5-minute time limit + 30 s
    async with heartbeat(60):
        await run_batch(await _access(user_id), batch_id)


@actor("crm_contacts.dedup_scan", max_retries=2, time_limit_ms=3_600_000)
async def dedup_scan() -> None:
    """Rebuild the open duplicate groups from the whole base (scheduled daily, also on demand)."""
    from crm_contacts.duplicates import scan_people

    await scan_people()
