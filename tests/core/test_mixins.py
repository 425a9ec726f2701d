"""core.mixins: a table built from the kernel's mixins gets the record-rule, archive, version and timestamp
columns exactly as the addons' migrations created them, each table its own copy, and the access layer's
record rules and archive restriction work on it."""

from __future__ import annotations

from piccolo.columns import Boolean, ForeignKey, Integer, OnDelete, Timestamptz, Varchar
from piccolo.table import Table

from core.mixins import BusinessRecord, Created, Owned, Timestamped, Versioned
from core.security.access import Access
from core.security.models import Team, User
from core.security.principal import Principal


class Ticket(BusinessRecord, Timestamped, Table, tablename="test_mixins_ticket"):
    title = Varchar(length=100)


class Remark(Owned, Created, Versioned, Table, tablename="test_mixins_remark"):
    body = Varchar(length=100)


def _names(table: type[Table]) -> list[str]:
    return [c._meta.name for c in table._meta.columns]


def test_inherited_columns_come_first_from_the_last_base() -> None:
    # Piccolo walks the MRO backwards; the order shows in create_table and select(), never in a migration
    assert _names(Ticket) == ["id", "created_at", "updated_at", "owner", "team", "is_archived", "version", "title"]
    assert _names(Remark) == ["id", "version", "created_at", "owner", "body"]


def test_definitions_are_the_ones_the_migrations_created() -> None:
    for column, target in ((Ticket.owner, User), (Ticket.team, Team)):
        assert isinstance(column, ForeignKey) and column._meta.null
        assert column._foreign_key_meta.on_delete == OnDelete.set_null
        assert column._foreign_key_meta.resolved_references is target
    assert isinstance(Ticket.is_archived, Boolean) and Ticket.is_archived._meta.params["default"] is False
    assert isinstance(Ticket.version, Integer) and Ticket.version._meta.params["default"] == 1
    for stamp in (Ticket.created_at, Ticket.updated_at):
        assert isinstance(stamp, Timestamptz) and not stamp._meta.null and not stamp._meta.index


def test_every_table_gets_its_own_copy() -> None:
    # a column shared between tables would render the other table's name in SQL
    assert Ticket.owner is not Remark.owner and Ticket.owner is not Owned.owner
    assert Ticket.owner._meta.table is Ticket and Remark.owner._meta.table is Remark
    assert Ticket.owner._meta.get_full_name(with_alias=False) == '"test_mixins_ticket"."owner"'
    assert Remark.version._meta.get_full_name(with_alias=False) == '"test_mixins_remark"."version"'
    assert Ticket.owner in Ticket._meta.foreign_key_columns and Ticket.team in Ticket._meta.foreign_key_columns


async def test_record_rules_and_archiving_work_on_a_mixin_table(crm_db_url: str) -> None:
    await Ticket.create_table(if_not_exists=True)
    ann, bob, cid = [(await User.insert(User(login=n, name=n)).returning(User.id))[0]["id"]
                     for n in ("ann", "bob", "cid")]
    sales = (await Team.insert(Team(name="sales")).returning(Team.id))[0]["id"]
    rows = [("ann's", ann, None, False), ("bob's", bob, None, False), ("team's", None, sales, False),
            ("ann's old", ann, None, True), ("cid's", cid, None, False)]
    for title, owner, team, archived in rows:
        await Ticket.insert(Ticket(title=title, owner=owner, team=team, is_archived=archived))
    fresh = await Ticket.select().where(Ticket.title == "ann's").first()
    assert fresh["version"] == 1 and fresh["created_at"] is not None and fresh["is_archived"] is False

    ann_in_sales = Principal(user_id=ann, login="ann", name="Ann", language="en", roles=frozenset({"x"}),
                             team_ids=frozenset({sales}), teammate_ids=frozenset({ann, bob}))

    async def titles(scope: str, include_archived: bool = False) -> set[str]:
        clause = Access(ann_in_sales).where(Ticket, scope, include_archived)
        query = Ticket.select(Ticket.title)
        return {r["title"] for r in await (query.where(clause) if clause is not None else query)}

    assert await titles("own") == {"ann's"}
    assert await titles("own", include_archived=True) == {"ann's", "ann's old"}
    assert await titles("team") == {"ann's", "bob's", "team's"}
    assert await titles("all") == {"ann's", "bob's", "team's", "cid's"}

    # SET NULL: a deleted user's records stay, ownerless
    await User.delete().where(User.id == bob)
    assert (await Ticket.select(Ticket.owner).where(Ticket.title == "bob's").first())["owner"] is None
    assert await titles("team") == {"ann's", "team's"}
