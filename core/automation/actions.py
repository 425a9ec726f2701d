"""The kernel's action kinds: set a field, assign an owner, add or remove a tag, notify a user or a role, send an
e-mail from a template, call a webhook, and require approval (:mod:`core.approvals.automation`).

Each checks its params when a rule is saved (a 422 naming the param) and runs with an
:class:`~core.hooks.AutomationContext`. Writes go straight to the record's table as the system (audited as the
rule, version bumped) and are reported with :func:`core.automation.events.record_changed`, so other rules see
them and loop protection knows where they came from. Texts are Jinja2 templates rendered in a sandbox
(``jinja2.sandbox.SandboxedEnvironment``) with ``record``, ``rule`` and ``url``, in English and Chinese: the
recipient's language picks one (the other when it is empty).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import smtplib
from collections.abc import Mapping, Sequence
from email.message import EmailMessage
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Template, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from core import values as core_values
from core.automation import events
from core.errors import PermanentJobError, ValidationError
from core.hooks import AutomationAction, AutomationContext, AutomationModel, Notification
from core.i18n import N_
from core.security import audit

_ENV = SandboxedEnvironment(autoescape=False, trim_blocks=True)
MAX_TEMPLATE = 5000
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{1,63}$")


def _text(params: Mapping[str, Any], name: str, *, required: bool = False, limit: int = MAX_TEMPLATE) -> str:
    value = params.get(name, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ValidationError({name: "must be text"})
    problem = core_values.text_problem(value)
    if problem:
        raise ValidationError({name: problem})
    if len(value) > limit:
        raise ValidationError({name: f"must be at most {limit} characters"})
    if required and not value.strip():
        raise ValidationError({name: "is required"})
    return value


def template_param(params: Mapping[str, Any], name: str) -> str:
    source = _text(params, name)
    try:
        _ENV.from_string(source)
    except TemplateError as exc:
        raise ValidationError({name: f"is not a valid template: {exc}"}) from None
    return source


def _only(params: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValidationError({unknown[0]: f"is not a parameter of this action ({', '.join(allowed)})"})


@lru_cache(maxsize=512)
def _compiled(source: str) -> Template:
    return _ENV.from_string(source)


def render(source: str, ctx: AutomationContext) -> str:
    """``source`` rendered in the sandbox with the record, the rule's name and the record's page."""
    if not source:
        return ""
    try:
        return _compiled(source).render(record=dict(ctx.record), rule={"id": ctx.rule_id, "name": ctx.rule_name},
                                        url=ctx.url, model=ctx.model)[:20_000]
    except (TemplateError, TypeError, ValueError, AttributeError) as exc:  # sandbox refusals are TemplateErrors
        raise PermanentJobError(f"the template could not be rendered: {exc}") from None


def _pick(params: Mapping[str, Any], base: str, language: str) -> str:
    en, zh = str(params.get(f"{base}_en") or ""), str(params.get(f"{base}_zh") or "")
    return (zh or en) if language.startswith("zh") else (en or zh)


# --- writes ---------------------------------------------------------------------------------------------------


async def _write(ctx: AutomationContext, am: AutomationModel, field: str, value: Any) -> str:
    """Write ``field`` (a column, or ``custom.<key>``) of the record as the rule; report the change."""
    from core.customfields import registry as custom_fields

    table = am.table
    pk = table._meta.primary_key
    before = await table.select().where(pk == ctx.record_id).first()
    if before is None:
        return f"record {ctx.record_id} no longer exists"
    custom = custom_fields.column_of(am.model)
    column_name, dot, key = field.partition(".")
    if dot and column_name == custom:
        holder = registry_loaded(before.get(custom))
        old = holder.get(key)
        merged = {k: v for k, v in holder.items() if k != key}
        if value is not None:
            merged[key] = value
        changes: dict[Any, Any] = {table._meta.get_column_by_name(custom): merged}
    else:
        column = table._meta.get_column_by_name(field)
        old = before.get(field)
        value = core_values.check(column, value, field)
        changes = {column: value}
    if events.jsonable(old) == events.jsonable(value):
        return f"{field} already {events.jsonable(value)!r}"
    try:
        version: Any = table._meta.get_column_by_name("version")
        changes[version] = version + 1
    except ValueError:
        pass
    await table.update(changes).where(pk == ctx.record_id)
    await audit.record("update", model=am.model, record_id=ctx.record_id,
                       changes={field: [events.jsonable(old), events.jsonable(value)]},
                       detail=f"automation rule {ctx.rule_id}: {ctx.rule_name}"[:2000],
                       login=f"automation #{ctx.rule_id}")
    await events.record_changed(am.model, ctx.record_id, dict(before), {field: value})
    return f"{field}: {events.jsonable(old)!r} → {events.jsonable(value)!r}"


def registry_loaded(value: Any) -> dict[str, Any]:
    from core.automation.registry import _loaded

    found = _loaded(value, {})
    return dict(found) if isinstance(found, dict) else {}


async def _model(ctx: AutomationContext) -> AutomationModel:
    from core.automation import registry

    am = await registry.model(ctx.model)
    if am is None:
        raise PermanentJobError(f"{ctx.model} cannot be automated here")
    return am


async def _check_set_field(am: AutomationModel, params: Mapping[str, Any]) -> Mapping[str, Any]:
    from core.customfields import registry as custom_fields
    from core.customfields import values as custom_values

    _only(params, ("field", "value"))
    field = params.get("field")
    if not isinstance(field, str) or not field:
        raise ValidationError({"field": N_("is required")})
    value = params.get("value")
    fd = custom_fields.by_name(am.model, field)
    if fd is not None:
        try:
            value = custom_values.check(fd, value)
        except ValueError as exc:
            raise ValidationError({"value": str(exc)}) from None
        return {"field": field, "value": value}
    if field not in am.writable:
        raise ValidationError({"field": f"{field[:80]!r} cannot be set by a rule (choose one of "
                                        f"{', '.join(am.writable) or 'none'})"})
    column = am.table._meta.get_column_by_name(field)
    return {"field": field, "value": events.jsonable(core_values.check(column, value, "value"))}


async def _set_field(ctx: AutomationContext) -> str:
    return await _write(ctx, await _model(ctx), str(ctx.params["field"]), ctx.params.get("value"))


async def _check_assign(am: AutomationModel, params: Mapping[str, Any]) -> Mapping[str, Any]:
    from core.security.models import User

    _only(params, ("user_id",))
    if not am.owner:
        raise ValidationError({"user_id": f"{am.model} has no owner"})
    user_id = core_values.integer(params.get("user_id"), "user_id")
    if not await User.exists().where((User.id == user_id) & (User.is_active == True)):  # noqa: E712
        raise ValidationError({"user_id": N_("is not an active user")})
    return {"user_id": user_id}


async def _assign(ctx: AutomationContext) -> str:
    am = await _model(ctx)
    return await _write(ctx, am, am.owner, int(ctx.params["user_id"]))


async def _check_tag(am: AutomationModel, params: Mapping[str, Any]) -> Mapping[str, Any]:
    _only(params, ("tag",))
    if not am.tags:
        raise ValidationError({"tag": f"{am.model} has no tags"})
    return {"tag": _text(params, "tag", required=True, limit=60).strip()}


async def _tags(ctx: AutomationContext, add: bool) -> str:
    am = await _model(ctx)
    row = await am.table.select(am.table._meta.get_column_by_name(am.tags)).where(
        am.table._meta.primary_key == ctx.record_id).first()
    if row is None:
        return f"record {ctx.record_id} no longer exists"
    from core.automation.registry import _loaded

    tags = [str(t) for t in (_loaded(row[am.tags], []) or [])]
    tag = str(ctx.params["tag"])
    wanted = ([*tags, tag] if tag not in tags else tags) if add else [t for t in tags if t != tag]
    return await _write(ctx, am, am.tags, wanted)


async def _add_tag(ctx: AutomationContext) -> str:
    return await _tags(ctx, True)


async def _remove_tag(ctx: AutomationContext) -> str:
    return await _tags(ctx, False)


# --- telling people -------------------------------------------------------------------------------------------

_NOTIFY = ("to", "user_id", "role", "title_en", "title_zh", "body_en", "body_zh")


async def _check_recipients(am: AutomationModel, params: Mapping[str, Any]) -> dict[str, Any]:
    from core.automation.rules import known_roles
    from core.security.models import User

    to = params.get("to", "owner")
    if to not in ("owner", "user", "role"):
        raise ValidationError({"to": N_("must be owner, user or role")})
    out: dict[str, Any] = {"to": to}
    if to == "owner" and not am.owner:
        raise ValidationError({"to": f"{am.model} has no owner"})
    if to == "user":
        user_id = core_values.integer(params.get("user_id"), "user_id")
        if not await User.exists().where(User.id == user_id):
            raise ValidationError({"user_id": N_("is not a user")})
        out["user_id"] = user_id
    if to == "role":
        role = params.get("role")
        if not isinstance(role, str) or role not in await known_roles():
            raise ValidationError({"role": N_("is not a role")})
        out["role"] = role
    return out


async def _recipients(ctx: AutomationContext) -> list[dict[str, Any]]:
    from core.security.models import User, UserRole

    to = ctx.params.get("to", "owner")
    if to == "owner":
        am = await _model(ctx)
        raw = [ctx.record.get(am.owner)]
    elif to == "user":
        raw = [ctx.params.get("user_id")]
    else:
        raw = [r["user"] for r in await UserRole.select(UserRole.user).where(UserRole.role == ctx.params.get("role"))]
    ids = sorted({int(i) for i in raw if i not in (None, "")})
    if not ids:
        return []
    return list(await User.select(User.id, User.email, User.language).where(
        User.id.is_in(ids) & (User.is_active == True)))  # noqa: E712


def _language(user_language: str | None) -> str:
    from core.runtime import current

    return user_language or current().settings.default_language or "en"


async def _check_notify(am: AutomationModel, params: Mapping[str, Any]) -> Mapping[str, Any]:
    _only(params, _NOTIFY)
    out = await _check_recipients(am, params)
    for name in ("title_en", "title_zh", "body_en", "body_zh"):
        out[name] = template_param(params, name)
    if not (out["title_en"].strip() or out["title_zh"].strip()):
        raise ValidationError({"title_en": N_("a title is required (in English, Chinese or both)")})
    return out


def _message(ctx: AutomationContext, user: Mapping[str, Any]) -> tuple[Notification, str]:
    lang = _language(user["language"])
    title = render(_pick(ctx.params, "title", lang), ctx).strip() or ctx.rule_name
    body = render(_pick(ctx.params, "body", lang), ctx)
    return (Notification(user_id=int(user["id"]), title=title, body=body, url=ctx.url or None, kind="automation",
                         source="core"), f"{ctx.key}:{user['id']}")


def _told(users: Sequence[Mapping[str, Any]]) -> str:
    return f"notified user(s) {', '.join(str(u['id']) for u in users)}" if users else "nobody to notify"


async def _notify(ctx: AutomationContext) -> str:
    from core.notifications import notify

    users = await _recipients(ctx)
    for user in users:
        notification, key = _message(ctx, user)
        await notify(notification, dedup_key=key)
    return _told(users)


async def _notify_many(ctxs: Sequence[AutomationContext]) -> list[str]:
    """Many records at once: the recipients read in one query, the notifications written in one insert."""
    from core.bulk import any_of
    from core.notifications import notify_many
    from core.security.models import User, UserRole

    wanted: dict[int, list[int]] = {}
    roles: dict[str, list[int]] = {}
    for n, ctx in enumerate(ctxs):
        to = ctx.params.get("to", "owner")
        if to == "role":
            role = str(ctx.params.get("role"))
            if role not in roles:
                roles[role] = [int(r["user"]) for r in await UserRole.select(UserRole.user).where(
                    UserRole.role == role)]
            ids = roles[role]
        else:
            am = await _model(ctx) if to == "owner" else None
            raw = ctx.record.get(am.owner) if am is not None else ctx.params.get("user_id")
            ids = [int(raw)] if raw not in (None, "") else []
        wanted[n] = sorted(set(ids))
    every = sorted({i for ids in wanted.values() for i in ids})
    users = {int(u["id"]): u for u in await User.select(User.id, User.email, User.language).where(
        any_of(User.id, every) & (User.is_active == True))} if every else {}  # noqa: E712
    items = []
    lines = []
    for n, ctx in enumerate(ctxs):
        reached = [users[i] for i in wanted[n] if i in users]
        items += [_message(ctx, user) for user in reached]
        lines.append(_told(reached))
    await notify_many(items)
    return lines


_EMAIL_PARAMS = ("to", "user_id", "role", "field", "address", "subject_en", "subject_zh", "body_en", "body_zh")


async def _check_email(am: AutomationModel, params: Mapping[str, Any]) -> Mapping[str, Any]:
    _only(params, _EMAIL_PARAMS)
    to = params.get("to", "owner")
    if to == "field":
        field = params.get("field")
        if not isinstance(field, str) or field not in am.fields:
            raise ValidationError({"field": f"must be a field of {am.model} holding an e-mail address"})
        out: dict[str, Any] = {"to": "field", "field": field}
    elif to == "address":
        address = _text(params, "address", required=True, limit=254).strip()
        if not _EMAIL.match(address):
            raise ValidationError({"address": N_("is not an e-mail address")})
        out = {"to": "address", "address": address}
    else:
        out = await _check_recipients(am, params)
    for name in ("subject_en", "subject_zh", "body_en", "body_zh"):
        out[name] = template_param(params, name)
    if not (out["subject_en"].strip() or out["subject_zh"].strip()):
        raise ValidationError({"subject_en": N_("a subject is required (in English, Chinese or both)")})
    return out


async def _send_email(ctx: AutomationContext) -> str:
    from core.runtime import current

    settings = current().settings
    if not settings.smtp_host:
        raise PermanentJobError("CRM_SMTP_HOST is not set: rules cannot send e-mail")
    to = ctx.params.get("to", "owner")
    if to in ("field", "address"):
        address = str(ctx.record.get(str(ctx.params.get("field"))) or "") if to == "field" else str(
            ctx.params.get("address"))
        language = str(ctx.record.get("language") or "") or _language(None)
        targets = [(address, language)] if _EMAIL.match(address) else []
    else:
        targets = [(str(u["email"]), _language(u["language"])) for u in await _recipients(ctx) if u["email"]]
    if not targets:
        return "no e-mail address to write to"
    digest = hashlib.sha256(ctx.key.encode()).hexdigest()[:32]
    messages = []
    for n, (address, language) in enumerate(targets):
        msg = EmailMessage()
        msg["From"] = settings.smtp_from
        msg["To"] = address
        msg["Subject"] = render(_pick(ctx.params, "subject", language), ctx).strip().replace("\n", " ")[:250]
        # the same Message-ID on a retry: the receiving side may recognise a second copy
        msg["Message-ID"] = f"<automation-{digest}-{n}@{settings.smtp_from.rpartition('@')[2] or 'crm'}>"
        msg.set_content(render(_pick(ctx.params, "body", language), ctx))
        messages.append(msg)

    def deliver() -> None:
        with smtplib.SMTP(settings.smtp_host or "", settings.smtp_port, timeout=30) as smtp:
            for msg in messages:
                smtp.send_message(msg)

    await asyncio.to_thread(deliver)
    return f"e-mailed {', '.join(a for a, _ in targets)}"


# --- webhooks and approvals -----------------------------------------------------------------------------------


async def _check_webhook(am: AutomationModel, params: Mapping[str, Any]) -> Mapping[str, Any]:
    _only(params, ("url", "timeout"))
    url = _text(params, "url", required=True, limit=2000).strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError({"url": N_("must be an http:// or https:// address")})
    if parts.username or parts.password:
        raise ValidationError({"url": N_("must not carry a user name or password (use a token in the path)")})
    timeout = params.get("timeout", 10)
    timeout = core_values.integer(timeout, "timeout", (1, 30))
    return {"url": await _target(url, must_resolve=False), "timeout": timeout}


async def _target(url: str, must_resolve: bool = True) -> str:
    """Private, loopback and link-local targets refused unless CRM_WEBHOOK_ALLOW_NETWORKS allows them (as for
    webhook subscriptions: core.webhooks.targets)."""
    from core.runtime import current
    from core.webhooks import targets

    return await targets.check(url, current().settings.webhook_allow_networks, must_resolve=must_resolve)


async def _webhook(ctx: AutomationContext) -> str:
    import httpx

    body = {"rule": {"id": ctx.rule_id, "name": ctx.rule_name}, "run": ctx.run_id, "key": ctx.key,
            "model": ctx.model, "record_id": ctx.record_id, "record": dict(ctx.record)}
    try:
        url = await _target(str(ctx.params["url"]))
    except ValidationError as exc:
        raise PermanentJobError(f"webhook {ctx.params['url']}: {exc.fields.get('url', exc)}") from None
    async with httpx.AsyncClient(timeout=float(ctx.params.get("timeout") or 10), follow_redirects=False) as client:
        answer = await client.post(url, json=body,
                                   headers={"Idempotency-Key": ctx.key, "User-Agent": "crm-automation"})
    if 400 <= answer.status_code < 500 and answer.status_code not in (408, 429):
        raise PermanentJobError(f"the webhook answered {answer.status_code}")
    answer.raise_for_status()  # 5xx, 408, 429: tried again
    return f"webhook answered {answer.status_code}"


async def _check_approval(am: AutomationModel, params: Mapping[str, Any]) -> Mapping[str, Any]:
    from core.approvals import automation

    return await automation.check(am, params)


async def _approval(ctx: AutomationContext) -> str:
    from core.approvals import automation

    return await automation.run(ctx)


def webhook_actions() -> list[AutomationAction]:
    from core.webhooks.automation import actions

    return actions()


def builtin_actions() -> list[AutomationAction]:
    """The kernel's action kinds (an addon's kind of the same name replaces one: ``require_approval``)."""
    return [
        AutomationAction("set_field", N_("Set a field"), _set_field, check=_check_set_field),
        AutomationAction("assign_owner", N_("Assign an owner"), _assign, check=_check_assign),
        AutomationAction("add_tag", N_("Add a tag"), _add_tag, check=_check_tag),
        AutomationAction("remove_tag", N_("Remove a tag"), _remove_tag, check=_check_tag),
        AutomationAction("notify", N_("Notify a user or a role"), _notify, check=_check_notify,
                         run_many=_notify_many),
        AutomationAction("send_email", N_("Send an e-mail"), _send_email, check=_check_email, is_external=True),
        AutomationAction("webhook", N_("Call a webhook"), _webhook, check=_check_webhook, is_external=True),
        AutomationAction("require_approval", N_("Require approval"), _approval, check=_check_approval),
        *webhook_actions(),
    ]
