"""The access layer: the one way an addon reads and writes records for a user.

``Access(principal)`` applies, inside the query, the model grant (create/read/update/delete/export), the
record rule (own / team / subordinates / all, OR-ed across roles) and global restrictions (archived rows,
AND-ed); rows come back with hidden fields removed and masked fields masked. Writes to fields a role may not
write are refused naming the field. HTML views, the JSON API, exports and PDFs all go through here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from piccolo.columns.base import Column
from piccolo.custom_types import Combinable
from piccolo.querystring import Selectable
from piccolo.table import Table

from core import limits
from core.customfields import records as custom_values
from core.customfields import registry as custom_fields
from core.errors import NotFound, PermissionDenied, ValidationError
from core.i18n import N_
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
        self._rules: dict[str, tuple[str, str, bool]] = {}
        self._rules_of: tuple[Any, str] | None = None
        self._plain_keys: tuple[Any, str, Any] | None = None

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
        await custom_fields.fresh()  # every read and write sees current custom field definitions and rules
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
            raise PermissionDenied(N_("not signed in"))
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

    async def select(self, table: type[Table], model: str, *columns: Selectable, where: Combinable | None = None,
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
        """The row as this user may see it: hidden fields dropped, masked fields masked (custom fields too:
        the JSON column of an extensible model holds only the active fields the user sees)."""
        pol = policy()
        custom = custom_fields.column_of(model)
        out: dict[str, Any] = {}
        # a list page presents 50 rows of the same fields: each field's rule is worked out once per page
        seen = self._rules if self._rules_of == (pol, model) else {}
        self._rules, self._rules_of = seen, (pol, model)
        plain_keys = self._plain_keys
        if plain_keys is not None and plain_keys[:2] == (pol, model) and plain_keys[2] == row.keys():
            out = dict(row)  # every field shown as it is (checked on the first row of this shape)
            if custom in out:
                out[custom] = custom_values.present(self, model, out[custom])
            return out
        plain = True
        for key, value in row.items():
            if key == custom:
                out[key] = custom_values.present(self, model, value)
                continue
            found = seen.get(key)
            if found is None:
                found = seen[key] = pol.field_rule(self.roles, model, key)
            rule, masker, _ = found
            if rule == "hidden":
                plain = False
                continue
            plain = plain and rule != "masked"
            out[key] = mask(value, masker) if rule == "masked" else value
        self._plain_keys = (pol, model, frozenset(row)) if plain else None
        return out

    def present_all(self, model: str, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """:meth:`present` of every row of a page: when the first row's fields are all shown as they are, the
        rest (same fields) are copied as they are without asking again, and custom values are looked at only
        when the model has custom fields."""
        if not rows:
            return []
        first = self.present(model, dict(rows[0]))
        keys = self._plain_keys
        if keys is None or keys[:2] != (policy(), model):
            return [first, *(self.present(model, dict(r)) for r in rows[1:])]
        custom = custom_fields.column_of(model)
        has_custom = bool(custom and custom_fields.definitions(model))
        out = [first]
        for row in rows[1:]:
            shown = dict(row)
            if shown.keys() != keys[2]:
                out.append(self.present(model, shown))
                continue
            if custom in shown:
                shown[custom] = custom_values.present(self, model, shown[custom]) if has_custom else {}
            out.append(shown)
        return out

    def present_diff(self, model: str, changes: dict[str, Any]) -> dict[str, Any]:
        """An audit diff (``{field: [old, new]}``) as this user may see it: the field's name stays (that it
        changed is the audit's point), a masked field's values are masked and a hidden one's replaced, by the
        user's rules on ``model`` — a role with no right on ``model`` sees no value of a field carrying rules."""
        pol = policy()
        out: dict[str, Any] = {}
        for key, values in changes.items():
            rule, masker, _ = pol.field_rule(self.roles, model, key)
            pair = values if isinstance(values, list) else [values]
            if rule == "hidden":
                out[key] = ["…" if v not in (None, "") else v for v in pair]
            elif rule == "masked":
                out[key] = [mask(v, masker) for v in pair]
            else:
                out[key] = values
        return out

    def visible_fields(self, model: str, fields: Iterable[str]) -> list[str]:
        pol = policy()
        return [f for f in fields if pol.field_rule(self.roles, model, f)[0] != "hidden"]

    def is_masked(self, model: str, field: str) -> bool:
        return policy().field_rule(self.roles, model, field)[0] == "masked"

    async def check_write(self, model: str, values: Iterable[str] | Mapping[str, Any],
                          allowed: Iterable[str] | None = None, table: type[Table] | None = None) -> None:
        """Refuse a write the user may not make, naming the field: 422 for a field that is not on the form or
        resource (``allowed``: mass assignment), 403 for a hidden, masked or read-only one (both audited); and,
        given the values (a mapping), 422 for a value past its size limit (:mod:`core.limits`: the column's
        length in ``table``, by default the model's table by the naming rule). Custom fields are named
        ``custom.<key>``: a mapping's custom column is checked field by field."""
        names = list(values)
        custom = custom_fields.column_of(model)
        if allowed is not None:
            permitted = set(allowed)
            unknown = [n for n in names if n not in permitted and not (
                custom in permitted and n.partition(".")[0] == custom)]
            if unknown:
                await audit.record("denied", model=model, detail=f"unknown field(s) {', '.join(unknown)}",
                                   principal=self.principal)
                raise ValidationError({n: "is not a writable field" for n in unknown})
        if isinstance(values, Mapping) and custom is not None and custom in values:
            names += custom_values.names(model, values[custom])
        pol = policy()
        for name in names:
            if name == custom:
                continue  # the column itself carries no rule: each field in it does
            rule, _, _ = pol.field_rule(self.roles, model, name)
            if rule != "editable":
                await audit.record("denied", model=model, detail=f"write to {rule} field {name}",
                                   principal=self.principal)
                raise PermissionDenied(f"field {name!r} is {rule} for you", field=name)
        if isinstance(values, Mapping):
            limits.check(values, table or limits.table_for(model))

    async def check_references(self, table: type[Table], values: Mapping[str, Any]) -> None:
        """Refuse a reference the user may not make: every foreign key among ``values`` (columns of ``table``)
        must name a record this user may *read* (grant, record rule, not archived) - a write of a reference is
        checked like a read of the referenced record. Out of reach or nonexistent is one and the same 422
        naming the field, so ids leak nothing. A referenced table no grant governs (users, teams) only has to
        hold the row."""
        from piccolo.columns import ForeignKey

        from core.values import record_id

        for name, value in values.items():
            column = _column(table, name) if isinstance(name, str) else None
            if not isinstance(column, ForeignKey) or value in (None, ""):
                continue
            target = column._foreign_key_meta.resolved_references
            ref = record_id(value, name)  # a whole number a key can hold (never an overflow in the driver)
            model = model_of(target)
            if model is None:
                found = await target.exists().where(target._meta.primary_key == ref)
            else:
                try:
                    await self.get(target, model, ref)
                    found = True
                except (NotFound, PermissionDenied):
                    found = False
            if not found:
                raise ValidationError({name: REFERENCE_REFUSED})

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


#: the one answer to a reference out of reach or to nothing (the same words, so ids leak nothing)
REFERENCE_REFUSED = "does not exist or is not yours to use"


def model_of(table: type[Table]) -> str | None:
    """The model name the records of ``table`` are granted under, or None when no grant governs them: the API
    resource serving that table (collected at boot), else a granted model named by the naming rule
    (``crm_x.noun`` is table ``crm_x_noun``)."""
    from core.runtime import _current

    name = table._meta.tablename
    resources = _current.state.get("api_resources", []) if _current is not None else []
    for res in resources:
        res_table = getattr(res, "table", None)
        if res_table is not None and res_table._meta.tablename == name:
            return str(res.model)
    for model in sorted(policy().models):
        if model.replace(".", "_") == name:
            return model
    return None


def _column(table: type[Table], name: str) -> Column | None:
    try:
        return table._meta.get_column_by_name(name)
    except ValueError:
        return None


def ids(rows: Sequence[dict[str, Any]]) -> list[int]:
    return [int(r["id"]) for r in rows]
