"""GDPR: export everything known about a person, and erase a person by anonymisation.

Erasure keeps the row (orders, invoices and tickets of other addons still point at it, and financial
records must be kept) but removes every personal value: names, phones, emails, birth date, free fields,
addresses, channels, notes and merge snapshots. The audit log is append-only and is not rewritten: it keeps
who did what; its before/after values of erased people are covered by the log's own retention policy.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from core import db, hooks
from core.security import audit
from core.security.access import Access
from crm_contacts.api import ORGANIZATION_MODEL, PERSON_MODEL
from crm_contacts.services import tags_of


def _plain(data: dict[str, Any]) -> dict[str, Any]:
    plain: dict[str, Any] = json.loads(json.dumps(data, default=str))
    return plain


async def export_person(acc: Access, person_id: int) -> dict[str, Any]:
    """Every record about the person the user may export, as JSON-ready data; audited."""
    from core.security.models import AuditLog
    from core.timeline import notes
    from crm_contacts.models import Address, Channel, Merge, Organization, Person

    row = await acc.get(Person, PERSON_MODEL, person_id, action="export")
    person = acc.present(PERSON_MODEL, row)
    person.pop("search_text", None)
    org = None
    if row["organization"]:
        # the organization as this user may see it: another team's name stays out of the file
        org = await (await acc.select(Organization, ORGANIZATION_MODEL, Organization.id, Organization.name,
                                      where=Organization.id == row["organization"])).first()
    merges = await Merge.select().where((Merge.model == PERSON_MODEL) & (Merge.survivor_id == person_id)).output(
        load_json=True)
    history = await AuditLog.select(AuditLog.at, AuditLog.user_login, AuditLog.action, AuditLog.detail).where(
        (AuditLog.model == PERSON_MODEL) & (AuditLog.record_id == str(person_id))).order_by(AuditLog.id)
    out = {
        "format": "crm_contacts.gdpr_export/1",
        "exported_at": dt.datetime.now(dt.UTC).isoformat(),
        "person": person,
        "organization": org,
        "addresses": await Address.select().where(Address.person == person_id),
        "channels": [acc.present(PERSON_MODEL, {"kind": c["kind"], "label": c["label"],
                                                ("email" if c["kind"] == "email" else "phone"
                                                 if c["kind"] == "phone" else "value"): c["value"]})
                     for c in await Channel.select().where(Channel.person == person_id)],
        "tags": await tags_of(PERSON_MODEL, person_id),
        "notes": await notes.notes_of(PERSON_MODEL, person_id),
        # merged-away records under the same field rules as the person: masked stays masked
        "merged_records": [{"loser_ids": m["loser_ids"], "at": m["created_at"],
                            "snapshot": {loser: acc.present(PERSON_MODEL, dict(values))
                                         for loser, values in (m["snapshot"] or {}).items()}}
                           for m in merges],
        "history": history,
    }
    await audit.record("gdpr_export", model=PERSON_MODEL, record_id=person_id, detail="GDPR export")
    return _plain(out)


async def erase_person(acc: Access, person_id: int) -> None:
    """Anonymise the person (needs the delete right on it); audited, listeners told to erase their copies."""
    from core.timeline import notes
    from crm_contacts.models import Address, Channel, Merge, Person

    async with db.atomic():
        before = await acc.get(Person, PERSON_MODEL, person_id, action="delete")
        blank: dict[str, Any] = {
            "name": f"Erased person #{person_id}", "given_name": "", "family_name": "", "email": "",
            "email_key": "", "phone": "", "phone_original": "", "job_title": "", "birth_date": None,
            "custom": {}, "province": "", "city": "", "language": "", "search_text": "",
            "is_anonymized": True, "updated_at": dt.datetime.now(dt.UTC)}
        await Person.update({**{Person._meta.get_column_by_name(k): v for k, v in blank.items()},
                             Person.version: Person.version + 1}).where(Person.id == person_id)
        await Address.delete().where(Address.person == person_id)
        await Channel.delete().where(Channel.person == person_id)
        await notes.erased(PERSON_MODEL, person_id)
        for merge in await Merge.select(Merge.id, Merge.snapshot).where(Merge.survivor_id == person_id):
            await Merge.update({Merge.snapshot: {}}).where(Merge.id == merge["id"])
        for merge in await Merge.select(Merge.id, Merge.snapshot).where(Merge.model == PERSON_MODEL):
            snap = merge["snapshot"] or {}
            if isinstance(snap, str):
                snap = json.loads(snap)
            if str(person_id) in snap:
                snap.pop(str(person_id))
                await Merge.update({Merge.snapshot: snap}).where(Merge.id == merge["id"])
        # the audit entry names the fields erased, never their old values
        await audit.record("erase", model=PERSON_MODEL, record_id=person_id,
                           detail="GDPR erasure: " + ", ".join(k for k in blank if before.get(k)))
        await hooks.publish("crm_contacts_person_erased", person_id=person_id)
