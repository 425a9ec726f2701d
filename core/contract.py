"""What an addon must satisfy, as checks that return the problems they find (an empty list: conforms).

:class:`core.testing.AddonContract` asserts each of them for every addon; they are plain functions so a
kernel test can show each one failing on a broken addon, and a command could run them on a third party's.

- :func:`policy_problems`: grants, field rules and menus name models the addon or its dependencies define,
  and roles someone declares.
- :func:`hook_problems`: every implementation matches a spec (the kernel's, or an event of the addon, of a
  dependency, or — ``optionalhook=True`` — of any present addon) and takes only arguments the spec passes.
- :func:`naming_problems`: actors are ``<addon>.<verb>``, events ``<addon>_<event>``, schedules name the
  addon's own actors.
- :func:`translation_problems`: every message of its templates, code and manifest is translated.
- :func:`leftovers`: what a purge left behind in the database.
- :func:`unguarded_routes`: pages and API calls that answer without a login.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterable
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from piccolo.table import Table

from core import hooks, i18n, jobs, loader
from core.addon import Addon
from core.discovery import Discovered
from core.migrations_registry import kernel_tables, tables_of
from core.resolver import closure

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from core.api import Resource

KERNEL = "core"


# ---------------------------------------------------------------------------------------------------------------
# Models, roles and the policy
# ---------------------------------------------------------------------------------------------------------------


def chain(addon: Addon, found: Discovered) -> list[Addon]:
    """``addon`` and its dependencies, dependencies first."""
    return [found.addons[n] for n in closure([addon.name], found.addons, found.errors)]


async def resources_of(addons: list[Addon]) -> list[Resource]:
    """The API resources ``addons`` serve (their ``crm_api_resources``), as boot would collect them."""
    from core.api import Resource

    pm = hooks.manager()
    for each in addons:
        if each.hookspecs:
            hooks.add_specs(pm, each.hookspecs, each.name)
    names = {a.name for a in addons}
    for each in addons:
        for path in each.hooks:
            hooks.add_impls(pm, path, each.name)
        for other, glue in each.extras.items():
            if other in names:
                hooks.add_impls(pm, glue, each.name, f"extras[{other!r}]")
    return [r for r in await hooks.collect(pm, "crm_api_resources") if isinstance(r, Resource)]


def _columns(table: type[Table]) -> set[str]:
    return {c._meta.name for c in table._meta.columns}


async def defined_models(addons: list[Addon]) -> dict[str, set[str]]:
    """Model name → its fields, for the kernel and ``addons``.

    A model ``<addon>.<noun>`` is defined by the addon's table ``<addon>_<noun>``, by a group of its tables
    ``<addon>_<noun>_…`` (``crm_contacts.import``: the batches and their rows), or by one of its API
    resources. Never by a grant: the policy is what is being checked."""
    exact: dict[str, set[str]] = {}
    groups: dict[str, set[str]] = {}
    owned = [(KERNEL, t) for t in kernel_tables()] + [(a.name, t) for a in addons for t in tables_of(a.models, a.name)]
    for owner, table in owned:
        noun = table._meta.tablename.removeprefix(f"{owner}_")
        exact.setdefault(f"{owner}.{noun}", set()).update(_columns(table))
        parts = noun.split("_")
        for end in range(1, len(parts)):
            groups.setdefault(f"{owner}.{'_'.join(parts[:end])}", set()).update(_columns(table))
    models = groups | exact  # a table of that very name says which fields the model has
    names = {a.name for a in addons}
    for res in await resources_of(addons):
        if res.model.split(".")[0] in names:
            models.setdefault(res.model, set()).update(_columns(res.table))
    return models


async def policy_problems(addon: Addon, found: Discovered) -> list[str]:
    """Grants, field rules and menus that name a model neither ``addon`` nor a dependency defines, a field
    the model does not have, or a role nobody declares (a typo there would silently grant or mask nothing)."""
    from core.security.policy import KERNEL_ROLES

    addons = chain(addon, found)
    models = await defined_models(addons)
    roles = {r.name for r in KERNEL_ROLES} | {r.name for a in addons for r in a.roles}
    out: list[str] = []

    def model(what: str, name: str) -> bool:
        if name not in models:
            out.append(f"{what} names model {name!r}, which neither {addon.name} nor its dependencies define "
                       f"(a table <addon>_<noun>, tables <addon>_<noun>_…, or an API resource)")
            return False
        return True

    for grant in addon.permissions:
        model(f"grant to {grant.role!r}", grant.model)
        if grant.role not in roles:
            out.append(f"grant on {grant.model!r} is for role {grant.role!r}, which nobody declares")
    for rule in addon.field_rules:
        if model(f"field rule on {rule.field!r}", rule.model) and rule.field not in models[rule.model]:
            out.append(f"field rule for {rule.role!r} names field {rule.field!r}, which {rule.model} does not have")
        if rule.role not in roles:
            out.append(f"field rule on {rule.model}.{rule.field} is for role {rule.role!r}, which nobody declares")
    for menu in addon.menus:
        if menu.model is not None:
            model(f"menu {menu.label!r}", menu.model)
    for role in addon.roles:
        out += [f"role {role.name!r} implies {implied!r}, which nobody declares"
                for implied in role.implies if implied not in roles]
    return out


# ---------------------------------------------------------------------------------------------------------------
# Hooks, actors, events
# ---------------------------------------------------------------------------------------------------------------


def _marked(module: Any, marker: str) -> dict[str, Callable[..., Any]]:
    """The functions of ``module`` pluggy would take as hook specs (``crm_spec``) or implementations (``crm_impl``)."""
    return {name: fn for name, fn in vars(module).items()
            if inspect.isroutine(fn) and getattr(fn, f"{hooks.PROJECT}_{marker}", None) is not None}


def _argnames(fn: Callable[..., Any]) -> list[str]:
    return [p.name for p in inspect.signature(fn).parameters.values()
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def _specs(addons: Iterable[Addon], kernel: bool = True) -> dict[str, tuple[str, list[str]]]:
    """Hook name → (who declares it, its argument names)."""
    out: dict[str, tuple[str, list[str]]] = {}
    if kernel:
        out.update({name: (KERNEL, _argnames(fn)) for name, fn in _marked(hooks, "spec").items()})
    for each in addons:
        if each.hookspecs:
            module = loader.load_module(each.hookspecs, each.name, "hookspecs")
            out.update({name: (each.name, _argnames(fn)) for name, fn in _marked(module, "spec").items()})
    return out


def hook_problems(addon: Addon, found: Discovered) -> list[str]:
    """Implementations in ``hooks`` and ``extras`` modules that match no spec, or take an argument the spec
    does not pass. An implementation must match the kernel's specs or the events of the addon and its
    dependencies (and, for an ``extras`` module, of the addon it glues to); an event of any other present
    addon only with ``optionalhook=True``, so the listener loads whether or not the emitter is installed."""
    own = chain(addon, found)
    present = _specs([a for a in found.addons.values() if a.name not in found.errors], kernel=False)
    modules = [(path, "hooks", own) for path in addon.hooks]
    modules += [(glue, f"extras[{other!r}]", own + (chain(found.addons[other], found) if other in found.addons
                                                    else []))
                for other, glue in addon.extras.items()]
    out: list[str] = []
    for path, field, addons in modules:
        allowed = _specs(addons)
        for attr, fn in _marked(loader.load_module(path, addon.name, field), "impl").items():
            opts = getattr(fn, f"{hooks.PROJECT}_impl")
            name = opts.get("specname") or attr
            spec = allowed.get(name) or (present.get(name) if opts.get("optionalhook") else None)
            if spec is None:
                hint = (" (an event of an addon outside its dependencies needs @hookimpl(optionalhook=True))"
                        if name in present else "")
                out.append(f"{path}: {name} implements no hook the kernel, {addon.name} or its dependencies "
                           f"declare{hint}")
                continue
            extra = [a for a in _argnames(fn) if a not in spec[1]]
            if extra:
                out.append(f"{path}: {name} takes {extra}, which {spec[0]}'s spec does not pass "
                           f"(it passes {spec[1]})")
    return out


def naming_problems(addon: Addon) -> list[str]:
    """Actors not named ``<addon>.<verb>``, events (specs in ``hookspecs``) not named ``<addon>_<event>`` or
    undocumented, schedules naming an actor the addon does not declare."""
    out: list[str] = []
    declared: set[str] = set()
    if addon.actors:
        loader.load_module(addon.actors, addon.name, "actors")
    verb = re.compile(rf"^{re.escape(addon.name)}\.[a-z][a-z0-9_]*$")
    for job in jobs.registered():
        module = job.fn.__module__
        if module != addon.package and not module.startswith(f"{addon.package}."):
            continue
        declared.add(job.name)
        if not verb.match(job.name):
            out.append(f"actor {job.name!r} ({module}) is not named {addon.name}.<verb>")
    for schedule in addon.schedules:
        if schedule.actor not in declared:
            out.append(f"schedule names actor {schedule.actor!r}, which {addon.name} does not declare")
    if addon.hookspecs:
        event = re.compile(rf"^{re.escape(addon.name)}_[a-z][a-z0-9_]*$")
        for name, fn in _marked(loader.load_module(addon.hookspecs, addon.name, "hookspecs"), "spec").items():
            if not event.match(name):
                out.append(f"event {name!r} is not named {addon.name}_<event>")
            if not (fn.__doc__ or "").strip():
                out.append(f"event {name!r} has no docstring")
    return out


# ---------------------------------------------------------------------------------------------------------------
# Translations
# ---------------------------------------------------------------------------------------------------------------

#: what marks a message for translation in Python (``in_language(lang, message)``: the second argument; ``N_``:
#: a label defined in code, translated where shown)
KEYWORDS: dict[str, Any] = {"_": None, "gettext": None, "ngettext": (1, 2), "in_language": (2,), "N_": None}
_METHODS = [("**/tests/**", "ignore"), ("**.py", "python"), ("**.html", "jinja2.ext:babel_extract")]
_OPTIONS = {"**.html": {"extensions": "jinja2.ext.i18n"}}


def catalog_path(package: str, lang: str) -> Path:
    return Path(str(resources.files(package).joinpath("locale", lang, "LC_MESSAGES", f"{package}.po")))


def package_messages(package: str) -> dict[str, str]:
    """Every message the templates and code of ``package`` mark for translation → where (Babel's extractors)."""
    from babel.messages.extract import extract_from_dir

    root = Path(str(resources.files(package)))
    found: dict[str, str] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
            str(root), _METHODS, options_map=_OPTIONS, keywords=KEYWORDS):
        for text in (message if isinstance(message, tuple) else (message,)):
            if text:
                found.setdefault(text, f"{package}/{filename}:{lineno}")
    return found


def kernel_messages() -> dict[str, str]:
    """Every message of the kernel: its templates and code, and the labels of the roles it declares."""
    from core import labels
    from core.migrations_registry import kernel_tables
    from core.security.policy import KERNEL_ROLES

    found = package_messages(KERNEL)
    for role in KERNEL_ROLES:
        found.setdefault(role.label, f"kernel role {role.name}")
    # audit lines and timelines name a kernel record's changed column by its words when nobody labelled it
    for table in kernel_tables():
        for column in table._meta.columns:
            found.setdefault(labels.humanize(column._meta.name), f"column {table._meta.tablename}.{column._meta.name}")
    return found


def messages(addon: Addon) -> dict[str, str]:
    """Every message ``addon`` marks for translation → where (templates, code, manifest menus and roles)."""
    found = package_messages(addon.package)
    for menu in addon.menus:
        found.setdefault(menu.label, f"manifest menu {menu.path}")
    for role in addon.roles:
        found.setdefault(role.label, f"manifest role {role.name}")
    return found


def _read(path: Path, lang: str) -> Any:
    from babel.messages.pofile import read_po

    with path.open("rb") as fh:
        return read_po(fh, locale=lang)


def translation_problems(addon: Addon, found: Discovered) -> list[str]:
    """Per language but English: entries of the addon's catalog that are empty or fuzzy, and messages of the
    addon that no catalog loaded with it (its own, its dependencies', the kernel's) translates."""
    return _untranslated(addon.package, messages(addon), [KERNEL, *(a.package for a in chain(addon, found))])


def kernel_translation_problems() -> list[str]:
    """:func:`translation_problems` for the kernel, whose messages only its own catalog may translate."""
    return _untranslated(KERNEL, kernel_messages(), [KERNEL])


def _untranslated(own_package: str, wanted: dict[str, str], packages: list[str]) -> list[str]:
    out: list[str] = []
    for lang in (lang for lang in i18n.LANGUAGES if lang != "en"):
        own = catalog_path(own_package, lang)
        known: set[str] = set()
        for package in packages:
            path = catalog_path(package, lang)
            if not path.is_file():
                continue
            for entry in _read(path, lang):
                ids = entry.id if isinstance(entry.id, tuple) else (entry.id,)
                strings = entry.string if isinstance(entry.string, tuple) else (entry.string,)
                if not entry.id:
                    continue
                usable = all(strings) and not entry.fuzzy
                if usable:
                    known.update(ids)
                elif path == own:
                    out.append(f"{own.name} ({lang}): {ids[0]!r} is "
                               f"{'fuzzy' if entry.fuzzy else 'not translated'}")
        for text, where in sorted(wanted.items()):
            if text not in known:
                out.append(f"{where}: {text!r} has no {lang} translation (add it to {own})")
    return out


# ---------------------------------------------------------------------------------------------------------------
# Purge and routes
# ---------------------------------------------------------------------------------------------------------------

_SQLITE_OBJECTS = "SELECT name, type AS kind FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
_PG_OBJECTS = """SELECT c.relname AS name, CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'table'
  WHEN 'i' THEN 'index' WHEN 'I' THEN 'index' WHEN 'S' THEN 'sequence' WHEN 'v' THEN 'view' WHEN 'm' THEN 'view'
  ELSE c.relkind::text END AS kind FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema()
UNION ALL SELECT p.proname, 'function' FROM pg_proc p
JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = current_schema()
UNION ALL SELECT t.typname, 'type' FROM pg_type t
JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = current_schema() AND t.typtype IN ('e', 'd')"""


async def leftovers(addon: Addon, found: Discovered) -> list[str]:
    """What of ``addon`` is still in the database after a purge: tables, indexes and functions named after
    it, its install record, migration records, external ids, outbox rows and schedule ticks of its actors,
    and assignments of roles only it declares. The audit log keeps its rows: it is append-only."""
    from piccolo.apps.migrations.tables import Migration

    from core import db, lifecycle, migrate
    from core.models import ExternalId, InstalledAddon, Outbox, ScheduleTick
    from core.security.models import CustomRole, UserRole

    out: list[str] = []
    names = [addon.name, *(n for n in found.addons if n != addon.name)]
    for row in await InstalledAddon.raw(_PG_OBJECTS if db.is_postgres() else _SQLITE_OBJECTS):
        if migrate.owner(row["name"], names) == addon.name:
            out.append(f"{row['kind']} {row['name']}")
    if await InstalledAddon.exists().where(InstalledAddon.name == addon.name):
        out.append("its core_addon row")
    counts = {
        "migration records": await Migration.count().where(Migration.app_name == addon.name),
        "core_external_id rows": await ExternalId.count().where(ExternalId.addon == addon.name),
        "outbox rows": sum(1 for r in await Outbox.select(Outbox.actor) if r["actor"].startswith(f"{addon.name}.")),
        "schedule ticks": sum(1 for r in await ScheduleTick.select(ScheduleTick.key)
                              if r["key"].startswith(f"{addon.name}.")),
    }
    others = [found.addons[n] for n in await lifecycle.installed() if n in found.addons and n != addon.name]
    roles = lifecycle.own_roles(addon, others)
    if roles:
        counts["user role assignments"] = await UserRole.count().where(UserRole.role.is_in(sorted(roles)))
        counts["custom roles implying its roles"] = sum(
            1 for r in await CustomRole.select(CustomRole.implies) if set(roles) & set(_json_list(r["implies"])))
    out += [f"{n} {what}" for what, n in counts.items() if n]
    return out


def _json_list(value: Any) -> list[str]:
    import json

    return list(json.loads(value) if isinstance(value, str) else value)


#: what a page or API call may answer someone who is not logged in
REFUSED = {401, 403, 404, 405}


def _routes(app: Starlette, addon: Addon, resources_: list[Resource]) -> list[tuple[str, str, str]]:
    """(method, path template, route name) for the addon's pages (its ``Mount``) and API resources."""
    from starlette.routing import BaseRoute, Mount, Route

    from core.api import resource_routes

    out: list[tuple[str, str, str]] = []

    def walk(routes: Iterable[BaseRoute], prefix: str) -> None:
        for route in routes:
            if isinstance(route, Mount):
                walk(route.routes, prefix + route.path)
            elif isinstance(route, Route):
                for method in sorted((route.methods or {"GET"}) - {"HEAD"}):
                    out.append((method, prefix + route.path, route.name))

    walk([r for r in app.router.routes if isinstance(r, Mount) and r.name == addon.name], "")
    walk([r for res in resources_ if res.model.split(".")[0] == addon.name for r in resource_routes(res)], "")
    return out


async def unguarded_routes(app: Starlette, addon: Addon, resources_: list[Resource]) -> list[str]:
    """The addon's routes that answer an anonymous request (path parameters set to 1, unsafe methods with the
    pre-login CSRF token, so the request reaches the endpoint) with anything but a refusal or a redirect to
    the login page. Routes named ``public_…`` are public by declaration (a signed link, say)."""
    import httpx

    out: list[str] = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        await client.get("/login")  # the pre-login CSRF cookie
        csrf = client.cookies.get("crm_csrf") or ""
        for method, template, name in _routes(app, addon, resources_):
            if name.startswith("public_"):
                continue
            url = re.sub(r"\{[^}]+\}", "1", template)
            response = await client.request(method, url, headers={"x-csrf-token": csrf},
                                            follow_redirects=method == "GET")
            if response.status_code in REFUSED:
                continue
            history = [*response.history, response]
            if any(r.is_redirect and httpx.URL(r.headers.get("location", "")).path == "/login" for r in history):
                continue
            out.append(f"{method} {url} ({name}) answers {response.status_code} without a login")
    return out
