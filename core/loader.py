"""The one loader for dotted paths named in a manifest (``models``, ``routes``, ``hooks``, ``on_install``…).

Every failure — the module is missing, an import inside it fails, it has a syntax error, the attribute is
not there — becomes one :class:`~core.errors.AddonError` line naming the addon, the manifest field and the
cause, the same on the command line and at boot. Five call sites used to do this five ways.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from core.errors import AddonError


def _cause(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError):
        return f"SyntaxError in {exc.filename}, line {exc.lineno}: {exc.msg}"
    return f"{type(exc).__name__}: {exc}"


def load_module(path: str, addon: str, field: str) -> ModuleType:
    """Import the module part of ``path`` (``pkg.mod`` or ``pkg.mod:attr``) for ``addon``'s ``field``."""
    module_path = path.partition(":")[0]
    try:
        return importlib.import_module(module_path)
    except Exception as exc:
        raise AddonError(addon, f"manifest field {field} = {path!r} cannot be imported: {_cause(exc)}") from exc


def load(path: str, addon: str, field: str, default_attr: str | None = None) -> Any:
    """The object ``path`` names: ``pkg.mod:attr`` (or ``default_attr`` of ``pkg.mod``; the module itself
    when neither is given)."""
    module = load_module(path, addon, field)
    attr = path.partition(":")[2] or default_attr
    if not attr:
        return module
    try:
        return getattr(module, attr)
    except AttributeError:
        raise AddonError(addon, f"manifest field {field} = {path!r}: module {module.__name__!r} has no "
                                f"attribute {attr!r}") from None
