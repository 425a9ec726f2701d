"""Fuzzy duplicate detection for contacts: blocking, scoring, grouping.

Pipeline: each ``MatchRecord`` is prepared once (folded, lowercased, Chinese variants mapped to simplified),
then put in *blocks* by several cheap keys (same email, phone or id number; phonetic surname + postcode;
phonetic name pair; name + birth date; Chinese name; …). Only records sharing a block are compared, so the
work grows with block sizes, not with n². A compared pair gets Fellegi–Sunter style evidence: each field
adds bits when it agrees and removes bits when it clearly disagrees (fuzzy similarities interpolate), a
missing field adds nothing. The total plus a prior is turned into a 0..1 score (a match probability under
the model); pairs at or above ``threshold`` are duplicates. ``scan`` joins duplicate pairs into groups
with union-find, strongest links first.

Weights were set by hand from field reliabilities and checked on the FEBRL 1 and 2 data sets; FEBRL 3/4
are the held-out figures printed by ``bench/dedup_febrl.py``.
"""

from __future__ import annotations

import functools
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from rapidfuzz.distance import JaroWinkler, Levenshtein
from rapidfuzz.fuzz import ratio, token_set_ratio, token_sort_ratio

from crm_contacts.standardize import fold_width

__all__ = [
    "Candidate",
    "DuplicateGroup",
    "FieldWeight",
    "MatchConfig",
    "MatchIndex",
    "MatchRecord",
    "PairScan",
    "ScoredPair",
    "blocking_keys",
    "candidates_for",
    "compare",
    "find_pairs",
    "group_pairs",
    "scan",
]

RecordId = Hashable
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class MatchRecord:
    """What matching needs of a contact. Phones should be E.164 and emails normalized already."""

    id: RecordId
    given_name: str = ""
    surname: str = ""
    full_name: str = ""  # used when given/surname are not split (common for Chinese names)
    org_name: str = ""
    emails: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    street: str = ""
    street2: str = ""
    city: str = ""
    region: str = ""
    postcode: str = ""
    birth_date: str = ""  # ISO "1990-04-09" or "19900409"
    national_id: str = ""  # ID card / social security number


@dataclass(frozen=True, slots=True)
class FieldWeight:
    """Evidence of one field, in bits: ``agree`` at similarity ≥ ``hi``, ``disagree`` at ≤ ``lo``."""

    agree: float
    disagree: float
    hi: float = 0.95
    lo: float = 0.75

    def bits(self, similarity: float) -> float:
        if similarity >= self.hi:
            return self.agree
        if similarity <= self.lo:
            return self.disagree
        t = (similarity - self.lo) / (self.hi - self.lo)
        return self.disagree + t * (self.agree - self.disagree)


@dataclass(frozen=True, slots=True)
class MatchConfig:
    """Weights, prior and threshold. The defaults are the tuned ones; tests and benches may vary them."""

    given_name: FieldWeight = FieldWeight(4.0, -4.0, hi=0.94, lo=0.70)
    surname: FieldWeight = FieldWeight(6.0, -3.5, hi=0.94, lo=0.70)
    full_name: FieldWeight = FieldWeight(9.0, -5.0, hi=0.92, lo=0.60)
    cjk_name: FieldWeight = FieldWeight(9.0, -6.0, hi=0.99, lo=0.40)
    org_name: FieldWeight = FieldWeight(3.0, -1.0, hi=0.90, lo=0.60)
    street: FieldWeight = FieldWeight(4.0, -2.0, hi=0.90, lo=0.60)
    street2: FieldWeight = FieldWeight(1.5, -0.5, hi=0.90, lo=0.60)
    city: FieldWeight = FieldWeight(2.0, -1.0, hi=0.92, lo=0.70)
    postcode: FieldWeight = FieldWeight(3.0, -2.0, hi=0.99, lo=0.70)
    region: FieldWeight = FieldWeight(0.5, -1.0, hi=0.99, lo=0.50)
    birth_date: FieldWeight = FieldWeight(8.0, -6.0, hi=0.99, lo=0.80)
    national_id: FieldWeight = FieldWeight(12.0, -5.0, hi=0.99, lo=0.80)
    email: FieldWeight = FieldWeight(12.0, -1.0, hi=0.99, lo=0.50)
    phone: FieldWeight = FieldWeight(10.0, -1.0, hi=0.99, lo=0.50)
    prior_bits: float = -14.0  # log2 prior odds that two blocked records are the same person
    threshold: float = 0.5
    max_block: int = 400  # blocks larger than this carry no signal (e.g. a shared info@ address); skipped


DEFAULT_CONFIG = MatchConfig()


class Candidate(NamedTuple):
    """One possible duplicate of a record: who, how likely, and which fields agreed."""

    other_id: RecordId
    score: float
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ScoredPair:
    left: RecordId
    right: RecordId
    score: float
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DuplicateGroup:
    """Records believed to be one person; ``score`` is the weakest link that joined the group."""

    ids: tuple[RecordId, ...]
    score: float


@dataclass(slots=True)
class PairScan:
    pairs: list[ScoredPair]
    comparisons: int
    skipped_blocks: int = 0


# --- preparation -----------------------------------------------------------------------------------------

# Traditional → simplified for the characters most common in Chinese names (top surnames and given-name
# characters), so 張偉 and 张伟 compare equal. A full converter (OpenCC) is not worth a dependency here.
_TO_SIMPLIFIED = str.maketrans(
    "張陳劉黃趙吳孫馬羅鄭謝許韓馮鄧蕭葉蘇呂盧鍾譚陸賈韋鄒閆龍賀顧龔萬錢嚴湯楊歐聶蔣範餘鄺嶽閻溫莊偉華麗軍紅"
    "強蘭鳳國東興傑濤輝靜穎鵬飛剛慶寶貴長義愛來雲嬌潔瑩夢書紹進聰龐賢勝樂廣發榮寧鳴誠瑋詩語軒權連陽彥蓮雙"
    "禮學維曉歡銘錦鋒鐵順寬門開關蘆麥簡鄔戰滿繼鑒綠嵐倫紀顏齊廳",
    "张陈刘黄赵吴孙马罗郑谢许韩冯邓萧叶苏吕卢钟谭陆贾韦邹闫龙贺顾龚万钱严汤杨欧聂蒋范余邝岳阎温庄伟华丽军红"
    "强兰凤国东兴杰涛辉静颖鹏飞刚庆宝贵长义爱来云娇洁莹梦书绍进聪庞贤胜乐广发荣宁鸣诚玮诗语轩权连阳彦莲双"
    "礼学维晓欢铭锦锋铁顺宽门开关芦麦简邬战满继鉴绿岚伦纪颜齐厅",
)


def _is_cjk(char: str) -> bool:
    return "\u3400" <= char <= "\u9fff" or "\uf900" <= char <= "\ufaff" or "\u3040" <= char <= "\u30ff"


def _fold(text: str) -> str:
    """Lowercase, width-folded, accent-free, single-spaced; Chinese mapped to simplified characters."""
    text = unicodedata.normalize("NFD", fold_width(text or "").lower())
    text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(unicodedata.normalize("NFC", text).translate(_TO_SIMPLIFIED).split())


def _alnum(text: str) -> str:
    return "".join(c for c in text if c.isalnum())


_SOUNDEX = {c: str(d) for d, group in enumerate(("bfpv", "cgjkqsxz", "dt", "l", "mn", "r"), 1) for c in group}


def _soundex(word: str) -> str:
    """American Soundex of the first Latin word (blocking only needs a typo-tolerant coarse key)."""
    letters = [c for c in word if "a" <= c <= "z"]
    if not letters:
        return ""
    out, last = letters[0], _SOUNDEX.get(letters[0], "")
    for c in letters[1:]:
        code = _SOUNDEX.get(c, "")
        if code and code != last:
            out += code
        if c not in "hw":  # h/w do not separate equal codes; vowels do
            last = code
    return (out + "000")[:4]


@dataclass(frozen=True, slots=True)
class _Prepared:
    record: MatchRecord
    given: str
    surname: str
    full: str  # whole name, tokens in a stable order for token_sort comparison
    cjk: str  # Chinese/Japanese name without spaces or dots, "" for Latin names
    org: str
    emails: frozenset[str]
    phones: frozenset[str]
    street: str
    street2: str
    city: str
    region: str
    postcode: str
    birth: str  # 8 digits or ""
    national_id: str
    keys: frozenset[str] = field(default=frozenset())


def _prepare(record: MatchRecord) -> _Prepared:
    given, surname, full = _fold(record.given_name), _fold(record.surname), _fold(record.full_name)
    if not full:
        full = f"{given} {surname}".strip()
    cjk = ""
    if any(_is_cjk(c) for c in full):
        # Chinese names have no spaces and the order varies in input ("张 三", "张·三"): compare characters.
        cjk = _alnum(f"{surname}{given}" if surname or given else full)
    birth = _alnum(record.birth_date)
    prepared = _Prepared(
        record=record,
        given=given,
        surname=surname,
        full=full,
        cjk=cjk,
        org=_fold(record.org_name),
        emails=frozenset(e.strip().lower() for e in record.emails if e.strip()),
        phones=frozenset(p.strip() for p in record.phones if p.strip()),
        street=_fold(record.street),
        street2=_fold(record.street2),
        city=_fold(record.city),
        region=_fold(record.region),
        postcode=_alnum(_fold(record.postcode)),
        birth=birth if len(birth) == 8 and birth.isdigit() else "",
        national_id=_alnum(_fold(record.national_id)),
    )
    object.__setattr__(prepared, "keys", frozenset(_keys(prepared)))
    return prepared


def _keys(p: _Prepared) -> Iterable[str]:
    yield from ("e:" + e for e in p.emails)
    yield from ("p:" + t for t in p.phones)
    if p.national_id:
        yield "i:" + p.national_id
    if p.cjk:
        yield "c:" + p.cjk
        head = p.cjk[0]  # the surname character (compound surnames still share the first one)
        yield from (f"c{tag}:{head}:{v}" for tag, v in (("p", p.postcode), ("b", p.birth), ("t", p.city)) if v)
    else:
        s, g = _soundex(p.surname), _soundex(p.given)
        if not (s or g):
            tokens = sorted(_soundex(t) for t in p.full.split())
            s, g = (tokens[0], tokens[-1]) if tokens else ("", "")
        if s and g:
            yield "n:" + ":".join(sorted((s, g)))  # order-free: survives swapped given/surname
        for tag, code in (("s", s), ("g", g)):
            if code and p.postcode:
                yield f"{tag}p:{code}:{p.postcode}"
            if code and p.birth:
                yield f"{tag}b:{code}:{p.birth}"
    if p.birth and p.postcode:
        yield f"bp:{p.birth}:{p.postcode}"
    city = _soundex(p.city.replace(" ", ""))
    if p.birth and city:
        yield f"bc:{p.birth}:{city}"
    number, _, rest = p.street.partition(" ")
    if number.isdigit() and _soundex(rest):
        yield f"a:{number}:{_soundex(rest)}"  # same house: family members too, the scorer tells them apart
    if p.org:
        yield "o:" + "".join(sorted(p.org.split())[:3])


def blocking_keys(record: MatchRecord) -> frozenset[str]:
    """The blocking keys of a record; records that share none are never compared."""
    return _prepare(record).keys


# --- comparison ------------------------------------------------------------------------------------------


def _jw(a: str, b: str) -> float:
    return JaroWinkler.normalized_similarity(a, b)


@functools.lru_cache(maxsize=8)
def _swapped_weight(cfg: MatchConfig) -> FieldWeight:
    g, s = cfg.given_name, cfg.surname
    return FieldWeight((g.agree + s.agree) / 2, (g.disagree + s.disagree) / 2, (g.hi + s.hi) / 2, (g.lo + s.lo) / 2)


def _text_similarity(a: str, b: str) -> float:
    """Word-order-free similarity for Latin text; for Chinese, spacing is arbitrary, so compare characters."""
    if any(_is_cjk(c) for c in a + b):
        return ratio(a.replace(" ", ""), b.replace(" ", "")) / 100.0
    return token_sort_ratio(a, b) / 100.0


def _digits_similarity(a: str, b: str) -> float:
    """1.0 equal; 0.9 one typo or one adjacent transposition; 0.0 otherwise (dates, ids, postcodes)."""
    if a == b:
        return 1.0
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        if len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]:
            return 0.9
    return 0.9 if Levenshtein.distance(a, b, score_cutoff=1) <= 1 else 0.0


def _birth_similarity(a: str, b: str) -> float:
    if a == b:
        return 1.0
    if a[:4] == b[:4] and a[4:6] == b[6:8] and a[6:8] == b[4:6]:
        return 0.9  # day and month swapped (US vs. rest of the world)
    return _digits_similarity(a, b)


def _name_bits(a: _Prepared, b: _Prepared, cfg: MatchConfig) -> tuple[float, float]:
    """Name evidence in bits and the similarity to report (0..1)."""
    if a.cjk and b.cjk:
        sim = Levenshtein.normalized_similarity(a.cjk, b.cjk)
        return cfg.cjk_name.bits(sim), sim
    if a.cjk or b.cjk:
        return 0.0, 0.0  # 张伟 vs Zhang Wei: no transliteration here, so no evidence either way
    if a.surname and b.surname and a.given and b.given:
        straight = (_jw(a.given, b.given), _jw(a.surname, b.surname))
        swapped = (_jw(a.given, b.surname), _jw(a.surname, b.given))
        # Swapped fields (a form filled the wrong way round) count with averaged weights, which keeps the
        # score symmetric, and a small penalty so a straight agreement always wins.
        both = _swapped_weight(cfg)
        bits = max(
            cfg.given_name.bits(straight[0]) + cfg.surname.bits(straight[1]),
            both.bits(swapped[0]) + both.bits(swapped[1]) - 1.0,
        )
        return bits, max(min(straight), min(swapped))
    bits = 0.0
    sims = []
    if a.surname and b.surname:
        sims.append(_jw(a.surname, b.surname))
        bits += cfg.surname.bits(sims[-1])
    if a.given and b.given:
        sims.append(_jw(a.given, b.given))
        bits += cfg.given_name.bits(sims[-1])
    if sims:
        return bits, min(sims)
    if a.full and b.full:
        sim = token_sort_ratio(a.full, b.full) / 100.0
        return cfg.full_name.bits(sim), sim
    return 0.0, 0.0


def compare(
    a: MatchRecord | _Prepared, b: MatchRecord | _Prepared, config: MatchConfig = DEFAULT_CONFIG
) -> tuple[float, tuple[str, ...]]:
    """Score two records: (match probability 0..1, names of the fields that agreed)."""
    pa = a if isinstance(a, _Prepared) else _prepare(a)
    pb = b if isinstance(b, _Prepared) else _prepare(b)
    cfg = config
    total = cfg.prior_bits
    reasons: list[str] = []

    def add(name: str, weight: FieldWeight, sim: float) -> None:
        nonlocal total
        total += weight.bits(sim)
        if sim >= weight.hi:
            reasons.append(name)
        elif weight.bits(sim) > 0:
            reasons.append(name + "~")  # "~": similar, not equal

    if pa.emails and pb.emails:
        add("email", cfg.email, 1.0 if pa.emails & pb.emails else 0.0)
    if pa.phones and pb.phones:
        add("phone", cfg.phone, 1.0 if pa.phones & pb.phones else 0.0)
    if pa.national_id and pb.national_id:
        add("national_id", cfg.national_id, _digits_similarity(pa.national_id, pb.national_id))
    name_bits, name_sim = _name_bits(pa, pb, cfg)
    total += name_bits
    if name_bits > 0:
        reasons.append("name" if name_sim >= 0.99 else "name~")
    if pa.birth and pb.birth:
        add("birth_date", cfg.birth_date, _birth_similarity(pa.birth, pb.birth))
    if pa.org and pb.org:
        add("org_name", cfg.org_name, token_set_ratio(pa.org, pb.org) / 100.0)
    if pa.street and pb.street:
        add("street", cfg.street, _text_similarity(pa.street, pb.street))
    if pa.street2 and pb.street2:
        add("street2", cfg.street2, _text_similarity(pa.street2, pb.street2))
    if pa.city and pb.city:
        add("city", cfg.city, _jw(pa.city, pb.city))
    if pa.postcode and pb.postcode:
        add("postcode", cfg.postcode, _digits_similarity(pa.postcode, pb.postcode))
    if pa.region and pb.region:
        add("region", cfg.region, 1.0 if pa.region == pb.region else 0.0)
    score = 1.0 / (1.0 + 2.0 ** max(-60.0, min(60.0, -total)))
    return score, tuple(reasons)


# --- index, scan, groups ---------------------------------------------------------------------------------


class MatchIndex:
    """Blocked index of records for on-create/update duplicate warnings. Not thread-safe."""

    def __init__(self, records: Iterable[MatchRecord] = (), config: MatchConfig = DEFAULT_CONFIG) -> None:
        self.config = config
        self._records: dict[RecordId, _Prepared] = {}
        self._blocks: defaultdict[str, set[RecordId]] = defaultdict(set)
        for record in records:
            self.add(record)

    def __len__(self) -> int:
        return len(self._records)

    def add(self, record: MatchRecord) -> None:
        """Add or replace a record (replacing re-blocks it under its new keys)."""
        self.remove(record.id)
        prepared = _prepare(record)
        self._records[record.id] = prepared
        for key in prepared.keys:
            self._blocks[key].add(record.id)

    def remove(self, record_id: RecordId) -> None:
        old = self._records.pop(record_id, None)
        for key in old.keys if old else ():
            self._blocks[key].discard(record_id)
            if not self._blocks[key]:
                del self._blocks[key]  # keep memory proportional to live records

    def candidates(self, record: MatchRecord, threshold: float | None = None) -> list[Candidate]:
        """Records in the index that are probably ``record`` (excluding itself), best first."""
        prepared = _prepare(record)
        limit = self.config.threshold if threshold is None else threshold
        others: set[RecordId] = set()
        for key in prepared.keys:
            block = self._blocks.get(key, ())
            if len(block) <= self.config.max_block:
                others.update(block)
        others.discard(record.id)
        found = []
        for other in others:
            score, reasons = compare(prepared, self._records[other], self.config)
            if score >= limit:
                found.append(Candidate(other, score, reasons))
        return sorted(found, key=lambda c: -c.score)


def candidates_for(record: MatchRecord, index: MatchIndex, threshold: float | None = None) -> list[Candidate]:
    """Possible duplicates of ``record`` in ``index`` as (other_id, score, reasons), best first."""
    return index.candidates(record, threshold)


def find_pairs(
    records: Sequence[MatchRecord], progress: Progress | None = None, config: MatchConfig = DEFAULT_CONFIG
) -> PairScan:
    """Score every blocked pair once; return pairs at or above the threshold and how many were compared."""
    prepared = [_prepare(r) for r in records]
    progress_every = max(1, len(prepared) // 100)
    blocks: defaultdict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(prepared):
        for key in p.keys:
            blocks[key].append(i)
    skipped = {k for k, members in blocks.items() if len(members) > config.max_block}
    result = PairScan([], 0, len(skipped))
    for i, p in enumerate(prepared):
        others: set[int] = set()
        for key in p.keys:
            if key not in skipped:
                others.update(j for j in blocks[key] if j > i)  # each pair once, from its lower index
        result.comparisons += len(others)
        for j in others:
            score, reasons = compare(p, prepared[j], config)
            if score >= config.threshold:
                result.pairs.append(ScoredPair(p.record.id, prepared[j].record.id, score, reasons))
        if progress and (i + 1) % progress_every == 0:
            progress(i + 1, len(prepared))
    if progress and prepared:
        progress(len(prepared), len(prepared))
    return result


def group_pairs(pairs: Iterable[ScoredPair]) -> list[DuplicateGroup]:
    """Join pairs into groups (union-find, strongest pair first); groups sorted by score, best first."""
    parent: dict[RecordId, RecordId] = {}
    weakest: dict[RecordId, float] = {}

    def find(x: RecordId) -> RecordId:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]  # path halving keeps trees flat
            x = parent[x]
        return x

    for pair in sorted(pairs, key=lambda p: -p.score):
        ra, rb = find(pair.left), find(pair.right)
        if ra != rb:
            parent[rb] = ra
            # Kruskal order: the joining edge is the weakest so far in the merged group.
            weakest[ra] = min(weakest.get(ra, 1.0), weakest.pop(rb, 1.0), pair.score)
    members: defaultdict[RecordId, list[RecordId]] = defaultdict(list)
    for x in parent:
        members[find(x)].append(x)
    groups = [DuplicateGroup(tuple(ids), weakest[root]) for root, ids in members.items()]
    return sorted(groups, key=lambda g: (-g.score, -len(g.ids)))


def scan(
    records: Sequence[MatchRecord], progress: Progress | None = None, config: MatchConfig = DEFAULT_CONFIG
) -> list[DuplicateGroup]:
    """Find groups of duplicates among ``records``; ``progress(done, total)`` is called as it goes."""
    return group_pairs(find_pairs(records, progress, config).pairs)
