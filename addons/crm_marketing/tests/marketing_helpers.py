"""A small world for crm_marketing tests: people (some tagged, one without e-mail) and users per role."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from crm_contacts.models import Person, PersonTag, Tag

from core.security.access import Access, policy
from core.security.principal import load
from core.testing import make_user

PEOPLE = [
    # name, email, province, city, stage, language, tags
    ("王芳", "wang.fang@example.cn", "广东", "深圳", "customer", "zh_CN", ("vip",)),
    ("李雷", "li.lei@example.cn", "广东", "广州", "lead", "zh_CN", ()),
    ("Anna Smith", "anna@example.com", "上海", "上海", "customer", "en", ("vip", "newsletter")),
    ("张伟", "zhang.wei@example.cn", "北京", "北京", "loyal", "zh_CN", ("newsletter",)),
    ("赵敏", "", "广东", "深圳", "customer", "zh_CN", ("vip",)),  # no e-mail: never a recipient
]


@dataclass
class World:
    runtime: Any
    people: dict[str, int] = field(default_factory=dict)
    users: dict[str, int] = field(default_factory=dict)

    async def acc(self, login: str) -> Access:
        return Access(await load(self.users[login], implied=policy().implied))


async def add_person(
    name: str,
    email: str = "",
    province: str = "",
    city: str = "",
    stage: str = "lead",
    language: str = "",
    tags: tuple[str, ...] = (),
) -> int:
    row = Person(
        name=name, email=email, email_key=email.lower(), province=province, city=city, stage=stage, language=language
    )
    await row.save()
    for tag in tags:
        found = await Tag.select(Tag.id).where(Tag.name == tag).first()
        tag_id = found["id"] if found else (await Tag.insert(Tag(name=tag)))[0]["id"]
        await PersonTag.insert(PersonTag(person=row.id, tag=tag_id))
    return int(row.id)


async def build_world(runtime: Any) -> World:
    world = World(runtime)
    for name, email, province, city, stage, language, tags in PEOPLE:
        world.people[name] = await add_person(name, email, province, city, stage, language, tags)
    world.users["mk"] = await make_user("mk", "marketing")
    world.users["boss"] = await make_user("boss", "sales_manager")
    world.users["rep"] = await make_user("rep", "sales_rep")
    world.users["admin"] = await make_user("admin", "admin")
    return world


class Sink:
    """An aiosmtpd handler keeping every message; addresses in ``refuse`` are refused at RCPT (550)."""

    def __init__(self) -> None:
        import email
        import email.policy
        from email.message import Message

        self._parse = lambda data: email.message_from_bytes(data, policy=email.policy.default)
        self.messages: list[Message] = []
        self.refuse: set[str] = set()

    async def handle_RCPT(
        self,
        server: Any,
        session: Any,
        envelope: Any,
        address: str,  # noqa: N802 (aiosmtpd)
        rcpt_options: Any,
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd API)
        self.messages.append(self._parse(envelope.content))
        return "250 OK"

    def to(self, address: str) -> list[Any]:
        return [m for m in self.messages if m["To"] == address]


async def segment_of(condition: Any, name: str = "segment") -> int:
    from crm_marketing import segments
    from crm_marketing.models import Segment

    rows = await Segment.insert(Segment(name=name, condition=condition))
    segment_id = int(rows[0]["id"])
    await segments.build(segment_id)
    return segment_id


BODY_ZH = '<p>{{ contact.name }}，您好！</p><p><a href="https://shop.example.cn/sale">查看优惠</a></p>'
BODY_EN = '<p>Hello {{ contact.first_name }} of {{ contact.company }},</p><a href="https://shop.example.com/">Shop</a>'


async def campaign_for(world: Any, port: int, condition: Any) -> int:
    world.runtime.settings = world.runtime.settings.with_(
        smtp_host="127.0.0.1", smtp_port=port, smtp_from="news@example.com"
    )
    from crm_marketing import campaigns

    mk = await world.acc("mk")
    segment = await segment_of(condition)
    return await campaigns.save(
        mk,
        {
            "name": "双十二",
            "segment": segment,
            "subject_zh": "{{ contact.name }} 的优惠",
            "body_zh": BODY_ZH,
            "subject_en": "Offer for {{ contact.name }}",
            "body_en": BODY_EN,
            "cost": "500",
        },
    )


async def run_send_jobs() -> None:
    from core import jobs, outbox
    from core.models import Outbox

    for job in await Outbox.select(Outbox.id).where(
        (Outbox.actor == "crm_marketing.send_batch") & (Outbox.state == "pending")
    ):
        await outbox.run_job(jobs.spec("crm_marketing.send_batch"), job["id"])
