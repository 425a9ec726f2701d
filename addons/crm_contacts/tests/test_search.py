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
