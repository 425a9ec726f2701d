"""Load an addon's CSV data files into its tables, keyed by external ids (``addon.key``).

A file ``data/<tablename>.csv`` has an ``id`` column (the key) and one column per table column; a header
``<column>/ref`` holds an external id (``addon.key``, or ``key`` of the same addon) resolved to a row id.
Loading twice updates the same rows instead of creating new ones.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import json
from importlib import resources
from typing import Any

from piccolo.columns import (
    JSON,
    BigInt,
    Boolean,
    Date,
    Decimal,
    ForeignKey,
    Integer,
    Numeric,
    Timestamp,
    Timestamptz,
)
from piccolo.columns.base import Column
from piccolo.table import Table

from core.errors import AddonError
from core.models import ExternalId


def _convert(column: Column, raw: str) -> Any:
    if raw == "" and column._meta.null:
        return None
    if isinstance(column, Boolean):
        return raw.strip().lower() in ("1", "true", "yes", "y")
    if isinstance(column, (Integer, BigInt, ForeignKey)):
        return int(raw)
    if isinstance(column, (Decimal, Numeric)):
        return decimal.Decimal(raw)
    if isinstance(column, Date):
        return dt.date.fromisoformat(raw)
    if isinstance(column, (Timestamp, Timestamptz)):
        return dt.datetime.fromisoformat(raw)
    if isinstance(column, JSON):
        return json.loads(raw) if raw else {}
    return raw


async def resolve(xid: str, default_addon: str) -> tuple[str, int]:
    addon, _, key = xid.rpartition(".")
    addon = addon or default_addon
    row = await ExternalId.select(ExternalId.table_name, ExternalId.record_id).where(
        (ExternalId.addon == addon) & (ExternalId.key == key)).first()
    if row is None:
        raise AddonError(default_addon, f"data refers to unknown external id {addon}.{key}")
    return row["table_name"], int(row["record_id"])


async def load_file(addon: str, relpath: str, tables: dict[str, type[Table]]) -> int:
    """Load one CSV file; return how many rows were written."""
    try:
        text = resources.files(addon).joinpath(relpath).read_text(encoding="utf-8-sig")
    except (FileNotFoundError, ModuleNotFoundError) as exc:
        raise AddonError(addon, f"data file {relpath!r} not found") from exc
    tablename = relpath.rsplit("/", 1)[-1].removesuffix(".csv")
    table = tables.get(tablename)
    if table is None:
        raise AddonError(addon, f"data file {relpath!r}: no table named {tablename!r}")
    count = 0
    for lineno, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        key = (row.pop("id", "") or "").strip()
        if not key:
            raise AddonError(addon, f"{relpath}:{lineno}: the id column is empty")
        values: dict[Column | str, Any] = {}
        for header, raw in row.items():
            name, _, kind = header.partition("/")
            column = table._meta.get_column_by_name(name)
            if kind == "ref":
                values[column] = (await resolve(raw, addon))[1] if raw else None
            else:
                try:
                    values[column] = _convert(column, raw)
                except (ValueError, decimal.InvalidOperation) as exc:
                    raise AddonError(addon, f"{relpath}:{lineno}: column {name}: {exc}") from exc
        await upsert(addon, key, table, values)
        count += 1
    return count


async def upsert(addon: str, key: str, table: type[Table], values: dict[Column | str, Any]) -> int:
    existing = await ExternalId.select(ExternalId.record_id).where(
        (ExternalId.addon == addon) & (ExternalId.key == key)).first()
    if existing is not None:
        record_id = int(existing["record_id"])
        if values:
            await table.update(values).where(table._meta.primary_key == record_id)
        return record_id
    row = table(_data=values)  # type: ignore[arg-type]
    await row.save()
    record_id = int(getattr(row, table._meta.primary_key._meta.name))
    await ExternalId.insert(ExternalId(addon=addon, key=key, table_name=table._meta.tablename,
                                       record_id=record_id))
    return record_id


async def forget(addon: str) -> int:
    """Drop the external ids an addon owns (its rows go with its tables on purge)."""
    count = await ExternalId.count().where(ExternalId.addon == addon)
    await ExternalId.delete().where(ExternalId.addon == addon)
    return int(count)


async def bind(addon: str, key: str, table: type[Table], record_id: int) -> None:
    """Give an existing row the external id ``addon.key`` (e.g. demo users other data can point at)."""
    exists = await ExternalId.exists().where((ExternalId.addon == addon) & (ExternalId.key == key))
    if not exists:
        await ExternalId.insert(ExternalId(addon=addon, key=key, table_name=table._meta.tablename,
                                           record_id=record_id))
