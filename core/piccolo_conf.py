"""Piccolo's configuration module (``PICCOLO_CONF=core.piccolo_conf``).

Both names are computed on access: ``DB`` is whatever :mod:`core.db` has bound (or the engine the
environment names), ``APP_REGISTRY`` lists the kernel and every present addon so Piccolo's own CLI
(``piccolo migrations new crm_x --auto``) works on addons too.
"""

from __future__ import annotations


def __getattr__(name: str) -> object:
    if name == "DB":
        from core import db
        from core.settings import Settings

        if db._engine is None:
            db.configure(Settings.from_env().database_url)
        return db.current()
    if name == "APP_REGISTRY":
        from core.migrations_registry import app_registry

        return app_registry()
    raise AttributeError(name)
