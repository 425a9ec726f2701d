"""Column mixins: what every business table repeats, declared once by the kernel.

The access layer (``core.security.access``) finds record rules, archiving and optimistic concurrency by
column *name*: ``owner``/``team`` for the own / team / subordinates rules, ``is_archived`` for the global
restriction, ``version`` for the API's 409 on a stale write. A table that spells one of them slightly
differently (another ``on_delete``, ``null=False``) silently changes what a rule means, so the addons take
them from here instead of copying them::

    class Deal(BusinessRecord, Table, tablename="crm_sales_deal"):
        name = Varchar(length=200)

Piccolo supports this directly: ``Table.__init_subclass__`` walks the whole MRO and gives each table its own
copy of every ``Column`` it inherits, so one mixin column is never shared between two tables. Mixins are
plain classes listed *before* ``Table``. Inherited columns come first in ``_meta.columns`` (right after
``id``), those of the last base first, since Piccolo walks the MRO backwards; that order is only the column
order of ``create_table`` and of ``select()`` without columns, never part of a migration.

The definitions below are exactly those the addons' migrations already created: change one and every addon
using it needs a migration (``AddonContract.test_models_match_migrations`` fails until it has one).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from piccolo.columns import Boolean, ForeignKey, Integer, LazyTableReference, OnDelete, Timestamptz
from piccolo.columns.defaults.timestamptz import TimestamptzNow

if TYPE_CHECKING:
    from core.security.models import Team, User

__all__ = ["Archivable", "BusinessRecord", "Created", "Owned", "TeamOwned", "Timestamped", "Versioned",
           "team_ref", "user_ref"]


def user_ref() -> LazyTableReference:
    """A foreign-key target for the kernel's users, for ``ForeignKey(user_ref(), …)`` in any addon.

    Lazy, so an addon's models import without importing the security kernel's tables first.
    """
    return LazyTableReference("User", module_path="core.security.models")


def team_ref() -> LazyTableReference:
    """A foreign-key target for the kernel's teams (see ``user_ref``)."""
    return LazyTableReference("Team", module_path="core.security.models")


class Owned:
    """``owner``: the user a record belongs to, what the *own* and *subordinates* record rules test.

    Nullable and ``SET NULL``: deleting a user must not delete the customers and deals they owned; an
    ownerless record stays visible to the *all* rule (and to the *team* rule when it has a team).
    """

    owner: ForeignKey[User] = ForeignKey(user_ref(), null=True, on_delete=OnDelete.set_null)


class TeamOwned(Owned):
    """``owner`` and ``team``: the *team* record rule matches either a teammate's record or the team's."""

    team: ForeignKey[Team] = ForeignKey(team_ref(), null=True, on_delete=OnDelete.set_null)


class Archivable:
    """``is_archived``: archived (and merged-away) records are hidden by the access layer unless asked for.

    Archiving instead of deleting keeps what points at a record (orders, audit entries, external ids) valid.
    """

    is_archived = Boolean(default=False)


class Versioned:
    """``version``: the optimistic-concurrency counter. Every write adds 1 and an update that names a stale
    version is refused with 409, so two people editing one record cannot silently overwrite each other."""

    version = Integer(default=1)


class Created:
    """``created_at``: when the row was inserted (UTC; Piccolo fills it in on insert)."""

    created_at = Timestamptz(default=TimestamptzNow())


class Timestamped(Created):
    """``created_at`` and ``updated_at``. The writer sets ``updated_at`` (no Piccolo ``auto_update``): each
    addon decides which writes count as an update, e.g. a merge does, a bulk re-index may not."""

    updated_at = Timestamptz(default=TimestamptzNow())


class BusinessRecord(Versioned, Archivable, TeamOwned):
    """Everything a record users own and edit carries: ``owner``, ``team``, ``is_archived``, ``version``.

    (Bases in reverse: Piccolo orders inherited columns from the far end of the MRO, so this reads
    ``owner, team, is_archived, version`` in ``_meta.columns``, as the addons declared them.)"""
