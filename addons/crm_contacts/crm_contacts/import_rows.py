"""The pure step of an import's plan: a file row → its standardized values (or its final result).

Standardizing phones, e-mails, regions and names is what an import spends its CPU on, and it needs no
database: the lifecycle stages are known up front and the organization is only named here (its record is
looked up by the importing process, for a whole chunk at once). So the same function runs inline for a small
file and in worker processes (``pool``) for a large one; both give the same values, so the same results.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import sys
from collections.abc import Coroutine, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from core.errors import ValidationError
from core.i18n import N_
from crm_contacts import cleaning


@dataclass(frozen=True)
class Spec:
    """What standardizing a row depends on (sent once per chunk to a worker)."""

    header: list[str]
    mapping: dict[str, str]
    mode: str
    stages: frozenset[str]


@dataclass
class Standardized:
    row_no: int
    final: tuple[str, str] | None = None  # (action, message) when the row ends here
    raw: dict[str, str] = field(default_factory=dict)
    clean: dict[str, Any] | None = None  # None: even without its bad values the row cannot be standardized
    tags: list[str] = field(default_factory=list)
    note: str = ""
    company: str = ""  # standardized name
    record_id: int | None = None
    custom_text: dict[str, str] = field(default_factory=dict)
    bad: dict[str, str] = field(default_factory=dict)  # field → reason, in the order found


def mapped(header: list[str], row: list[str], mapping: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for i, column in enumerate(header):
        target = mapping.get(column)
        if target and i < len(row) and row[i].strip():
            out[target] = row[i]
    return out


def _done(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a cleaning coroutine that needs no I/O (stages and organization name given) to its end."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()
    raise RuntimeError("standardizing an import row waited on I/O")


@functools.lru_cache(maxsize=65536)
def _org_name(company: str) -> tuple[str, str]:
    """(standardized organization name, "") or ("", the reason it is bad)."""
    from crm_contacts.cleaning import clean_organization

    try:
        return str(_done(clean_organization({"name": company}))["name"]), ""
    except ValidationError as exc:
        return "", "; ".join(exc.fields.values())


def standardize_row(spec: Spec, row_no: int, raw_row: list[str]) -> Standardized:
    """Every bad value of the row is found (the row is cleaned again without each field found bad), so the
    report names them all."""
    raw = mapped(spec.header, raw_row, spec.mapping)
    if not raw:
        return Standardized(row_no, ("skipped", N_("empty row")))
    custom_text = {k: raw.pop(k) for k in [k for k in raw if k.startswith("custom.")]}
    tags = [t.strip() for t in raw.pop("tags", "").replace("，", ",").split(",") if t.strip()]
    note, company, given_id = raw.pop("note", ""), raw.pop("company", ""), raw.pop("id", "")
    bad: dict[str, str] = {}
    record_id = None
    if given_id:
        try:
            record_id = int(given_id)
        except ValueError:
            bad["id"] = N_("must be a whole number")
    if company:
        company, reason = _org_name(company)
        if reason:
            bad["company"] = reason
    clean = None
    for _ in range(len(raw) + 1):
        try:
            clean = _done(cleaning.clean_person(raw, before={} if spec.mode == "update" else None, stages=spec.stages,
                                                org_name=company))
            break
        except ValidationError as exc:
            found = [k for k in exc.fields if k in raw]
            bad.update(exc.fields)
            if not found:
                break
            for k in found:
                raw.pop(k)
    return Standardized(row_no, None, raw, clean, tags, note, company, record_id, custom_text, bad)


def standardize_chunk(spec: Spec, items: list[tuple[int, list[str]]]) -> list[Standardized]:
    """A worker's task: one chunk of rows."""
    return [standardize_row(spec, row_no, raw_row) for row_no, raw_row in items]


def _init_worker(region: str) -> None:
    from crm_contacts import cleaning

    cleaning.WORKER_REGION = region


def pool(workers: int) -> ProcessPoolExecutor:
    """Worker processes that read phones in this process's default region.

    Forked on Linux: they start in milliseconds, with the modules loaded, and run nothing but the pool's loop
    over the pure functions above (never the inherited event loop or database connections, which they leave
    alone; they end with ``os._exit``). Elsewhere spawned, which re-imports the main module in each worker."""
    from crm_contacts.cleaning import default_region

    method = "fork" if sys.platform == "linux" else "spawn"
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context(method),
        initializer=_init_worker,
        initargs=(default_region(),),
    )


def default_workers() -> int:
    """One worker per core (the importing process mostly waits on the database meanwhile), at least two."""
    return max(2, min(8, os.cpu_count() or 2))
