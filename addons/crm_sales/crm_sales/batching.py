"""Keyset batches for the scheduled jobs: they walk any number of deals with memory bounded by one batch.

A job that read every matching row at once held them all in the web process (the embedded shape runs jobs
there): at 5M deals the win-probability job reached 6.2 GB. Each job now reads ``BATCH`` rows at a time in
id order (``id > last id``: the primary-key index, the same cost on the first and the last page) and asks
SQL for the per-batch aggregates it needs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from piccolo.custom_types import Combinable

# A few thousand ids: one batch's IN list and rows stay a few MB; fewer round trips would save little.
BATCH = 2000


async def batches(table: Any, columns: Sequence[Any], where: Combinable, size: int | None = None
                  ) -> AsyncIterator[list[dict[str, Any]]]:
    """The rows of ``table`` matching ``where`` (with ``columns``, which must include its id), ``size`` at a
    time in id order. A row changed by the caller after its batch was read is not read again."""
    size = size or BATCH
    last = 0
    while True:
        rows = list(await table.select(*columns).where(where & (table.id > last)).order_by(table.id).limit(size))
        if not rows:
            return
        yield rows
        if len(rows) < size:
            return
        last = rows[-1]["id"]
