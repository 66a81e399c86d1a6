"""Retrieval quality on a dev set: MRR@10 and hit@k, the numbers the targets are stated in.

A query is answered at rank r when the r-th ranked dataset answers to a relevant name (its id, short
id or an alias): the dev set names datasets by their 2022 card names, the catalog by repo ids.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

from datatune.core.types import DatasetEntry


@dataclass(frozen=True)
class DevQuery:
    query: str
    relevant: tuple[str, ...]


def load_dev_set(path: str | Path) -> list[DevQuery]:
    """One JSON object per line: {"query": ..., "relevant": [names]}."""
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            d = json.loads(line)
            out.append(DevQuery(d["query"], tuple(d["relevant"])))
    return out


def first_relevant_rank(ranked: Sequence[DatasetEntry], relevant: Iterable[str]) -> int | None:
    """1-based rank of the first entry answering to a relevant name; None when there is none."""
    rel = {r.lower() for r in relevant}
    for i, e in enumerate(ranked, 1):
        if any(n.lower() in rel for n in e.names):
            return i
    return None


@dataclass(frozen=True)
class Scores:
    mrr10: float
    hit1: float
    hit5: float
    hit10: float
    ranks: tuple[int | None, ...]

    def as_dict(self) -> dict:
        return {"mrr@10": round(self.mrr10, 4), "hit@1": round(self.hit1, 4), "hit@5": round(self.hit5, 4), "hit@10": round(self.hit10, 4)}


def score_ranks(ranks: Sequence[int | None]) -> Scores:
    n = max(len(ranks), 1)
    rr = sum(1.0 / r for r in ranks if r is not None and r <= 10) / n

    def hit(k: int) -> float:
        return sum(1 for r in ranks if r is not None and r <= k) / n

    return Scores(rr, hit(1), hit(5), hit(10), tuple(ranks))


def evaluate(search: Callable[[str], Sequence[DatasetEntry]], queries: Sequence[DevQuery]) -> Scores:
    """`search(query)` returns ranked entries (one per dataset); returns MRR@10 and hit@k."""
    return score_ranks([first_relevant_rank(search(q.query), q.relevant) for q in queries])
