"""Points arithmetic: the tier follows the balance."""

from __future__ import annotations

from core import db
from core.errors import NotFound, ValidationError
from core.hooks import publish
from core.security import audit
from crm_loyalty.models import Account, Tier


async def award(account_id: int, points: int) -> int:
    """Add (or, negative, redeem) points; returns the new balance. Never below zero."""
    async with db.atomic():
        # two workers awarding points to one account at once must not lose an award
        row = await db.for_update(Account.select(Account.points).where(Account.id == account_id)).first()
        if row is None:
            raise NotFound(f"loyalty account {account_id} not found")
        balance = row["points"] + points
        if balance < 0:
            raise ValidationError({"points": f"only {row['points']} points to redeem"})
        tier = await Tier.select(Tier.id).where(Tier.min_points <= balance).order_by(
            Tier.min_points, ascending=False).first()
        await Account.update({Account.points: balance, Account.tier: tier["id"] if tier else None,
                              Account.version: Account.version + 1}).where(Account.id == account_id)
        await audit.record("update", model="crm_loyalty.account", record_id=account_id,
                           changes={"points": [row["points"], balance]})
        await publish("crm_loyalty_points_awarded", account_id=account_id, points=points, balance=balance)
    return balance
