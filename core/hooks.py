# mypy: disable-error-code="empty-body"
# (a spec is a signature and a docstring: pluggy never runs its body)
"""The contract of extension points: every hook the kernel calls, the frozen values they return, and events.

This module is the whole of it; ``docs/hooks.md`` documents each hook (a test keeps the two in step).

- **Specs** are called with keyword arguments only, so a spec can grow an argument without breaking anyone.
- A hook that shows records to a person receives that person's :class:`~core.security.access.Access` and must
  read through it (``access.select``/``access.get``/``access.present``): an extension point never shows what the
  source model's own pages would refuse.
- An implementation may be ``def`` or ``async def``; :func:`collect` awaits either, flattens the sequences they
  return, drops ``None`` and keeps dependency order (the kernel's, then each addon's after its dependencies).
- Values crossing addon boundaries are frozen dataclasses or ids, never ORM rows.
- **Events** are hooks an addon declares in its own ``hookspecs`` module (``<addon>_<noun>_<past tense>``) and
  publishes with :func:`publish`; listeners implement them with ``@hookimpl(optionalhook=True)`` so they load
  whether or not the emitter is installed.
"""

from __future__ import annotations

import datetime as dt
import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import pluggy

from core import loader
from core.errors import AddonError

if TYPE_CHECKING:
    import click
    from piccolo.custom_types import Combinable
    from piccolo.table import Table

    from core.addon import Menu
    from core.api import Resource
    from core.security.access import Access

PROJECT = "crm"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# ---------------------------------------------------------------------------------------------------------------
# Values returned by extension points
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Panel:
    """A block on a record page: ``template`` (if any) is included with ``panel`` (this value) and ``ctx`` (its
    ``context``) in scope; ``count`` is shown next to the title when set."""

    key: str
    title: str
    template: str | None = None
    context: Mapping[str, Any] = field(default_factory=dict)
    order: int = 100
    count: int | None = None


@dataclass(frozen=True)
class RecordAction:
    """A button on a record page (``crm_record_actions``): a POST form to ``url`` (with the CSRF token), or a
    link for ``method="GET"``; ``confirm`` asks the user first."""

    key: str
    label: str
    url: str
    method: Literal["GET", "POST"] = "POST"
    confirm: str | None = None
    order: int = 100


@dataclass(frozen=True)
class TimelineEntry:
    """One dated line of a record's timeline; ``source`` is the addon that contributed it."""

    at: dt.datetime
    kind: str
    title: str
    body: str = ""
    url: str | None = None
    source: str = ""


@dataclass(frozen=True)
class Widget:
    """A card on the home dashboard, rendered from ``template`` with ``widget`` and ``ctx`` in scope."""

    key: str
    title: str
    template: str
    context: Mapping[str, Any] = field(default_factory=dict)
    order: int = 100


@dataclass(frozen=True)
class SearchHit:
    """One global-search result: what to show and where it leads."""

    title: str
    url: str
    kind: str
    subtitle: str = ""


@dataclass(frozen=True)
class SearchProvider:
    """Searches one kind of record for the global search. ``search(access, query, limit)`` reads through
    ``access`` and must not match on a field the user sees masked or hidden."""

    kind: str
    label: str
    search: Callable[[Access, str, int], Awaitable[Sequence[SearchHit]]]
    order: int = 100


Aggregate = Literal["count", "sum", "avg", "min", "max", "return"]


@dataclass(frozen=True)
class Dimension:
    """A column a dataset may be grouped or filtered by (``column`` is a column name of the dataset's table)."""

    name: str
    label: str
    column: str


@dataclass(frozen=True)
class Measure:
    """A figure a dataset computes: ``aggregate`` over ``column`` (``count`` needs no column), or over the days
    from one date column to another of each row (``span``: ``("created_at", "closed_at")``, a deal's cycle), or
    (``aggregate="return"``) the return on a cost: ``(SUM(column) − MAX(cost)) / MAX(cost)``, where every row of
    a group carries the group's one cost (a campaign's cost on each order attributed to it: its ROI)."""

    name: str
    label: str
    aggregate: Aggregate
    column: str | None = None
    span: tuple[str, str] | None = None
    cost: str | None = None


@dataclass(frozen=True)
class Dataset:
    """What reporting may compute over ``model`` (stored in ``table``): read through the access layer, so a
    figure only counts rows the user may read, and a dimension on a hidden field is refused."""

    key: str
    label: str
    model: str
    table: type[Table]
    dimensions: tuple[Dimension, ...]
    measures: tuple[Measure, ...]
    #: the page listing the dataset's rows, for a click from a figure to its rows: it takes each dimension's
    #: value as a query parameter of the dimension's name (``?stage=3``) and a date dimension's period as
    #: ``<name>_from`` / ``<name>_to`` (ISO dates, inclusive); "" when there is none
    drill: str = ""


@dataclass(frozen=True)
class PortalCustomer:
    """The customer signed in to the portal: a person of the CRM, never a staff user."""

    person_id: int
    email: str


@dataclass(frozen=True)
class PortalSection:
    """What a customer sees of one addon's records on the portal (their tickets, quotes, invoices…)."""

    key: str
    title: str
    template: str
    context: Mapping[str, Any] = field(default_factory=dict)
    order: int = 100


@dataclass(frozen=True)
class PortalDocument:
    """One record of a portal section opened by the customer it belongs to: a page (``template`` rendered inside
    the portal with ``ctx`` = ``context``) or, for a download, a file (``content`` with ``filename``)."""

    title: str
    template: str = ""
    context: Mapping[str, Any] = field(default_factory=dict)
    content: bytes | None = None
    filename: str = ""
    content_type: str = "application/pdf"


@dataclass(frozen=True)
class DemoLogin:
    """A sign-in of the demo that is not a back-office user (a customer portal account…): ``crm demo`` prints it."""

    label: str
    url: str
    login: str
    password: str


@dataclass(frozen=True)
class Notification:
    """Something a user should know: the in-app list always gets it, channels (e-mail, chat…) may too."""

    user_id: int
    title: str
    body: str = ""
    url: str | None = None
    kind: str = "info"
    source: str = ""


@dataclass(frozen=True)
class NotificationChannel:
    """A way to deliver notifications outside the app; ``deliver`` raises to report a failed delivery."""

    key: str
    label: str
    deliver: Callable[[Notification], Awaitable[None]]


@dataclass(frozen=True)
class StatusCheck:
    """One line of the system status: is something configured and alive? ``hint`` says what to do when not;
    ``pages`` are path prefixes whose actions need it (a banner shows there while it fails)."""

    key: str
    label: str
    ok: bool
    detail: str = ""
    hint: str = ""
    url: str = ""
    pages: tuple[str, ...] = ()


@dataclass(frozen=True)
class IdleSource:
    """Where "no activity for N days" looks for ``AutomationModel``: the record is idle since its own ``since``
    column, or since the latest of ``times`` of the rows of ``table`` whose ``link`` column names it."""

    since: str
    table: type[Table] | None = None
    link: str = ""
    times: tuple[str, ...] = ()


@dataclass(frozen=True)
class AutomationModel:
    """A model automation rules may watch and change (``core.automation``). ``fields`` are the columns
    conditions may read (custom fields join on their own), ``writable`` those "set a field" may write;
    ``relations`` maps a reference column to the model it points at (conditions read one hop:
    ``person.province``); ``tags`` names a JSON list column for add/remove tag, ``owner`` the column "assign an
    owner" writes; ``url`` a record's page (``{id}`` replaced); ``idle`` enables "no activity for N days";
    ``events`` names what the addon reports with :func:`core.automation.record_event` beyond create/update/delete;
    ``choices`` lists the values a text field takes (forms offer them). ``label`` is English, marked with
    ``core.i18n.N_`` (shown translated)."""

    model: str
    label: str
    table: type[Table]
    fields: tuple[str, ...]
    writable: tuple[str, ...] = ()
    relations: Mapping[str, str] = field(default_factory=dict)
    tags: str = ""
    owner: str = "owner"
    url: str = ""
    idle: IdleSource | None = None
    events: Mapping[str, str] = field(default_factory=dict)
    choices: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class AutomationContext:
    """What an action runs with: the rule, the run, the record (its values when the rule fired) and the action's
    checked ``params``. ``key`` is unique per (rule, triggering event, action): an action with effects outside
    the database passes it on (an ``Idempotency-Key``, a ``Message-ID``) so a retried run does nothing twice."""

    rule_id: int
    rule_name: str
    run_id: int
    key: str
    model: str
    record_id: int
    record: Mapping[str, Any]
    params: Mapping[str, Any]
    url: str = ""


@dataclass(frozen=True)
class AutomationAction:
    """An action kind rules may use. ``check(model, params)`` returns the params to store or raises
    ``ValidationError`` naming the param; ``run(ctx)`` does it and returns a short line for the run log.
    ``models`` limits it to some models (empty: any); an ``is_external`` action leaves the database (mail,
    HTTP): it runs outside the run's transaction, at least once, with ``ctx.key`` as its idempotency key.
    ``run_many(ctxs)``, when given, does the same for many records at once (a time-based rule reaching
    thousands) and returns a line per context; the kernel falls back to ``run`` one by one if it raises."""

    kind: str
    label: str
    run: Callable[[AutomationContext], Awaitable[str]]
    check: Callable[[AutomationModel, Mapping[str, Any]], Awaitable[Mapping[str, Any]]] | None = None
    models: tuple[str, ...] = ()
    is_external: bool = False
    help: str = ""
    run_many: Callable[[Sequence[AutomationContext]], Awaitable[Sequence[str]]] | None = None


@dataclass(frozen=True)
class OwnedRecords:
    """A kind of record users own (``crm_owned_records``): the rows of ``table`` whose ``column`` (a foreign key
    to the users) names one. When that user leaves, the rows also matching ``open_only`` (a Piccolo condition, e.g.
    ``Activity.done_at.is_null()``; every row when None) pass to other users. ``label`` names the kind in the
    plural ("Leads")."""

    model: str
    label: str
    table: type[Table]
    open_only: Combinable | None = None
    column: str = "owner"
    order: int = 100


@dataclass(frozen=True)
class ApprovableAction:
    """An action an administrator may put behind an approval (:mod:`core.approvals`): ``key`` names it
    (``crm_sales.quote_send``), ``model`` the records it acts on. ``fields`` maps each value the action passes to
    :func:`core.approvals.require` to its kind in :mod:`core.conditions` (``decimal``, ``money``, ``text``,
    ``choice``, ``number``, ``boolean``, ``date``, ``datetime``, ``reference``): what rule conditions may read.
    ``owner`` names the value holding the record's owner (a step "the owner's team leader" reads it, and
    ``team`` when the values carry one); ``title`` the value naming the record for people (``number``); ``url``
    the record's page (``{id}`` replaced). With ``perform(access, record_id)``, the held action runs by itself
    as the requester once approved (and returns a line for the requester); without, the requester is told
    and does it again. ``label`` is English, marked with ``core.i18n.N_`` (shown translated)."""

    key: str
    label: str
    model: str
    fields: Mapping[str, str]
    labels: Mapping[str, str] = field(default_factory=dict)
    choices: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    owner: str = "owner"
    title: str = ""
    url: str = ""
    perform: Callable[[Access, int], Awaitable[str]] | None = None


# ---------------------------------------------------------------------------------------------------------------
# Specs: what the kernel calls (each documented in docs/hooks.md)
# ---------------------------------------------------------------------------------------------------------------


@hookspec
def crm_menu_items(access: Access) -> Sequence[Menu]:
    """Navigation entries that depend on the user or the data, beyond the manifest's static ``menus``.

    Called on every page render: stay cheap. Entries are shown as returned (check rights yourself)."""


@hookspec
def crm_record_panels(access: Access, model: str, record_id: int) -> Sequence[Panel]:
    """Blocks to show on the page of record ``record_id`` of ``model`` (e.g. deals on a person's 360° page).

    Called after the page's owner checked that the user may read the record. Read your rows through
    ``access``; return nothing when the user may not read your model."""


@hookspec
def crm_record_actions(access: Access, model: str, record_id: int) -> Sequence[RecordAction]:
    """Buttons to offer on the page of record ``record_id`` of ``model`` (e.g. "Create ticket" on a person).

    Return an action only when the user may perform it; the target endpoint checks again."""


@hookspec
def crm_timeline_entries(access: Access, model: str, record_id: int) -> Sequence[TimelineEntry]:
    """Dated entries for the timeline of a record, read through ``access``."""


@hookspec
def crm_dashboard_widgets(access: Access) -> Sequence[Widget]:
    """Cards for the user's home dashboard; return nothing the user's roles have no use for."""


@hookspec
def crm_search_providers() -> Sequence[SearchProvider]:
    """Global-search providers; :func:`core.search.search` calls each with the user's ``Access``."""


@hookspec
def crm_datasets() -> Sequence[Dataset]:
    """Datasets reporting may build figures from (:func:`core.datasets.aggregate` reads them)."""


@hookspec
def crm_portal_sections(customer: PortalCustomer) -> Sequence[PortalSection]:
    """What ``customer`` may see of this addon's records on the customer portal: only rows linked to
    ``customer.person_id``, and only fields meant for customers."""


@hookspec
def crm_portal_document(customer: PortalCustomer, section: str, record_id: int, view: str) -> PortalDocument | None:
    """Record ``record_id`` of this addon's portal ``section`` (a :class:`PortalSection` key) for ``customer``:
    ``view`` ``""`` is its page, another name a download (``"pdf"``). ``None`` when the section is not this
    addon's, the record is not linked to ``customer.person_id`` or the view is unknown: the portal answers 404."""


@hookspec
def crm_portal_action(customer: PortalCustomer, section: str, record_id: int, action: str,
                      form: Mapping[str, str]) -> bool | None:
    """Do ``action`` (``"accept"``…) on the customer's own record (the portal checked the session and CSRF);
    ``True`` when done, ``None`` when it is not this addon's or not the customer's (404). Refuse bad input with
    ``ValidationError``/``Conflict``; audit what was done."""


@hookspec
def crm_notification_channels() -> Sequence[NotificationChannel]:
    """Delivery channels besides the in-app list (:func:`core.notifications.notify` calls each)."""


@hookspec
def crm_merge_records(model: str, survivor_id: int, loser_ids: list[int]) -> None:
    """Re-point this addon's references from ``loser_ids`` to ``survivor_id`` after a merge of ``model``.

    Runs inside the merge's transaction: raise to abort the whole merge."""


@hookspec
def crm_cli_commands() -> Sequence[click.Command]:
    """``click`` commands or groups to add to the ``crm`` command line."""


@hookspec
def crm_demo_logins() -> Sequence[DemoLogin]:
    """Sign-ins the demo data created besides the demo users (``crm demo`` prints them after the users)."""


@hookspec
def crm_api_resources() -> Sequence[Resource]:
    """REST resources (:class:`core.api.Resource`) this addon serves under ``/api``; collected once at boot."""


@hookspec
def crm_status_checks(probe: bool) -> Sequence[StatusCheck]:
    """Lines for the system status (``/admin/status``, ``crm doctor``). With ``probe`` false (every page render,
    for banners) answer from configuration only; with ``probe`` true you may contact the service, briefly."""


@hookspec
def crm_automation_models() -> Sequence[AutomationModel]:
    """Models automation rules may watch and change, with the fields they read and write
    (:mod:`core.automation`). Report your own write paths' changes with
    :func:`core.automation.record_changed`, inside the transaction that made them."""


@hookspec
def crm_automation_actions() -> Sequence[AutomationAction]:
    """Action kinds rules may use beyond the kernel's (set a field, assign, tags, notify, e-mail, webhook)."""


@hookspec
def crm_owned_records() -> Sequence[OwnedRecords]:
    """The kinds of records a user owns that pass to other users when they leave (:mod:`core.security.handover`:
    deactivating a user offers to transfer them to one user or spread them over a team). Leave out what stays
    with who did it (a done activity, a note's author)."""


@hookspec
def crm_approvable_actions() -> Sequence[ApprovableAction]:
    """Actions administrators may put behind an approval (:mod:`core.approvals`): the addon calls
    ``await core.approvals.require(access, key, model, record_id, values)`` before doing one, outside its
    transaction. The kernel adds "delete a record" (``core.delete``) for every API resource itself."""


#: The kernel's specs, in the order docs/hooks.md lists them.
SPECS: tuple[str, ...] = tuple(name for name, fn in list(globals().items())
                               if name.startswith("crm_") and callable(fn))


# ---------------------------------------------------------------------------------------------------------------
# The registry and the one collector
# ---------------------------------------------------------------------------------------------------------------


def manager() -> pluggy.PluginManager:
    """A plugin manager holding the kernel's specs (addons add their event specs and implementations)."""
    import sys

    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(sys.modules[__name__])
    return pm


def add_specs(pm: pluggy.PluginManager, module_path: str, addon: str) -> None:
    """Declare the events of ``addon`` (its manifest's ``hookspecs`` module)."""
    pm.add_hookspecs(loader.load_module(module_path, addon, "hookspecs"))


def add_impls(pm: pluggy.PluginManager, module_path: str, addon: str, field_name: str = "hooks") -> None:
    """Register the implementations in ``module_path`` (a manifest's ``hooks`` or ``extras`` entry)."""
    module = loader.load_module(module_path, addon, field_name)
    if not pm.is_registered(module):
        pm.register(module, name=module_path)


def check(pm: pluggy.PluginManager) -> None:
    """Reject implementations of hooks nobody declared (a typo would otherwise never run)."""
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise AddonError(getattr(exc, "plugin_name", "?").split(".")[0], str(exc)) from exc


def _caller(pm: pluggy.PluginManager, hook: str) -> Any:
    caller = getattr(pm.hook, hook, None)
    if caller is None:
        raise AddonError("core", f"unknown hook {hook!r}")
    return caller


async def collect(pm: pluggy.PluginManager, hook: str, **kwargs: Any) -> list[Any]:
    """Call ``hook`` on every implementation, await async ones, flatten sequences, drop ``None``.

    pluggy calls the most recently registered implementation first; reversed, that is dependency order."""
    out: list[Any] = []
    for result in reversed(_caller(pm, hook)(**kwargs)):
        if inspect.isawaitable(result):
            result = await result
        if result is None:
            continue
        if isinstance(result, (list, tuple)):
            out.extend(result)
        else:
            out.append(result)
    return out


async def call(hook: str, **kwargs: Any) -> list[Any]:
    """:func:`collect` on the running CRM's plugin manager."""
    from core.runtime import current

    return await collect(current().plugins, hook, **kwargs)


async def publish(event: str, **payload: Any) -> list[Any]:
    """Deliver ``event`` to every installed listener, inside the caller's transaction.

    Listeners stay cheap and hand slow or must-not-be-lost work to their own actor with
    :func:`core.jobs.enqueue` (an outbox row in that same transaction). Only ids and frozen values belong in
    ``payload``. Returns what the listeners returned (tests use it). Webhook subscriptions naming ``event``
    get it too (:mod:`core.webhooks`), with the payload as its data."""
    from core.webhooks import events as webhooks

    found = await call(event, **payload)
    await webhooks.published(event, payload)
    return found
