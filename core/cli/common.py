"""Shared plumbing for CLI commands: settings, booting, one readable line per error."""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import click

from core.errors import CrmError
from core.settings import Settings

T = TypeVar("T")


def settings() -> Settings:
    return Settings.from_env()


def run(coro: Awaitable[T]) -> T:
    return asyncio.run(coro)  # type: ignore[arg-type]


def fail(message: str, code: int = 1) -> NoReturn:
    click.secho(f"error: {message}", fg="red", err=True)
    sys.exit(code)


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn kernel errors into one line on stderr and a non-zero exit; never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except CrmError as exc:
            fail(exc.message)
        except (OSError, ConnectionError) as exc:
            fail(f"{type(exc).__name__}: {exc}")

    return wrapper


async def connect(cfg: Settings) -> None:
    """Configure and check the database only (no addon imports)."""
    from core import db

    engine = db.configure(cfg.database_url)
    await db.check(engine, cfg.database_url)
