"""List search: a substring of name, company, e-mail or phone, on both backends. On PostgreSQL one or two
Chinese characters go to the indexed ``search_grams`` column instead of ``search_text``: same rows expected."""

from __future__ import annotations

from typing import Any

NAMES = ["王芳", "王芳芳", "李娜", "欧阳娜娜", "Wang Fang", "芳 王", "星河科技 陈杰"]
TERMS = ["王", "芳", "王芳", "芳王", "娜娜", "欧阳", "阳娜", "河科", "wang", "芳 王", "技 陈", "李娜x"]


async def _found(acc: Any, term: str) -> list[str]:
    from crm_contacts import listing
    from crm_contacts.api import PERSON_MODEL
    from crm_contacts.models import Person

    rows, _ = await listing.fetch(acc, PERSON_MODEL, listing.parse({"q": term}), [Person.name])
    return sorted(r["name"] for r in rows)


async def test_short_chinese_terms_find_what_a_substring_search_finds(booted: Any) -> None:
    from crm_contacts import listing
    from crm_contacts.api import PERSON_MODEL
    from crm_contacts.cleaning import clean_person
    from crm_contacts.models import Person

    from core.db import is_postgres

    acc = await booted("boss", "admin")
    for name in NAMES:
        clean = await clean_person({"name": name})
        await Person.insert(Person(_data={Person._meta.get_column_by_name(k): v for k, v in clean.items()}))
    for term in TERMS:
        assert await _found(acc, term) == sorted(n for n in NAMES if term.lower() in n.lower()), term
    clause = str(await listing.where(Person, PERSON_MODEL, listing.parse({"q": "王芳"})))
    assert ("search_grams" in clause) == is_postgres()  # the indexed path, where there is one

    # the grams follow search_text when a record changes (the database derives them)
    renamed = await clean_person({"name": "赵敏"})
    await Person.update({Person.name: renamed["name"], Person.search_text: renamed["search_text"]}).where(
        Person.name == "李娜")
    assert await _found(acc, "李娜") == [] and await _found(acc, "赵敏") == ["赵敏"]


async def test_a_role_that_sees_phones_masked_cannot_search_fragments_of_them(booted: Any) -> None:
    """The probe rebuilt a masked phone in 14 searches of digit patterns: fragments now find nothing, the
    whole number (which the searcher already has) still finds the customer, and every search is audited."""
    from crm_contacts.api import PERSON_MODEL
    from crm_contacts.cleaning import clean_person
    from crm_contacts.models import Person

    from core.security.models import AuditLog

    admin = await booted("boss", "admin")
    clean = await clean_person({"name": "Zhou Min", "phone": "138 0013 8000", "email": "Min.Zhou@Example.com"})
    await Person.insert(Person(_data={Person._meta.get_column_by_name(k): v for k, v in clean.items()}))
    marketing = await booted("mia", "marketing")
    assert marketing.is_masked(PERSON_MODEL, "phone")
    for fragment in ("138", "0013", "13800", "8000", "min.zhou", "example.com"):
        assert await _found(marketing, fragment) == [], fragment
        assert await _found(admin, fragment) == ["Zhou Min"], fragment
    assert await _found(marketing, "+86 138-0013-8000") == ["Zhou Min"]
    assert await _found(marketing, "min.zhou@example.com") == ["Zhou Min"]
    assert await _found(marketing, "zhou") == ["Zhou Min"]
    searches = await AuditLog.select(AuditLog.detail).where(
        (AuditLog.action == "search") & (AuditLog.user_login == "mia")).order_by(AuditLog.id)
    assert [r["detail"] for r in searches][:2] == ["138", "0013"]
