"""Tune the fusion weights on the dev set, and estimate how well tuned weights generalise.

    python benchmarks/retrieval/tune.py            # writes tune_results.json next to this file

Each ranker's list is computed once per query; fusion is then replayed for every weight setting in
a grid (the same code path as `search`). Besides the best setting on all 20 queries, it reports:
- leave-one-out: for each query, the weights are chosen on the other 19 and the query is scored
  with them (averaged over every setting tied for best on the 19, so tie-breaking doesn't flatter);
- 5-fold: the same with 4 held-out queries per fold.
"""

from __future__ import annotations

import itertools
import json
import sys
import time
from dataclasses import replace

import common
import numpy as np

from retrieval_index import DEFAULT_WEIGHTS
from retrieval_index.evaluate import first_relevant_rank
from retrieval_index.languages import query_languages

GRID = {
    "dense": [0.25, 0.5, 0.75, 1.0],
    "task": [0.5, 0.75, 1.0, 1.5],
    "labels": [0.0, 0.5, 1.0, 2.0],
    "tags": [0.0, 0.25, 0.5],
    "language": [0.0, 0.04, 0.08, 0.16],
    "k": [5.0, 10.0, 20.0, 60.0],
    "repeat": [0.5, 0.7, 1.0],
}


def rr(rank):
    return 1.0 / rank if rank is not None and rank <= 10 else 0.0


def main() -> None:
    index = common.index()
    dev = common.dev_set()
    prepared = []
    for q in dev:
        r = index.rankings(q.query, depth=DEFAULT_WEIGHTS.depth, margin=DEFAULT_WEIGHTS.tag_margin)
        relevant = {g for g in range(len(index.group_start))
                    if first_relevant_rank([index.entries[index.doc_entry[index.group_start[g]]]], q.relevant)}
        prepared.append((r, query_languages(q.query), relevant))

    combos = [dict(zip(GRID, v)) for v in itertools.product(*GRID.values())]
    ranks = np.zeros((len(combos), len(dev)))  # reciprocal rank (0 = not in the top 10)
    hits5 = np.zeros((len(combos), len(dev)), dtype=bool)
    t = time.perf_counter()
    for c, combo in enumerate(combos):
        w = replace(DEFAULT_WEIGHTS, **combo)
        for i, (r, langs, relevant) in enumerate(prepared):
            groups, _ = index.rank(r, w, langs)
            top = [j + 1 for j, g in enumerate(groups[:10]) if int(g) in relevant]
            rank = top[0] if top else None
            ranks[c, i] = rr(rank)
            hits5[c, i] = rank is not None and rank <= 5
    print(f"{len(combos)} weight settings x {len(dev)} queries in {time.perf_counter() - t:.0f}s", file=sys.stderr)

    def best(train: np.ndarray) -> np.ndarray:
        """Indices of the settings tied for the best (MRR, hit@5) on the training queries."""
        key = ranks[:, train].mean(1) * 1000 + hits5[:, train].mean(1)
        return np.flatnonzero(np.isclose(key, key.max()))

    everything = np.arange(len(dev))
    top = best(everything)
    n = len(dev)
    loo_rr, loo_hit = [], []
    for i in range(n):
        chosen = best(np.delete(everything, i))
        loo_rr.append(ranks[chosen, i].mean())
        loo_hit.append(hits5[chosen, i].mean())
    folds = np.array_split(np.random.default_rng(0).permutation(n), 5)
    fold_rr, fold_hit = np.zeros(n), np.zeros(n)
    for held in folds:
        chosen = best(np.setdiff1d(everything, held))
        fold_rr[held] = ranks[np.ix_(chosen, held)].mean(0)
        fold_hit[held] = hits5[np.ix_(chosen, held)].mean(0)

    default = next(c for c, combo in enumerate(combos)
                   if all(getattr(DEFAULT_WEIGHTS, k) == v for k, v in combo.items()))
    result = {
        "grid": GRID,
        "settings": len(combos),
        "best_on_all": {"mrr@10": round(float(ranks[top[0]].mean()), 4), "hit@5": round(float(hits5[top[0]].mean()), 4),
                        "tied_settings": int(top.size), "example": combos[top[0]]},
        "default_weights": {**{k: getattr(DEFAULT_WEIGHTS, k) for k in GRID},
                            "mrr@10": round(float(ranks[default].mean()), 4), "hit@5": round(float(hits5[default].mean()), 4),
                            "is_tied_best": bool(default in set(top.tolist()))},
        "leave_one_out": {"mrr@10": round(float(np.mean(loo_rr)), 4), "hit@5": round(float(np.mean(loo_hit)), 4)},
        "five_fold": {"mrr@10": round(float(fold_rr.mean()), 4), "hit@5": round(float(fold_hit.mean()), 4)},
        "per_query_leave_one_out_rr": {q.query: round(float(x), 3) for q, x in zip(dev, loo_rr)},
    }
    (common.OUT / "tune_results.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k not in ("grid", "per_query_leave_one_out_rr")}, indent=2))


if __name__ == "__main__":
    main()
