"""The kernel's hooks: extension points every addon may implement (see docs/hooks.md).

Calls are keyword-only so a spec can grow. An implementation may be ``async def``; the kernel awaits it.
Collector hooks return a list (or a single item) that the kernel flattens in dependency order.
"""

from __future__ import annotations

from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("crm")
hookimpl = pluggy.HookimplMarker("crm")


@hookspec
def crm_menu_items(user: Any) -> Any:
    """Return extra navigation entries (``core.addon.Menu``) for ``user`` beyond the static ``menus``."""


@hookspec
def crm_record_panels(model: str, record_id: int, user: Any) -> Any:
    """Return panels (``core.extensions.Panel``) to show on the page of record ``record_id`` of ``model``.

    This is how an addon adds a tab or a block to another addon's page, e.g. deals on the contact's
    360° page, without the owner of the page knowing it.
    """


@hookspec
def crm_timeline_entries(model: str, record_id: int, user: Any) -> Any:
    """Return dated entries (``core.extensions.TimelineEntry``) for the timeline of a record."""


@hookspec
def crm_dashboard_widgets(user: Any) -> Any:
    """Return widgets (``core.extensions.Widget``) for ``user``'s dashboard."""


@hookspec
def crm_search_providers() -> Any:
    """Return global-search providers (``core.extensions.SearchProvider``)."""


@hookspec
def crm_merge_records(model: str, survivor_id: int, loser_ids: list[int]) -> Any:
    """Re-point this addon's references from ``loser_ids`` to ``survivor_id`` after a merge of ``model``.

    Runs inside the merge's transaction: raise to abort the whole merge.
    """


@hookspec
def crm_cli_commands() -> Any:
    """Return ``click`` commands or groups to add to the ``crm`` command line."""


@hookspec
def crm_api_resources() -> Any:
    """Return REST resources (``core.api.Resource``) this addon exposes under ``/api``."""
