"""Duplicate detection against the database: the on-write check and the whole-base scan.

Exact keys (E.164 phone, lowercase email, organization tax id) always make a candidate with score 1.0.
Fuzzy candidates come from ``matching.py``: a small pool is fetched from the database (records sharing a
name token or an exact key) and scored there, so the check stays cheap on a large base. The scan loads
every live person once, scores blocked pairs and stores ranked groups in ``DuplicateGroup``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, cast

from rapidfuzz.fuzz import token_set_ratio

from crm_contacts.matching import MatchIndex, MatchRecord, scan
from crm_contacts.standardize import fold_width

if TYPE_CHECKING:
    from core.security.access import Access

POOL = 300  # fuzzy pool size per check: enough for common surnames, bounded for speed


@dataclass(frozen=True)
class DuplicateCandidate:
    """A record that is probably the same customer as the one being written."""

    id: int
    name: str
    score: float
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class ScopedCandidates:
    """Duplicate candidates as one user may be told of them: those they may read, named; the others only
    counted, so a duplicate warning never names another team's customer."""

    visible: list[DuplicateCandidate]
    outside_scope: int

    def as_dict(self) -> dict[str, Any]:
        return {"candidates": [asdict(c) for c in self.visible], "outside_scope": self.outside_scope}


async def scoped(acc: Access, model: str, found: list[DuplicateCandidate]) -> ScopedCandidates:
    """Split ``found`` by what ``acc`` may read of ``model`` (the record rules of the list pages)."""
    from crm_contacts.services import table_of

    if not found:
        return ScopedCandidates([], 0)
    table: Any = table_of(model)
    ids = [c.id for c in found]
    readable = {int(r["id"]) for r in await (await acc.select(table, model, table.id, where=table.id.is_in(ids)))
                } if acc.can(model) else set()
    return ScopedCandidates([c for c in found if c.id in readable], len([c for c in found if c.id not in readable]))


def _record(row: Mapping[str, Any], org_name: str = "") -> MatchRecord:
    return MatchRecord(
        id=row.get("id") or 0, full_name=str(row.get("name") or ""),
        given_name=str(row.get("given_name") or ""), surname=str(row.get("family_name") or ""),
        org_name=org_name, emails=tuple(e for e in [row.get("email_key") or row.get("email") or ""] if e),
        phones=tuple(p for p in [row.get("phone") or ""] if p), city=str(row.get("city") or ""),
        region=str(row.get("province") or ""),
        birth_date=str(row.get("birth_date") or "") if row.get("birth_date") else "")


def _name_tokens(name: str) -> list[str]:
    """Pieces of a name to fetch a pool with: each Latin word (a typo hits one, not all), or a CJK surname."""
    folded = fold_width(name).lower().strip()
    if not folded:
        return []
    if not folded.isascii():
        return [folded[:1] if len(folded) <= 4 else folded[:2]]  # Chinese names: surname (or two chars)
    words = sorted({w for w in folded.replace(",", " ").split() if len(w) > 1}, key=len, reverse=True)
    return words[:3]


def _like_any(column: Any, tokens: list[str]) -> Any:
    clause = column.like(f"%{tokens[0]}%")
    for token in tokens[1:]:
        clause = clause | column.like(f"%{token}%")
    return clause


_PERSON_COLS = ("id", "name", "given_name", "family_name", "email", "email_key", "phone", "city", "province",
                "birth_date", "organization")


async def person_candidates(values: Mapping[str, Any], exclude_id: int | None = None,
                            limit: int = 10) -> list[DuplicateCandidate]:
    """Probable duplicates of a person about to be written (``values`` already cleaned), best first."""
    from crm_contacts.models import Channel, Organization, Person

    cols = [Person._meta.get_column_by_name(c) for c in _PERSON_COLS]
    live = Person.is_archived == False  # noqa: E712
    exact: dict[int, list[str]] = {}
    for key, col in (("email", "email_key"), ("phone", "phone")):
        value = values.get(col)
        if value:
            for row in await Person.select(Person.id).where(live & (Person._meta.get_column_by_name(col) == value)):
                exact.setdefault(row["id"], []).append(key)
            for row in await Channel.select(Channel.person).where(
                    (Channel.value_key == str(value).lower()) & Channel.person.is_not_null()):
                exact.setdefault(row["person"], []).append(key)
    exact.pop(exclude_id or -1, None)
    pool: dict[int, dict[str, Any]] = {}
    tokens = _name_tokens(str(values.get("name") or ""))
    if tokens:
        rows = await Person.select(*cols).where(live & _like_any(Person.search_text, tokens)).limit(POOL)
        pool.update({r["id"]: r for r in rows})
    if exact:
        pool.update({r["id"]: r for r in await Person.select(*cols).where(Person.id.is_in(list(exact)))})
    pool.pop(exclude_id or -1, None)
    org_ids = {r["organization"] for r in pool.values() if r["organization"]} | (
        {values["organization"]} if values.get("organization") else set())
    orgs = {r["id"]: r["name"] for r in await Organization.select(Organization.id, Organization.name).where(
        Organization.id.is_in(list(org_ids)))} if org_ids else {}
    index = MatchIndex(_record(r, orgs.get(r["organization"], "")) for r in pool.values())
    me = _record({**values, "id": -1}, orgs.get(values.get("organization") or 0, ""))
    scored = {cast(int, c.other_id): c for c in index.candidates(me)}  # ids of _record: the database's ints
    out = [DuplicateCandidate(int(i), str(pool[i]["name"]) if i in pool else "", 1.0, tuple(sorted(set(r))))
           for i, r in exact.items()]
    out += [DuplicateCandidate(int(i), str(pool[i]["name"]), round(c.score, 3), c.reasons)
            for i, c in scored.items() if i not in exact]
    return sorted(out, key=lambda c: -c.score)[:limit]


async def organization_candidates(values: Mapping[str, Any], exclude_id: int | None = None,
                                  limit: int = 10) -> list[DuplicateCandidate]:
    """Probable duplicates of an organization: same tax id, email or phone; or a very similar name."""
    from crm_contacts.models import Organization

    live = Organization.is_archived == False  # noqa: E712
    found: dict[int, DuplicateCandidate] = {}
    for key, col in (("tax_id", "tax_id_key"), ("email", "email_key"), ("phone", "phone")):
        value = values.get(col)
        if value:
            column = Organization._meta.get_column_by_name(col)
            for row in await Organization.select(Organization.id, Organization.name).where(live & (column == value)):
                prev = found.get(row["id"])
                reasons = (*(prev.reasons if prev else ()), key)
                found[row["id"]] = DuplicateCandidate(row["id"], row["name"], 1.0, reasons)
    name = fold_width(str(values.get("name") or "")).lower()
    tokens = _name_tokens(name)
    if tokens:
        for row in await Organization.select(Organization.id, Organization.name).where(
                live & _like_any(Organization.search_text, tokens)).limit(POOL):
            score = token_set_ratio(name, fold_width(row["name"]).lower()) / 100
            if score >= 0.9 and row["id"] not in found:
                found[row["id"]] = DuplicateCandidate(row["id"], row["name"], round(score, 3), ("name",))
    found.pop(exclude_id or -1, None)
    return sorted(found.values(), key=lambda c: -c.score)[:limit]


async def scan_people(progress: Callable[[int, int], None] | None = None) -> tuple[str, int]:
    """Scan every live person, replace the open groups with new ranked ones; returns (scan id, groups)."""
    from crm_contacts.models import DuplicateGroup, Organization, Person

    cols = [Person._meta.get_column_by_name(c) for c in _PERSON_COLS]
    rows = await Person.select(*cols).where(Person.is_archived == False)  # noqa: E712
    orgs = {r["id"]: r["name"] for r in await Organization.select(Organization.id, Organization.name)}
    records = [_record(r, orgs.get(r["organization"], "")) for r in rows]
    groups = scan(records, progress)
    scan_id = uuid.uuid4().hex[:12]
    from core import db

    async with db.atomic():
        await DuplicateGroup.delete().where(DuplicateGroup.status == "open")
        if groups:
            await DuplicateGroup.insert(*[DuplicateGroup(
                model="crm_contacts.person", record_ids=sorted(int(cast(int, i)) for i in g.ids),
                score=int(round(g.score * 1000)), reasons=[], status="open", scan_id=scan_id) for g in groups])
    return scan_id, len(groups)
