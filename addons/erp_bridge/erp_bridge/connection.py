"""Which ERP to talk to: the active ``BackendConfig`` row, opened through the ``crm.erp_backends`` entry points.

Backend objects are cached per process (a Tryton backend keeps its HTTP client and session) and keyed by the
settings they were built from, so editing the configuration takes effect on the next job. Tests put a ready
instance (a ``FakeBackend``) in place with :func:`use_backend`.
"""

from __future__ import annotations

import hashlib
import inspect
import threading
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from core.errors import ConfigError
from erp_bridge.backends.base import ErpBackend

GROUP = "crm.erp_backends"

_cache: dict[str, tuple[str, ErpBackend]] = {}
_overrides: dict[str, ErpBackend] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class Backend:
    """The configuration row as the rest of the addon sees it; the password is kept out of repr."""

    id: int
    name: str
    kind: str
    url: str
    database: str
    username: str
    password: str = field(repr=False)


def kinds() -> list[str]:
    return sorted(ep.name for ep in entry_points(group=GROUP))


def use_backend(name: str, backend: ErpBackend | None) -> None:
    """Serve ``backend`` for the configuration named ``name`` in this process (None removes it)."""
    with _lock:
        if backend is None:
            _overrides.pop(name, None)
        else:
            _overrides[name] = backend


async def is_configured() -> bool:
    """Whether an active backend exists (scheduled jobs wait quietly until one does)."""
    from erp_bridge.models import BackendConfig

    return bool(await BackendConfig.exists().where(BackendConfig.is_active == True))  # noqa: E712


async def active() -> Backend:
    """The active backend configuration (the first by id); ConfigError when there is none."""
    from erp_bridge.models import BackendConfig

    row = await BackendConfig.select().where(BackendConfig.is_active == True).order_by(  # noqa: E712
        BackendConfig.id).first()
    if row is None:
        raise ConfigError("no active ERP backend is configured (crm erp configure …)")
    return Backend(id=row["id"], name=row["name"], kind=row["kind"], url=row["url"], database=row["database"],
                   username=row["username"], password=row["password"])


async def configure(name: str, kind: str, url: str = "", database: str = "", username: str = "",
                    password: str = "", is_active: bool = True, web_url: str | None = None) -> int:
    """Create or update the configuration ``name``; returns its id. ``web_url``: the ERP's web client (links to
    its documents from the reconciliation; Tryton: ``https://erp.example.com/``), unchanged when None."""
    from erp_bridge.models import BackendConfig

    if kind not in kinds():
        raise ConfigError(f"unknown ERP backend kind {kind!r} (installed: {', '.join(kinds())})")
    values: dict[str, Any] = {"kind": kind, "url": url, "database": database, "username": username,
                              "password": password, "is_active": is_active}  # column name → value
    if web_url is not None:
        values["web_url"] = web_url
    found = await BackendConfig.select(BackendConfig.id).where(BackendConfig.name == name).first()
    if found:
        await BackendConfig.update(**values).where(BackendConfig.id == found["id"])
        return int(found["id"])
    rows = await BackendConfig.insert(BackendConfig(name=name, **values)).returning(BackendConfig.id)
    return int(rows[0]["id"])


def open_backend(cfg: Backend) -> ErpBackend:
    """A (cached) backend object for ``cfg``."""
    if cfg.name in _overrides:
        return _overrides[cfg.name]
    fingerprint = hashlib.sha256(repr((cfg.kind, cfg.url, cfg.database, cfg.username, cfg.password)).encode()
                                 ).hexdigest()
    with _lock:
        cached = _cache.get(cfg.name)
        if cached and cached[0] == fingerprint:
            return cached[1]
        found = [ep for ep in entry_points(group=GROUP) if ep.name == cfg.kind]
        if not found:
            raise ConfigError(f"unknown ERP backend kind {cfg.kind!r} (installed: {', '.join(kinds())})")
        factory = found[0].load()
        offered: dict[str, Any] = {"url": cfg.url, "database": cfg.database, "username": cfg.username,
                                   "password": cfg.password}
        accepted = inspect.signature(factory).parameters
        backend: ErpBackend = factory(**{k: v for k, v in offered.items() if k in accepted})
        _cache[cfg.name] = (fingerprint, backend)
        return backend
