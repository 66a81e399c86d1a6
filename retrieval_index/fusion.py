"""Weighted reciprocal rank fusion.

BM25 scores, cosine similarities and label-match counts live on unrelated scales; their ranks don't.
Each ranker contributes `weight / (k + rank)` for the documents in its top `depth`, so a document
that several rankers place high wins, and no ranker's raw scale can swamp the others.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Weights:
    """Fusion parameters, tuned on the dev set (benchmarks/retrieval/tune.py)."""

    lexical: float = 1.0  # BM25 over the full document
    dense: float = 0.5  # MiniLM: description vs what the dataset is
    task: float = 1.0  # MiniLM: description vs the config as a task sentence
    labels: float = 1.0  # label words named in the description
    tags: float = 0.25  # task tags closest in meaning to the description
    tag_margin: float = 0.1  # tags this close to the best-matching tag count (tags.py)
    language: float = 0.08  # added in full when the dataset has the task's languages
    repeat: float = 0.7  # score factor for a dataset's second result (another kind of config), squared for a third
    k: float = 10.0  # RRF constant: small k trusts the top of each list
    depth: int = 200  # how deep each ranker's list is read

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def top(scores: np.ndarray, depth: int, *, positive: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Ids of the best `depth` documents and their 1-based ranks; tied scores share a rank.

    With `positive`, documents scoring 0 or less are not ranked (BM25 with no shared token). When a
    tie straddles the cut, the whole tied group is left out rather than an arbitrary part of it.
    """
    valid = np.flatnonzero(scores > 0) if positive else np.flatnonzero(np.isfinite(scores))
    if valid.size == 0:
        return valid, valid.astype(np.float32)
    s = scores[valid]
    if valid.size > depth:
        part = np.argpartition(-s, depth)
        cut = s[part[depth]]
        keep = part[:depth]
        if (s[keep] == cut).any():
            above = keep[s[keep] > cut]
            keep = above if above.size else keep
        valid, s = valid[keep], s[keep]
    order = np.argsort(-s, kind="stable")
    ids, s = valid[order], s[order]
    # competition ranking: 1 + number of strictly better documents
    ranks = np.searchsorted(-s, -s, side="left").astype(np.float32) + 1.0
    return ids, ranks


def demote_repeats(scores: np.ndarray, owner: np.ndarray, factor: float, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Order candidates by score, a dataset's n-th result counting `factor**(n-1)` of its score.

    Results are one per (dataset, kind of config); a dataset with many kinds (a benchmark suite)
    would otherwise fill the list with near-copies of one match. Returns positions and scores; with
    `limit`, only the first `limit` are exact (demotion only lowers scores, so the scan stops once
    `limit` results score at least as much as anything not yet seen).
    """
    order = np.argsort(-scores, kind="stable")
    if factor >= 1 or order.size == 0:
        return order, scores[order]
    seen: dict[int, int] = {}
    adjusted: list[float] = []
    best: list[float] = []  # min-heap of the `limit` best adjusted scores so far
    owners = owner[order].tolist()
    ordered = scores[order].tolist()
    for j, o in enumerate(owners):
        if limit is not None and len(best) >= limit and best[0] >= ordered[j]:
            break
        n = seen.get(o, 0)
        adjusted.append(ordered[j] * factor**n)
        seen[o] = n + 1
        if limit is not None:
            (heapq.heappush if len(best) < limit else heapq.heappushpop)(best, adjusted[-1])
    done = len(adjusted)
    again = np.argsort(-np.asarray(adjusted, dtype=np.float64), kind="stable")
    out = np.concatenate([order[:done][again], order[done:]])
    return out, np.concatenate([np.asarray(adjusted, dtype=np.float32)[again], scores[order[done:]]])


def rrf(ranked: list[tuple[np.ndarray, np.ndarray, float]], k: float) -> tuple[np.ndarray, np.ndarray]:
    """Fuse (ids, ranks, weight) lists; returns candidate ids and their fused scores (unsorted)."""
    if not ranked:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    ids = np.concatenate([r[0] for r in ranked])
    contrib = np.concatenate([w / (k + r) for _, r, w in ranked]).astype(np.float32)
    cand, inverse = np.unique(ids, return_inverse=True)
    fused = np.zeros(cand.size, dtype=np.float32)
    np.add.at(fused, inverse, contrib)
    return cand, fused
