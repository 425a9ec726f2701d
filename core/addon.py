"""The addon declaration: what an addon contributes, as data.

A manifest module builds one frozen :class:`Addon` and must stay cheap to import: heavy parts are dotted paths
that the kernel imports only after the database engine and the job broker are configured.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from packaging.version import InvalidVersion, Version

from core.errors import AddonError

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_DOTTED = re.compile(r"^[A-Za-z_][\w.]*(:[A-Za-z_]\w*)?$")

Action = Literal["create", "read", "update", "delete", "export"]
Scope = Literal["own", "team", "subordinates", "all"]
ACTIONS: tuple[Action, ...] = ("create", "read", "update", "delete", "export")


@dataclass(frozen=True)
class Every:
    """A periodic job: ``actor`` is sent once per interval, by whichever scheduler wins the tick."""

    actor: str
    seconds: int = 0
    minutes: int = 0
    hours: int = 0

    @property
    def interval(self) -> int:
        return self.seconds + 60 * self.minutes + 3600 * self.hours


@dataclass(frozen=True)
class Grant:
    """Role ``role`` may do ``actions`` on ``model`` for records in ``scope``."""

    role: str
    model: str
    actions: tuple[Action, ...] = ("read",)
    scope: Scope = "all"


@dataclass(frozen=True)
class FieldRule:
    """How ``field`` of ``model`` appears to ``role``: hidden, masked (``masker``: phone, email, default),
    read-only or editable; ``reveal`` lets a masked role see one record's value, each time audited."""

    role: str
    model: str
    field: str
    rule: Literal["hidden", "masked", "readonly", "editable"]
    masker: str = "default"
    reveal: bool = False


@dataclass(frozen=True)
class Role:
    """A role (group) an addon declares; ``implies`` grants every right of those roles too."""

    name: str
    label: str
    implies: tuple[str, ...] = ()


@dataclass(frozen=True)
class Menu:
    """A navigation entry; shown when the user may read ``model`` (or always if ``model`` is None)."""

    label: str
    path: str
    model: str | None = None
    order: int = 100


@dataclass(frozen=True)
class Addon:
    """One addon's table of contents. See ``docs/addons.md``."""

    name: str
    version: str
    summary: str = ""
    #: the addon's name as people read it: the heading of its section in the navigation ("Sales")
    label: str = ""
    depends: tuple[str, ...] = ()
    models: str | None = None
    migrations: str | None = None
    routes: str | None = None
    mount: str | None = None
    templates: str | None = None
    static: str | None = None
    actors: str | None = None
    hooks: tuple[str, ...] = ()
    hookspecs: str | None = None
    extras: dict[str, str] = field(default_factory=dict)
    schedules: tuple[Every, ...] = ()
    roles: tuple[Role, ...] = ()
    permissions: tuple[Grant, ...] = ()
    field_rules: tuple[FieldRule, ...] = ()
    menus: tuple[Menu, ...] = ()
    data: tuple[str, ...] = ()
    demo: tuple[str, ...] = ()
    on_install: str | None = None
    on_upgrade: str | None = None
    on_uninstall: str | None = None

    def __post_init__(self) -> None:
        problems = list(self._problems())
        if problems:
            raise AddonError(self.name or "?", "invalid manifest: " + "; ".join(problems))

    def _problems(self) -> list[str]:
        out: list[str] = []
        if not _NAME.match(self.name or ""):
            out.append(f"name {self.name!r} must be lowercase letters, digits and underscores")
        try:
            Version(self.version)
        except (InvalidVersion, TypeError):
            out.append(f"version {self.version!r} is not a version number")
        if not isinstance(self.depends, tuple) or not all(_NAME.match(d) for d in self.depends):
            out.append("depends must be a tuple of addon names")
        elif self.name in self.depends:
            out.append("an addon cannot depend on itself")
        for attr in ("models", "migrations", "routes", "actors", "hookspecs", "on_install",
                     "on_upgrade", "on_uninstall"):
            value = getattr(self, attr)
            if value is not None and not _DOTTED.match(value):
                out.append(f"{attr} {value!r} is not a dotted path")
        if (self.routes is None) != (self.mount is None):
            out.append("routes and mount go together")
        if self.mount is not None and not self.mount.startswith("/"):
            out.append(f"mount {self.mount!r} must start with '/'")
        for schedule in self.schedules:
            if schedule.interval <= 0:
                out.append(f"schedule for {schedule.actor!r} needs a positive interval")
        for grant in self.permissions:
            bad = [a for a in grant.actions if a not in ACTIONS]
            if bad:
                out.append(f"grant on {grant.model!r} has unknown actions {bad}")
        return out

    @property
    def title(self) -> str:
        """``label``, or the name without its ``crm_`` prefix, capitalized."""
        return self.label or self.name.removeprefix("crm_").replace("_", " ").capitalize()

    @property
    def package(self) -> str:
        """The addon's import package: one name per addon, everywhere."""
        return self.name
