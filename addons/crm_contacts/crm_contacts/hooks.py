"""crm_contacts' implementations of kernel hooks: API resources, merge re-linking, 360° panels, CLI."""

from __future__ import annotations

from typing import Any

from core.hookspecs import hookimpl


@hookimpl
def crm_api_resources() -> Any:
    from crm_contacts.resources import resources

    return resources()


@hookimpl
async def crm_merge_records(model: str, survivor_id: int, loser_ids: list[int]) -> None:
    from crm_contacts.api import ORGANIZATION_MODEL, PERSON_MODEL
    from crm_contacts.merging import relink_own

    if model in (PERSON_MODEL, ORGANIZATION_MODEL):
        await relink_own(model, survivor_id, loser_ids)


@hookimpl
def crm_cli_commands() -> Any:
    from crm_contacts.cli import contacts

    return [contacts]


def _kind(model: str) -> str | None:
    from crm_contacts.api import ORGANIZATION_MODEL, PERSON_MODEL

    return {PERSON_MODEL: "people", ORGANIZATION_MODEL: "organizations"}.get(model)


@hookimpl
async def crm_record_panels(model: str, record_id: int, user: Any) -> Any:
    """Notes (with an add form) and past merges on the 360° page of people and organizations."""
    from core.extensions import Panel
    from core.security.access import Access
    from crm_contacts.models import Merge, Note

    kind = _kind(model)
    if kind is None:
        return None
    fk = Note.person if kind == "people" else Note.organization
    notes = await Note.select(Note.body, Note.created_at).where(fk == record_id).order_by(
        Note.id, ascending=False).limit(50)
    merges = await Merge.select(Merge.loser_ids, Merge.created_at).where(
        (Merge.model == model) & (Merge.survivor_id == record_id)).output(load_json=True)
    acc = Access(user)
    from core.i18n import gettext as _

    out = [Panel(key="crm_contacts_notes", title=_("Notes"), template="crm_contacts/panel_notes.html", order=10,
                 count=len(notes), context={"notes": notes, "can_add": acc.can("crm_contacts.note", "create"),
                                            "action": f"/contacts/{kind}/{record_id}/notes"})]
    if merges:
        out.append(Panel(key="crm_contacts_merges", title=_("Merges"), template="crm_contacts/panel_merges.html",
                         order=90, count=len(merges), context={"merges": merges}))
    return out


@hookimpl
async def crm_timeline_entries(model: str, record_id: int, user: Any) -> Any:
    """Changes from the audit log (who changed which fields, never the values), notes and merges."""
    from core.extensions import TimelineEntry
    from core.security.models import AuditLog
    from crm_contacts.models import Note

    kind = _kind(model)
    if kind is None:
        return None
    out: list[Any] = []
    rows = await AuditLog.select(AuditLog.at, AuditLog.action, AuditLog.user_login, AuditLog.changes,
                                 AuditLog.detail).where((AuditLog.model == model) & (
        AuditLog.record_id == str(record_id)) & AuditLog.action.is_in(
        ["create", "update", "merge", "archive", "import", "erase"])).order_by(AuditLog.id, ascending=False).limit(100)
    for row in rows:
        changes = row["changes"]
        if isinstance(changes, str):
            import json

            changes = json.loads(changes or "{}")
        fields = ", ".join(k for k in (changes or {}) if k not in ("search_text", "updated_at", "email_key"))
        out.append(TimelineEntry(at=row["at"], kind=row["action"], source="crm_contacts",
                                 title=f"{row['action']} by {row['user_login'] or 'system'}",
                                 body=fields or row["detail"]))
    fk = Note.person if kind == "people" else Note.organization
    for note in await Note.select(Note.body, Note.created_at).where(fk == record_id).limit(50):
        out.append(TimelineEntry(at=note["created_at"], kind="note", title="Note", body=note["body"][:200],
                                 source="crm_contacts"))
    return out
