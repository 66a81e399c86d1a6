"""A weak prior for the datasets the Hub's users use: among results that already fit, the used one first.

Several datasets often fit a task about equally (GLUE's MRPC, PAWS and adv_glue for paraphrase
pairs), and on the Hub most near-ties are a benchmark and its re-uploads. The Hub's own search
sorts by downloads; here downloads only reorder the top `top` results, by reciprocal-rank fusion of
the relevance order with the download order (`weight` of it), so a popular dataset that does not
fit is never pulled up from below, and a catalog without counts keeps its order.

Chosen on fold A of the SNI definitions (benchmarks/tasks/NOTES.md; weights 0.25 and 0.5 tied
there, the smaller kept): MRR@10 fold A 0.561 -> 0.576, fold B 0.867 unchanged, retrieval dev 0.910
unchanged.
"""

from __future__ import annotations

from typing import Callable, Sequence, TypeVar

T = TypeVar("T")

TOP = 10
WEIGHT = 0.25
RRF_K = 5.0


def prefer_used(results: Sequence[T], downloads: Callable[[T], int | None], *, top: int = TOP, weight: float = WEIGHT,
                k: float = RRF_K) -> list[T]:
    """`results` (best first) with the first `top` reordered by relevance rank fused with download rank."""
    head, tail = list(results[:top]), list(results[top:])
    counts = [downloads(r) for r in head]
    if weight <= 0 or len(head) < 2 or all(c is None for c in counts):
        return head + tail
    by_use = sorted(range(len(head)), key=lambda i: -(counts[i] or 0))  # stable: equal counts keep relevance order
    use_rank = {i: r for r, i in enumerate(by_use, 1)}
    score = {i: 1.0 / (k + i + 1) + weight / (k + use_rank[i]) for i in range(len(head))}
    return [head[i] for i in sorted(score, key=lambda i: -score[i])] + tail


def hit_downloads(hit) -> int | None:
    """A search hit's dataset downloads (the key `prefer_used` reads for retrieval hits)."""
    return hit.entry.downloads
