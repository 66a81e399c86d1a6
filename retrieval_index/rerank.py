"""Optional LLM rerank by self-consistency voting (DataTune: 5 votes over the top candidates).

The model is asked the same question several times, with the candidates in a different order each
time (so position bias doesn't vote); each answer is one vote. A name the model invents, an empty
answer, or "none" is a vote for nothing, and when nothing wins, no candidate is chosen: better no
source than a wrong one. The LLM itself is behind `vote`, supplied by the caller.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Sequence

from datatune.core.errors import DatatuneError, OfflineError

log = logging.getLogger(__name__)

NONE = "none"
Vote = Callable[[str, Sequence["object"]], "str | None"]


@dataclass
class Reranked:
    hits: list  # voted hits first (most votes first), then the rest in fused order
    chosen: object | None  # the winning hit, or None when "none fits" got at least as many votes
    votes: Counter = field(default_factory=Counter)  # hit key or NONE -> votes


def _key(hit) -> str:
    return f"{hit.dataset_id}::{hit.config}"


def _resolve(answer: str | None, hits: Sequence) -> object | None:
    """The hit an answer names: `id`, short id, alias, or `id [config]` / `id::config` / `id/config`."""
    if not answer or not answer.strip():
        return None
    a = answer.strip().strip("`'\"").lower()
    if a in (NONE, "none fits", "none of them", "null"):
        return None
    for h in hits:  # exact (dataset, config) first, then any name of the dataset
        for n in h.entry.names:
            n = n.lower()
            c = h.config.lower()
            if a in (f"{n}::{c}", f"{n} [{c}]", f"{n}:{c}", f"{n}/{c}", f"{n} {c}"):
                return h
    for h in hits:
        if a in (n.lower() for n in h.entry.names):
            return h
    return None


def rerank(query: str, hits: Sequence, vote: Vote, *, votes: int = 5, top: int = 10, seed: int = 0) -> Reranked:
    """Ask `vote(query, candidates)` `votes` times over the first `top` hits and order them by votes."""
    pool = list(hits[:top])
    tally: Counter = Counter()
    rng = random.Random(seed)
    for _ in range(votes):
        order = pool[:]
        rng.shuffle(order)
        try:
            answer = vote(query, order)
        except OfflineError:
            raise  # a dead endpoint would abstain on every vote: say so instead
        except DatatuneError as e:  # a failed call is an abstention, not a reason to lose the search
            log.warning("rerank vote failed: %s", e)
            answer = None
        hit = _resolve(answer, pool)
        tally[_key(hit) if hit is not None else NONE] += 1
    rank = {_key(h): i for i, h in enumerate(pool)}
    voted = sorted((h for h in pool if tally[_key(h)]), key=lambda h: (-tally[_key(h)], rank[_key(h)]))
    rest = [h for h in pool if not tally[_key(h)]] + list(hits[top:])
    best = voted[0] if voted else None
    chosen = best if best is not None and tally[_key(best)] > tally[NONE] else None
    return Reranked(voted + rest, chosen, tally)
