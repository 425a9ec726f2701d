"""Jinja2 for HTML views and PDF documents, composed from the installed addons.

``"crm_x/page.html"`` is looked up in the most dependent addon first, so a later addon may override a
template; ``"crm_x:crm_x/page.html"`` names one addon's own file, so an override can ``{% extends %}``
the original and fill its blocks. Values are shown with the filters of :mod:`core.formatting`
(``money``, ``number``, ``percent``, ``date``, ``datetime``, ``relative``), in the reader's locale and time zone.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PrefixLoader,
    StrictUndefined,
    select_autoescape,
)

from core import formatting, i18n
from core.addon import Addon


def folder(spec: str) -> Path:
    """``"package:folder"`` → the directory on disk."""
    package, _, sub = spec.partition(":")
    return Path(str(resources.files(package).joinpath(sub or "templates")))


def environment(addons: list[Addon]) -> Environment:
    own: dict[str, BaseLoader] = {"core": FileSystemLoader(folder("core:templates"))}
    for addon in addons:
        if addon.templates:
            own[addon.name] = FileSystemLoader(folder(addon.templates))
    ordered = [own[a.name] for a in reversed(addons) if a.name in own] + [own["core"]]
    env = Environment(
        loader=ChoiceLoader([PrefixLoader(own, delimiter=":"), *ordered]),
        autoescape=select_autoescape(["html", "xml"]),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        enable_async=False,
    )
    env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.globals["language"] = i18n.language
    # a label from code or data ({{ stage.label|t }}): translated, never %-formatted (a "%" in it is text)
    env.filters["t"] = i18n.translate
    env.filters.update(formatting.FILTERS)
    env.globals["timezone"] = formatting.current_timezone
    return env


def static_dirs(addons: list[Addon]) -> dict[str, Path]:
    """Addon name → its static directory (``static/<addon>/`` inside the declared folder), served at
    ``/static/<addon>/`` and readable by PDF templates as ``crm-asset:/<addon>/<file>``."""
    dirs = {"core": folder("core:static") / "core"}
    for addon in addons:
        if addon.static:
            dirs[addon.name] = folder(addon.static) / addon.name
    return dirs


def render(env: Environment, name: str, **context: Any) -> str:
    return env.get_template(name).render(**context)
