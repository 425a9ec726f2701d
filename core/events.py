"""Events: an addon declares them as hookspecs (``crm_sales_order_confirmed``) and publishes them here.

Listeners implement the hook with ``@hookimpl(optionalhook=True)`` so they load whether or not the emitter
is installed. A listener runs inside the publisher's transaction: it stays cheap and hands slow or
must-not-be-lost work to its own actor through :func:`core.jobs.enqueue` (an outbox row in that same
transaction).
"""

from __future__ import annotations

from typing import Any

from core import plugins
from core.runtime import current


async def publish(event: str, **payload: Any) -> list[Any]:
    """Deliver ``event`` to every installed listener; only ids and frozen values belong in ``payload``."""
    return await plugins.collect(current().plugins, event, **payload)
