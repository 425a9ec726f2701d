"""System status: is everything this CRM depends on configured and alive? For the admin page
(``/admin/status``), ``crm doctor`` and the banners on pages whose actions need something missing.

Each check is cheap and bounded (network probes time out after a second or two); addons add their own
(``crm_status_checks``: an ERP connection, a mail box…).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from dataclasses import dataclass
from typing import Any

from core import db, hooks, migrate
from core.hooks import StatusCheck
from core.i18n import gettext as _
from core.models import Outbox, ScheduleTick

BACKLOG_WARN = 1000
STALE_MINUTES = 10


@dataclass(frozen=True)
class Report:
    checks: list[StatusCheck]
    seconds: float

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


async def _database() -> StatusCheck:
    started = time.perf_counter()
    try:
        await Outbox.count()
    except Exception as exc:
        return StatusCheck("database", _("Database"), False, f"{type(exc).__name__}: {exc}")
    kind = "PostgreSQL" if db.is_postgres() else "SQLite"
    return StatusCheck("database", _("Database"), True, f"{kind}, {1000 * (time.perf_counter() - started):.0f} ms")


async def _migrations(runtime: Any) -> StatusCheck:
    from core.migrations_registry import app_config

    waiting: list[str] = []
    for addon in [None, *runtime.addons]:
        if addon is not None and not addon.migrations:
            continue
        if await migrate.pending(app_config(addon)):
            waiting.append(addon.title if addon else _("Kernel"))
    if waiting:
        return StatusCheck("migrations", _("Migrations"), False, ", ".join(waiting),
                           hint=_("run `crm addons upgrade` (and `crm init` for the kernel)"))
    return StatusCheck("migrations", _("Migrations"), True, _("all applied"))


async def _broker(runtime: Any) -> StatusCheck:
    url = runtime.settings.broker_url
    if not url:
        return StatusCheck("broker", _("Job broker"), True, _("in-process (jobs run inside the web process)"))
    if url.startswith(("amqp://", "amqps://")):
        import asyncio

        from core.jobs import make_broker

        try:
            (await asyncio.to_thread(make_broker, url)).close()
        except Exception as exc:
            return StatusCheck("broker", _("Job broker"), False, f"RabbitMQ: {exc}",
                               hint=_("check CRM_RABBITMQ_URL and that RabbitMQ is running"))
        return StatusCheck("broker", _("Job broker"), True, "RabbitMQ")
    try:
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        try:
            await client.ping()
        finally:
            await client.aclose()
    except Exception as exc:
        return StatusCheck("broker", _("Job broker"), False, f"Redis: {type(exc).__name__}: {exc}",
                           hint=_("check CRM_REDIS_URL and that Redis is running"))
    return StatusCheck("broker", _("Job broker"), True, "Redis")


async def _jobs() -> list[StatusCheck]:
    now = dt.datetime.now(dt.UTC)
    failed = int(await Outbox.count().where(Outbox.state == "failed"))
    pending = int(await Outbox.count().where(Outbox.state.is_in(["pending", "running"])))
    stale = int(await Outbox.count().where(Outbox.state.is_in(["pending", "running"])
                                            & (Outbox.created_at < now - dt.timedelta(minutes=STALE_MINUTES))))
    out = [StatusCheck("failed_jobs", _("Failed jobs"), failed == 0, str(failed),
                       hint=_("see /admin/jobs, then retry or fix the cause") if failed else "", url="/admin/jobs"),
           StatusCheck("backlog", _("Jobs waiting"), pending < BACKLOG_WARN and stale == 0,
                       _("%(n)s waiting, %(old)s older than %(m)s minutes") % {"n": pending, "old": stale,
                                                                                "m": STALE_MINUTES},
                       hint=_("are workers running? start `crm worker`") if stale else "")]
    return out


async def _scheduler(runtime: Any) -> StatusCheck:
    if not runtime.schedules:
        return StatusCheck("scheduler", _("Scheduler"), True, _("nothing scheduled"))
    shortest = min(s.interval for s in runtime.schedules)
    since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=max(3 * shortest, 300))
    alive = await ScheduleTick.exists().where(ScheduleTick.fired_at >= since)
    return StatusCheck("scheduler", _("Scheduler"), bool(alive),
                       _("ticking") if alive else _("no tick in the last %(s)s s") % {"s": max(3 * shortest, 300)},
                       hint="" if alive else _("start `crm scheduler` (the embedded mode runs one in `crm serve`)"))


async def _smtp(runtime: Any) -> StatusCheck:
    settings = runtime.settings
    if not settings.smtp_host:
        return StatusCheck("smtp", _("E-mail (SMTP)"), False, _("not configured"),
                           hint=_("set CRM_SMTP_HOST (and CRM_SMTP_PORT, CRM_SMTP_FROM): e-mails cannot be sent"),
                           pages=("/sales/quotes",))
    try:
        _reader, writer = await asyncio.wait_for(asyncio.open_connection(settings.smtp_host, settings.smtp_port), 2)
        writer.close()
        await writer.wait_closed()
    except Exception as exc:
        return StatusCheck("smtp", _("E-mail (SMTP)"), False,
                           f"{settings.smtp_host}:{settings.smtp_port}: {type(exc).__name__}",
                           hint=_("the mail server does not answer"), pages=("/sales/quotes",))
    return StatusCheck("smtp", _("E-mail (SMTP)"), True, f"{settings.smtp_host}:{settings.smtp_port}")


async def report() -> Report:
    """Every check, the kernel's and the installed addons'."""
    from core.runtime import current

    runtime = current()
    started = time.perf_counter()
    kernel = [await _database(), await _migrations(runtime), await _broker(runtime), *await _jobs(),
              await _scheduler(runtime), await _smtp(runtime)]
    extra: list[StatusCheck] = []
    for found in await hooks.call("crm_status_checks", probe=True):
        extra.append(found)
    return Report(checks=kernel + extra, seconds=time.perf_counter() - started)


async def notices(path: str) -> list[StatusCheck]:
    """Failing checks that concern the page at ``path``, for a banner: only what can be known without a
    network probe (configuration), so every page render stays cheap."""
    from core.runtime import current

    runtime = current()
    found: list[StatusCheck] = []
    if not runtime.settings.smtp_host and path.startswith("/sales/quotes"):
        found.append(StatusCheck("smtp", _("E-mail (SMTP)"), False, _("not configured"),
                                 hint=_("e-mail is not set up: quotes cannot be sent — configure CRM_SMTP_HOST")))
    if not runtime.settings.smtp_host and path.startswith("/account/preferences"):
        found.append(StatusCheck("smtp", _("E-mail (SMTP)"), False, _("not configured"),
                                 hint=_("e-mail is not set up: notifications reach you here only, not by e-mail")))
    for check in await hooks.call("crm_status_checks", probe=False):
        if not check.ok and any(path.startswith(p) for p in check.pages):
            found.append(check)
    return found

