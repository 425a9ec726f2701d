"""What may be put behind an approval: the actions addons declare (``crm_approvable_actions``) and the kernel's
"delete a record" (``core.delete``) for every API resource, each with the condition schema its rules use.

Collected once per process (the hook's answer does not change while the CRM runs).
"""

from __future__ import annotations

from typing import Any, cast, get_args

from piccolo.table import Table

from core import conditions, hooks
from core.errors import AddonError
from core.hooks import ApprovableAction

DELETE = "core.delete"
_STATE = "approvals"
KINDS: frozenset[str] = frozenset(get_args(conditions.Kind)) - {"tags"}


def _delete_actions() -> list[ApprovableAction]:
    """``core.delete`` for each resource the generic API serves: conditions read its columns (not JSON ones)."""
    from core import runtime
    from core.i18n import N_

    out: list[ApprovableAction] = []
    for res in runtime.current().state.get("api_resources", []):
        fields: dict[str, str] = {}
        for name in res.fields:
            try:
                found = conditions.schema_for(res.model, res.table, [name], custom=False).fields[name]
            except ValueError:  # not a column, or a kind conditions cannot compare
                continue
            if found.kind != "tags":
                fields[name] = found.kind
        out.append(ApprovableAction(DELETE, N_("Delete a record"), res.model, fields, labels=dict(res.labels),
                                    title=next((f for f in ("name", "title", "number", "reference", "code")
                                                if f in fields), "")))
    return out


def _check(action: ApprovableAction) -> None:
    owner = action.key.split(".", 1)[0]
    if "." not in action.key or not action.key.replace(".", "").replace("_", "").isalnum():
        raise AddonError(owner, f"approvable action {action.key!r}: a key is '<addon>.<verb>'")
    wrong = sorted(name for name, kind in action.fields.items() if kind not in KINDS)
    if wrong:
        raise AddonError(owner, f"approvable action {action.key!r}: field {wrong[0]!r} has the kind "
                                f"{action.fields[wrong[0]]!r}, not one of {', '.join(sorted(KINDS))}")


async def actions() -> dict[tuple[str, str], ApprovableAction]:
    """Every approvable action by (key, model): the addons' first, then the kernel's deletes."""
    from core import runtime

    state = runtime.current().state
    found: dict[tuple[str, str], ApprovableAction] | None = state.get(_STATE)
    if found is None:
        found = {}
        for action in await hooks.call("crm_approvable_actions"):
            _check(action)
            found.setdefault((action.key, action.model), action)
        for action in _delete_actions():
            found.setdefault((action.key, action.model), action)
        state[_STATE] = found
    return dict(found)


async def action(key: str, model: str) -> ApprovableAction | None:
    return (await actions()).get((key, model))


def schema(action: ApprovableAction) -> conditions.Schema:
    """The schema conditions over ``action``'s values use. Approvals evaluate conditions in Python only, over
    the values the action hands over, so the schema's table is a stand-in that no query ever reads."""
    from core.approvals.models import ApprovalRequest

    fields = {name: conditions.Field(name, cast(conditions.Kind, "choice" if action.choices.get(name) and
                                                kind == "text" else kind),
                                     action.labels.get(name, name), column=name,
                                     choices=tuple(action.choices.get(name, ())))
              for name, kind in action.fields.items()}
    return conditions.Schema(action.model, cast(type[Table], ApprovalRequest), fields)


def describe(action: ApprovableAction) -> dict[str, Any]:
    """An action for forms and the API: key, model, label (translated) and the fields conditions may read."""
    from core.i18n import gettext

    return {"action": action.key, "model": action.model, "label": gettext(action.label),
            "performs": action.perform is not None,
            "fields": conditions.describe(schema(action), changes=False)}
