"""Approval rules as an administrator edits them: checked (a 422 naming what does not fit), stored with a
version that every change bumps, listed, deleted. Administrators only; every change is audited
(``core.approval_rule``). Requests already made keep the rule as it was (see :mod:`core.approvals.models`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from core import conditions, db
from core.approvals import registry
from core.approvals.flow import loaded
from core.approvals.models import ApprovalRule
from core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from core.i18n import N_
from core.security import audit
from core.security.models import User
from core.security.principal import Principal

MODEL = "core.approval_rule"
MAX_STEPS = 5
APPROVERS = ("role", "team_leader", "user")
_KEYS = ("name", "action", "model", "condition", "steps", "is_active", "sequence")


async def require_admin(who: Principal | None, what: str) -> Principal:
    if who is None or not who.is_admin:
        await audit.record("denied", model=MODEL, detail=f"approval rules: {what}", principal=who)
        raise PermissionDenied(N_("administrators only"))
    return who


async def _check_step(raw: Any, path: str) -> dict[str, Any]:
    from core.security.admin import known_roles

    if not isinstance(raw, dict):
        raise ValidationError({path: N_('must be an object like {"approver": "team_leader"}')})
    kind = raw.get("approver")
    if kind not in APPROVERS:
        raise ValidationError({f"{path}.approver": N_("must be one of %(kinds)s") % {"kinds": ", ".join(APPROVERS)}})
    allowed = {"role": {"approver", "role"}, "team_leader": {"approver"}, "user": {"approver", "user"}}[kind]
    extra = sorted(set(raw) - allowed)
    if extra:
        raise ValidationError({f"{path}.{extra[0]}": N_("is not a setting of this approver")})
    if kind == "role":
        roles = await known_roles()
        if raw.get("role") not in roles:
            raise ValidationError({f"{path}.role": N_("must be one of the roles: %(roles)s") % {
                "roles": ", ".join(sorted(roles))}})
        return {"approver": "role", "role": raw["role"]}
    if kind == "user":
        user = raw.get("user")
        query = User.select(User.id).where(User.is_active == True)  # noqa: E712
        if isinstance(user, int) and not isinstance(user, bool) and 0 < user < 2**63:
            found = await query.where(User.id == user).first()
        elif isinstance(user, str) and user.strip():
            found = await query.where(User.login == user.strip()).first()
        else:
            found = None
        if found is None:
            raise ValidationError({f"{path}.user": N_("must be an active user (an id or a login)")})
        return {"approver": "user", "user": int(found["id"])}
    return {"approver": "team_leader"}


async def check(data: Mapping[str, Any], existing: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The rule ``data`` describes (merged over ``existing`` for an update), in the form it is stored."""
    from core.values import integer, text_problem

    unknown = sorted(set(data) - {*_KEYS, "version"})
    if unknown:
        raise ValidationError({unknown[0]: N_("is not a setting of an approval rule (%(keys)s)") % {
            "keys": ", ".join(_KEYS)}})
    merged = {**(existing or {}), **{k: v for k, v in data.items() if k in _KEYS}}
    name = merged.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ValidationError({"name": N_("is required")})
    problem = text_problem(name)
    if problem or len(name) > 200:
        raise ValidationError({"name": problem or N_("must be at most 200 characters")})
    declared = await registry.actions()
    key, model = merged.get("action"), merged.get("model")
    if isinstance(key, str) and not model:  # an addon's action acts on one model: no need to name it
        models = [m for k, m in declared if k == key]
        model = models[0] if len(models) == 1 else model
    action = declared.get((key, model)) if isinstance(key, str) and isinstance(model, str) else None
    if action is None:
        if isinstance(key, str) and any(k == key for k, _ in declared):
            raise ValidationError({"model": N_("must be one of %(models)s") % {
                "models": ", ".join(sorted(m for k, m in declared if k == key))}})
        raise ValidationError({"action": N_("must be one of %(actions)s") % {
            "actions": ", ".join(sorted({k for k, _ in declared}))}})
    node = conditions.parse(loaded(merged.get("condition"), {}), registry.schema(action))
    steps = loaded(merged.get("steps"), None)
    if not isinstance(steps, list) or not 1 <= len(steps) <= MAX_STEPS:
        raise ValidationError({"steps": N_("must be a list of 1 to %(n)s approvers, in order") % {"n": MAX_STEPS}})
    checked = [await _check_step(s, f"steps[{i}]") for i, s in enumerate(steps)]
    is_active = merged.get("is_active", True)
    if not isinstance(is_active, bool):
        raise ValidationError({"is_active": N_("must be true or false")})
    sequence = integer(merged.get("sequence", 100), "sequence", (0, 1_000_000))
    return {"name": name.strip(), "action": action.key, "model": action.model, "condition": conditions.as_json(node)
            if node != conditions.ALWAYS else {}, "steps": checked, "is_active": is_active, "sequence": sequence}


def _plain(row: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in row.items()}
    out["condition"] = loaded(row.get("condition"), {})
    out["steps"] = loaded(row.get("steps"), [])
    return out


async def listing(who: Principal | None) -> list[dict[str, Any]]:
    await require_admin(who, "list")
    rows = await ApprovalRule.select().order_by(ApprovalRule.action).order_by(ApprovalRule.sequence).order_by(
        ApprovalRule.id)
    return [_plain(r) for r in rows]


async def read(who: Principal | None, rule_id: int) -> dict[str, Any]:
    await require_admin(who, "read")
    row = await ApprovalRule.select().where(ApprovalRule.id == rule_id).first()
    if row is None:
        raise NotFound(N_("approval rule %(id)s not found") % {"id": rule_id})
    return _plain(row)


async def create(who: Principal | None, data: Mapping[str, Any]) -> dict[str, Any]:
    admin = await require_admin(who, "create")
    values = await check(data)
    async with db.atomic():
        rows = await ApprovalRule.insert(ApprovalRule(**values, created_by=admin.user_id)).returning(ApprovalRule.id)
        rule_id = int(rows[0]["id"])
        await audit.record("create", model=MODEL, record_id=rule_id, principal=admin,
                           changes=audit.diff(None, values))
    return await read(admin, rule_id)


async def update(who: Principal | None, rule_id: int, data: Mapping[str, Any],
                 version: Any = None) -> dict[str, Any]:
    """Change a rule (``version`` when given must be the current one: 409 otherwise); the version goes up, so
    requests made under the previous one stay as they were."""
    admin = await require_admin(who, "update")
    existing = await read(admin, rule_id)
    if version is not None and version != existing["version"]:
        raise Conflict(N_("the rule changed since you read it (version %(version)s): reload it") % {
            "version": existing["version"]}, field="version")
    values = await check(data, {k: existing[k] for k in _KEYS})
    async with db.atomic():
        done = await ApprovalRule.update({**{getattr(ApprovalRule, k): v for k, v in values.items()},
                                          ApprovalRule.version: ApprovalRule.version + 1,
                                          ApprovalRule.updated_at: dt.datetime.now(dt.UTC)}).where(
            (ApprovalRule.id == rule_id) & (ApprovalRule.version == existing["version"])).returning(ApprovalRule.id)
        if not done:
            raise Conflict(N_("the rule changed since you read it: reload it"), field="version")
        await audit.record("update", model=MODEL, record_id=rule_id, principal=admin,
                           changes=audit.diff({k: existing[k] for k in _KEYS}, values))
    return await read(admin, rule_id)


async def delete(who: Principal | None, rule_id: int) -> None:
    """Delete a rule: what it would hold from now on goes ahead; requests it raised keep their steps."""
    admin = await require_admin(who, "delete")
    existing = await read(admin, rule_id)
    async with db.atomic():
        await ApprovalRule.delete().where(ApprovalRule.id == rule_id)
        await audit.record("delete", model=MODEL, record_id=rule_id, principal=admin,
                           changes=audit.diff({k: existing[k] for k in _KEYS}, None))
