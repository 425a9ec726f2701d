"""Frozen values that cross addon boundaries through extension points: no ORM rows, only data."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Panel:
    """A block on a record page: ``template`` is rendered with ``context`` (or ``html`` is used as is)."""

    key: str
    title: str
    template: str | None = None
    context: dict[str, Any] = field(default_factory=dict)
    order: int = 100
    count: int | None = None


@dataclass(frozen=True)
class TimelineEntry:
    at: dt.datetime
    kind: str
    title: str
    body: str = ""
    url: str | None = None
    source: str = ""


@dataclass(frozen=True)
class Widget:
    key: str
    title: str
    template: str
    context: dict[str, Any] = field(default_factory=dict)
    order: int = 100


@dataclass(frozen=True)
class SearchHit:
    title: str
    url: str
    kind: str
    subtitle: str = ""


@dataclass(frozen=True)
class SearchProvider:
    kind: str
    search: Callable[[str, Any, int], Awaitable[list[SearchHit]]]
