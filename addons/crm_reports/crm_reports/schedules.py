"""Scheduled reports: a cron expression (``croniter``; one that does not parse is refused on save), the report
e-mailed with the attachment to users and roles — each recipient's copy computed as that recipient, as a shared
report's page is (their rights, their field rules, their language): the owner's figures never reach someone who
could not see them. A recipient the report is not shared with, or who may not read its data, gets nothing (the run
says how many). Each run is logged and a failed run notifies the owner."""

from __future__ import annotations

import asyncio
import datetime as dt
import smtplib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from email.message import EmailMessage
from typing import Any

from croniter import croniter

from core.errors import CrmError, ValidationError
from core.i18n import gettext, language, set_language
from core.security import audit
from core.security.access import Access
from crm_reports.manifest import SCHEDULE
from crm_reports.models import Schedule, ScheduleRun
from crm_reports.reports import me

FORMATS = ("pdf", "xlsx", "csv")


@contextmanager
def _speaking(lang: str) -> Iterator[None]:
    before = language()
    set_language(lang)
    try:
        yield
    finally:
        set_language(before)


def next_run(cron: str, after: dt.datetime) -> dt.datetime:
    """The next time ``cron`` fires after ``after`` (UTC); a 422 naming ``cron`` when it does not parse."""
    if not cron.strip() or len(cron) > 100 or not croniter.is_valid(cron.strip()):
        raise ValidationError({"cron": f"{cron!r} is not a cron expression (e.g. \"0 8 * * 1\")"})
    found: dt.datetime = croniter(cron.strip(), after).get_next(dt.datetime)
    return found if found.tzinfo else found.replace(tzinfo=dt.UTC)


async def save(acc: Access, report_id: int, values: Mapping[str, Any]) -> int:
    from crm_reports import reports

    await reports.get(acc, report_id)
    cron = str(values.get("cron") or "")
    fmt = str(values.get("format") or "pdf")
    if fmt not in FORMATS:
        raise ValidationError({"format": f"unknown format {fmt!r}"})
    users = values.get("recipients") or [me(acc).user_id]
    roles = values.get("roles") or []
    if not isinstance(users, (list, tuple)) or not isinstance(roles, (list, tuple)):
        raise ValidationError({"recipients": "must be lists"})
    await acc.require(SCHEDULE, "create")
    row = Schedule(report=report_id, cron=cron.strip(), format=fmt, recipients=[int(u) for u in users],
                   roles=[str(r) for r in roles], owner=me(acc).user_id,
                   next_run_at=next_run(cron, dt.datetime.now(dt.UTC)))
    schedule_id = int((await Schedule.insert(row).returning(Schedule.id))[0]["id"])
    await audit.record("create", model=SCHEDULE, record_id=schedule_id,
                       changes={"cron": [None, cron], "report": [None, report_id]})
    return schedule_id


async def _recipients(user_ids: Sequence[int], roles: Sequence[str]) -> list[tuple[int, str]]:
    """(user id, address) of the active recipients with an address, by address."""
    from core.security.models import User, UserRole

    ids = set(user_ids)
    if roles:
        ids |= {r["user"] for r in await UserRole.select(UserRole.user).where(UserRole.role.is_in(list(roles)))}
    if not ids:
        return []
    rows = await User.select(User.id, User.email).where(User.id.is_in(list(ids)) & (User.is_active == True))  # noqa: E712
    return sorted({(int(r["id"]), r["email"]) for r in rows if r["email"]}, key=lambda r: r[1])


async def _attachment(report: Mapping[str, Any], result: Any, fmt: str, who: Any) -> tuple[bytes, tuple[str, str]]:
    from crm_reports import exports

    if fmt == "xlsx":
        return exports.xlsx(result, report["name"]), ("application", "vnd.openxmlformats-officedocument"
                                                                     ".spreadsheetml.sheet")
    if fmt == "csv":
        return "".join(exports.csv_lines(result)).encode(), ("text", "csv")
    return await exports.pdf(dict(report), result, user=who), ("application", "pdf")


async def run(schedule_id: int, now: dt.datetime | None = None) -> dict[str, Any]:
    """Render and send one schedule now (each recipient's copy as them), log the run, move its next time on."""
    from core.runtime import current
    from core.security import access, principal
    from crm_reports import exports, reports

    now = now or dt.datetime.now(dt.UTC)
    found = await Schedule.select().where(Schedule.id == schedule_id).first()
    if found is None:
        return {"ok": False}
    sched = reports.loaded(found)
    log: dict[str, Any] = {"schedule": schedule_id, "ok": False, "rows": 0, "recipients": 0, "detail": ""}
    try:
        who = await principal.load(sched["owner"], implied=access.policy().implied)
        if who is None:
            raise RuntimeError("the schedule's owner is gone")
        report = await reports.get(access.Access(who), sched["report"])  # the owner may still open it
        to = await _recipients(sched["recipients"], sched["roles"])
        settings = current().settings
        if not to:
            raise RuntimeError("no recipient has an e-mail address")
        if not settings.smtp_host:
            raise RuntimeError("CRM_SMTP_HOST is not set: reports cannot be e-mailed")
        skipped = 0
        for user_id, address in to:
            reader = await principal.load(user_id, implied=access.policy().implied)
            if reader is None:
                skipped += 1
                continue
            try:
                theirs = await reports.get(access.Access(reader), sched["report"])
                result = await reports.result(access.Access(reader), theirs, limit=exports.EXCEL_MAX_ROWS)
            except CrmError:  # not shared with them, or data or a field they may not read
                skipped += 1
                continue
            with _speaking(reader.language or who.language or "en"):
                data, mime = await _attachment(theirs, result, sched["format"], reader)
                subject = gettext("Scheduled report: %(name)s") % {"name": theirs["name"]}
                body = gettext("The report %(name)s is attached (%(rows)s rows).") % {"name": theirs["name"],
                                                                                      "rows": len(result.rows)}
            msg = EmailMessage()
            msg["From"], msg["To"], msg["Subject"] = settings.smtp_from, address, subject
            msg.set_content(body)
            safe = "".join(c for c in theirs["name"] if c.isalnum() or c in "-_ ") or "report"
            msg.add_attachment(data, maintype=mime[0], subtype=mime[1], filename=f"{safe}.{sched['format']}")

            def deliver(msg: EmailMessage = msg) -> None:
                with smtplib.SMTP(settings.smtp_host or "", settings.smtp_port, timeout=30) as smtp:
                    smtp.send_message(msg)

            await asyncio.to_thread(deliver)
            await exports.audited(report, f"{sched['format']} e-mailed to {reader.login}", len(result.rows),
                                  principal=who)
            log["recipients"] += 1
            log["rows"] = max(log["rows"], len(result.rows))
        if skipped:
            log["detail"] = f"{skipped} recipient(s) may not open this report: nothing sent to them"
        if not log["recipients"]:
            raise RuntimeError(log["detail"])
        log["ok"] = True
    except Exception as exc:  # the run is logged and the owner told; the next run comes at its time
        log["detail"] = str(exc)[:2000]
        await _tell_owner(sched, log["detail"])
    await ScheduleRun.insert(ScheduleRun(schedule=schedule_id, ok=log["ok"], rows=log["rows"],
                                         recipients=log["recipients"], detail=log["detail"]))
    try:
        upcoming: dt.datetime | None = next_run(sched["cron"], now)
    except ValidationError:
        upcoming = None
    await Schedule.update({Schedule.last_run_at: now, Schedule.next_run_at: upcoming}).where(
        Schedule.id == schedule_id)
    return log


async def _tell_owner(sched: Mapping[str, Any], detail: str) -> None:
    from core.hooks import Notification
    from core.notifications import notify

    if sched.get("owner"):
        await notify(Notification(user_id=sched["owner"], title=gettext("A scheduled report failed"), body=detail,
                                  url="/reports/schedules", kind="crm_reports", source="crm_reports"))


async def due(now: dt.datetime | None = None) -> list[int]:
    now = now or dt.datetime.now(dt.UTC)
    rows = await Schedule.select(Schedule.id).where(
        (Schedule.is_active == True) & (Schedule.next_run_at <= now))  # noqa: E712
    return [int(r["id"]) for r in rows]
