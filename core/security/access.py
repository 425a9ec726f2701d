"""The access layer: the one way an addon reads and writes records for a user.

``Access(principal)`` applies, inside the query, the model grant (create/read/update/delete/export), the
record rule (own / team / subordinates / all, OR-ed across roles) and global restrictions (archived rows,
AND-ed); rows come back with hidden fields removed and masked fields masked. Writes to fields a role may not
write are refused naming the field. HTML views, the JSON API, exports and PDFs all go through here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from piccolo.columns.base import Column
from piccolo.custom_types import Combinable
from piccolo.table import Table

from core.errors import NotFound, PermissionDenied, ValidationError
from core.security import audit
from core.security.masking import mask
from core.security.policy import Policy
from core.security.principal import Principal

_policy: Policy | None = None


def set_policy(policy: Policy) -> None:
    global _policy
    _policy = policy


def policy() -> Policy:
    if _policy is None:
        raise RuntimeError("security policy not compiled (boot the runtime first)")
    return _policy


class Access:
    def __init__(self, principal: Principal | None) -> None:
        self.principal = principal

    @property
    def roles(self) -> frozenset[str]:
        return self.principal.roles if self.principal else frozenset()

    def scope(self, model: str, action: str = "read") -> str | None:
        return policy().scope(self.roles, model, action)

    def scopes(self, model: str, action: str = "read") -> frozenset[str]:
        return policy().scopes(self.roles, model, action)

    def can(self, model: str, action: str = "read") -> bool:
        return bool(self.scopes(model, action))

    async def require(self, model: str, action: str = "read") -> frozenset[str]:
        """The scopes this user holds for ``action`` on ``model``; 403 (audited) when there are none."""
        scopes = self.scopes(model, action)
        if not scopes:
            await audit.record("denied", model=model, detail=f"{action} on {model}", principal=self.principal)
            raise PermissionDenied(f"you may not {action} {model}")
        return scopes

    def where(self, table: type[Table], scope: str | Iterable[str],
              include_archived: bool = False) -> Combinable | None:
        """The record rule and global restrictions as a Piccolo where-clause.

        The scopes a user's roles grant are OR-ed (own / team / subordinates / all); global restrictions
        (archived rows) are AND-ed on top.
        """
        scopes = {scope} if isinstance(scope, str) else set(scope)
        clauses: list[Combinable] = []
        if "all" not in scopes:
            if not scopes:
                raise PermissionDenied(f"no scope on {table._meta.tablename}")
            rules = [self._scope_rule(table, s) for s in sorted(scopes)]
            rule = rules[0]
            for other in rules[1:]:
                rule = rule | other
            clauses.append(rule)
        archived = _column(table, "is_archived")
        if archived is not None and not include_archived:
            clauses.append(archived == False)  # noqa: E712  (Piccolo builds SQL from ==)
        if not clauses:
            return None
        out = clauses[0]
        for clause in clauses[1:]:
            out = out & clause
        return out

    def _scope_rule(self, table: type[Table], scope: str) -> Combinable:
        owner = _column(table, "owner")
        if owner is None:
            raise PermissionDenied(f"{table._meta.tablename} has no owner column for a {scope!r} rule")
        p = self.principal
        if p is None:
            raise PermissionDenied("not signed in")
        if scope == "own":
            return owner == p.user_id
        if scope == "team":
            rule: Combinable = owner.is_in(sorted(p.teammate_ids))
            team = _column(table, "team")
            if team is not None and p.team_ids:
                rule = rule | team.is_in(sorted(p.team_ids))
            return rule
        if scope == "subordinates":
            return owner.is_in(sorted(p.subordinate_ids))
        raise PermissionDenied(f"unknown record scope {scope!r}")

    async def select(self, table: type[Table], model: str, *columns: Column, where: Combinable | None = None,
                     include_archived: bool = False, action: str = "read") -> Any:
        """A Piccolo select limited to the rows this user may see (add order_by/limit, then await)."""
        scopes = await self.require(model, action)
        query = table.select(*columns)
        rule = self.where(table, scopes, include_archived)
        for clause in (rule, where):
            if clause is not None:
                query = query.where(clause)
        return query

    async def count(self, table: type[Table], model: str, where: Combinable | None = None,
                    include_archived: bool = False) -> int:
        scopes = await self.require(model, "read")
        query = table.count()
        for clause in (self.where(table, scopes, include_archived), where):
            if clause is not None:
                query = query.where(clause)
        return int(await query)

    async def export(self, table: type[Table], model: str, fields: Sequence[str],
                     where: Combinable | None = None) -> tuple[list[str], list[dict[str, Any]]]:
        """Rows for a CSV/XLSX/PDF export: the ``export`` right and its scope, hidden fields dropped
        (from the header too), masked fields masked. Audited with the row count and the columns."""
        shown = self.visible_fields(model, ["id", *[f for f in fields if f != "id"]])
        columns = [table._meta.get_column_by_name(f) for f in shown]
        query = await self.select(table, model, *columns, where=where, action="export")
        rows = [self.present(model, dict(r)) for r in await query.order_by(table._meta.primary_key)]
        await audit.record("export", model=model, detail=f"{len(rows)} rows: {', '.join(shown)}",
                           principal=self.principal)
        return shown, rows

    async def get(self, table: type[Table], model: str, record_id: int, action: str = "read",
                  include_archived: bool = False) -> dict[str, Any]:
        """One row the user may reach for ``action``; 404 (not 403) outside their scope, so ids leak nothing.

        Archived rows are out of reach like in lists (pass ``include_archived=True`` to restore one)."""
        query = await self.select(table, model, where=table._meta.primary_key == record_id,
                                  include_archived=include_archived, action=action)
        row = await query.first()
        if row is None:
            await audit.record("denied", model=model, record_id=record_id,
                               detail=f"{action}: not found or out of scope", principal=self.principal)
            raise NotFound(f"{model} {record_id} not found")
        return dict(row)

    def present(self, model: str, row: dict[str, Any]) -> dict[str, Any]:
        """The row as this user may see it: hidden fields dropped, masked fields masked."""
        pol = policy()
        out: dict[str, Any] = {}
        for key, value in row.items():
            rule, masker, _ = pol.field_rule(self.roles, model, key)
            if rule == "hidden":
                continue
            out[key] = mask(value, masker) if rule == "masked" else value
        return out

    def visible_fields(self, model: str, fields: Iterable[str]) -> list[str]:
        pol = policy()
        return [f for f in fields if pol.field_rule(self.roles, model, f)[0] != "hidden"]

    def is_masked(self, model: str, field: str) -> bool:
        return policy().field_rule(self.roles, model, field)[0] == "masked"

    async def check_write(self, model: str, values: Iterable[str], allowed: Iterable[str] | None = None) -> None:
        """Refuse a write the user may not make, naming the field: 422 for a field that is not on the form or
        resource (``allowed``: mass assignment), 403 for a hidden, masked or read-only one. Both audited."""
        names = list(values)
        if allowed is not None:
            permitted = set(allowed)
            unknown = [n for n in names if n not in permitted]
            if unknown:
                await audit.record("denied", model=model, detail=f"unknown field(s) {', '.join(unknown)}",
                                   principal=self.principal)
                raise ValidationError({n: "is not a writable field" for n in unknown})
        pol = policy()
        for name in names:
            rule, _, _ = pol.field_rule(self.roles, model, name)
            if rule != "editable":
                await audit.record("denied", model=model, detail=f"write to {rule} field {name}",
                                   principal=self.principal)
                raise PermissionDenied(f"field {name!r} is {rule} for you", field=name)

    async def reveal(self, table: type[Table], model: str, record_id: int, field: str) -> Any:
        """The unmasked value of one field of one record, for a role with the reveal right; audited."""
        rule, _, may_reveal = policy().field_rule(self.roles, model, field)
        if rule == "hidden" or not may_reveal:
            await audit.record("denied", model=model, record_id=record_id, detail=f"reveal {field}",
                               principal=self.principal)
            raise PermissionDenied(f"you may not reveal {field!r}", field=field)
        row = await self.get(table, model, record_id)
        await audit.record("reveal", model=model, record_id=record_id, detail=field, principal=self.principal)
        return row.get(field)


def _column(table: type[Table], name: str) -> Column | None:
    try:
        return table._meta.get_column_by_name(name)
    except ValueError:
        return None


def ids(rows: Sequence[dict[str, Any]]) -> list[int]:
    return [int(r["id"]) for r in rows]
