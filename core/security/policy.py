"""The compiled security policy: roles, model grants and field rules declared by the installed addons.

Decisions (see ``docs/security.md``):
- grants are additive: a user's scopes for (model, action) are the union over their effective roles;
- ``admin`` may do everything and sees every field;
- ``readonly`` may read every addon model (scope all) and write nothing; on a field that carries rules it
  sees no more than the least-privileged declared rule allows (capped at read-only, never revealed);
- only roles that hold a grant on a model shape its field rules: an unrelated extra role never unmasks a field.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from core.addon import Addon, FieldRule, Grant, Role

SCOPE_RANK = {"own": 1, "team": 2, "subordinates": 2, "all": 3}
FIELD_RANK = {"hidden": 0, "masked": 1, "readonly": 2, "editable": 3}

KERNEL_ROLES = (
    Role("admin", "Administrator"),
    Role("auditor", "Auditor"),
    Role("readonly", "Read-only"),
)
KERNEL_GRANTS = (
    Grant("auditor", "core.audit_log", ("read", "export")),
)


@dataclass
class Policy:
    roles: dict[str, Role] = field(default_factory=dict)
    implied: dict[str, tuple[str, ...]] = field(default_factory=dict)
    grants: dict[tuple[str, str], dict[str, list[str]]] = field(default_factory=dict)
    field_rules: dict[tuple[str, str], dict[str, FieldRule]] = field(default_factory=dict)
    models: set[str] = field(default_factory=set)
    #: rules custom field definitions carry (``core.customfields`` replaces them when definitions change)
    custom_rules: dict[tuple[str, str], dict[str, FieldRule]] = field(default_factory=dict)

    def add_role(self, role: Role) -> None:
        self.roles[role.name] = role
        self.implied[role.name] = tuple({*self.implied.get(role.name, ()), *role.implies})

    def add_grant(self, grant: Grant) -> None:
        self.models.add(grant.model)
        per_action = self.grants.setdefault((grant.role, grant.model), {})
        for action in grant.actions:
            per_action.setdefault(action, []).append(grant.scope)

    def add_field_rule(self, rule: FieldRule) -> None:
        self.field_rules.setdefault((rule.model, rule.field), {})[rule.role] = rule

    def _readonly_reads(self, model: str) -> bool:
        return not model.startswith("core.") and model in self.models

    def scopes(self, roles: Iterable[str], model: str, action: str) -> frozenset[str]:
        """Every scope ``roles`` hold for ``action`` on ``model`` (empty: no access); OR-ed by the access layer."""
        out: set[str] = set()
        for role in roles:
            if role == "admin":
                return frozenset({"all"})
            if role == "readonly" and action == "read" and self._readonly_reads(model):
                out.add("all")
            out.update(self.grants.get((role, model), {}).get(action, []))
        return frozenset({"all"}) if "all" in out else frozenset(out)

    def scope(self, roles: Iterable[str], model: str, action: str) -> str | None:
        """The widest scope any of ``roles`` has for ``action`` on ``model`` (None: no access)."""
        found = self.scopes(roles, model, action)
        return max(found, key=lambda s: (SCOPE_RANK[s], s)) if found else None

    def _has_model(self, role: str, model: str) -> bool:
        return (role, model) in self.grants or (role == "readonly" and self._readonly_reads(model))

    def field_rule(self, roles: Iterable[str], model: str, field_name: str) -> tuple[str, str, bool]:
        """(rule, masker, may_reveal): the most permissive rule among the roles that hold a grant on
        ``model``; a granted role with no rule on the field may edit it."""
        rules = self.field_rules.get((model, field_name)) or self.custom_rules.get((model, field_name))
        roles = list(roles)
        if "admin" in roles:
            return "editable", "default", True
        if not rules:
            return "editable", "default", False
        best, masker, reveal = "hidden", "default", False
        for role in roles:
            if not self._has_model(role, model):
                continue
            rule = rules.get(role)
            if rule is None and role == "readonly":
                rule = self._readonly_rule(rules.values())
            if rule is None:
                return "editable", "default", True
            if FIELD_RANK[rule.rule] > FIELD_RANK[best]:
                best, masker = rule.rule, rule.masker
            reveal = reveal or (rule.reveal and rule.rule == "masked")
        return best, masker, reveal

    @staticmethod
    def _readonly_rule(declared: Iterable[FieldRule]) -> FieldRule:
        """What ``readonly`` gets on a field with rules: the least-privileged declared one, at most read-only."""
        least = min(declared, key=lambda r: FIELD_RANK[r.rule])
        rule = least.rule if FIELD_RANK[least.rule] < FIELD_RANK["readonly"] else "readonly"
        return FieldRule("readonly", least.model, least.field, rule, masker=least.masker)

    def sensitive_fields(self, model: str) -> list[str]:
        return [f for (m, f) in [*self.field_rules, *self.custom_rules] if m == model]


def compile_policy(addons: Iterable[Addon], custom: Iterable[Role] = ()) -> Policy:
    policy = Policy()
    for role in KERNEL_ROLES:
        policy.add_role(role)
    for grant in KERNEL_GRANTS:
        policy.add_grant(grant)
    for addon in addons:
        for role in addon.roles:
            policy.add_role(role)
        for grant in addon.permissions:
            policy.add_grant(grant)
        for rule in addon.field_rules:
            policy.add_field_rule(rule)
    for role in custom:
        policy.add_role(role)
    return policy
