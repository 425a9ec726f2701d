"""Events crm_loyalty emits (listeners implement them with ``@hookimpl(optionalhook=True)``)."""

from __future__ import annotations

from core.hooks import hookspec


@hookspec
def crm_loyalty_points_awarded(account_id: int, points: int, balance: int) -> None:
    """``points`` were added to (negative: redeemed from) account ``account_id``, leaving ``balance``.

    Published inside the awarding transaction: a listener that has slow work to do enqueues its own actor."""
