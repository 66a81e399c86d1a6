"""Retrieval quality on the dev set with the default (tuned) weights, per query, with ablations.

    python benchmarks/retrieval/quality.py         # writes quality_results.json next to this file

No LLM rerank. A query counts at the first rank whose dataset answers to a relevant name.
"""

from __future__ import annotations

import json
from dataclasses import replace

import common

from retrieval_index import DEFAULT_WEIGHTS, evaluate

RANKERS = ("lexical", "dense", "task", "labels", "tags")


def main() -> None:
    index = common.index()
    dev = common.dev_set()
    vectors = {q.query: index.encoder.encode_query(q.query) for q in dev}

    def run(w):
        return evaluate(lambda q: [h.entry for h in index.search(q, k=10, weights=w, query_vector=vectors[q])], dev)

    main_scores = run(DEFAULT_WEIGHTS)
    per_query = []
    for q, r in zip(dev, main_scores.ranks):
        hits = index.search(q.query, k=3, query_vector=vectors[q.query])
        per_query.append({"query": q.query, "rank": r, "top3": [f"{h.dataset_id} [{h.config}]" for h in hits],
                          "why_top1": list(hits[0].why) if hits else []})
    ablations = {}
    off = {name: 0.0 for name in RANKERS}
    for name in RANKERS:
        ablations[f"only {name}"] = run(replace(DEFAULT_WEIGHTS, **{**off, name: 1.0}, language=0.0, repeat=1.0)).as_dict()
        ablations[f"without {name}"] = run(replace(DEFAULT_WEIGHTS, **{name: 0.0})).as_dict()
    ablations["without language prior"] = run(replace(DEFAULT_WEIGHTS, language=0.0)).as_dict()
    ablations["without repeat demotion"] = run(replace(DEFAULT_WEIGHTS, repeat=1.0)).as_dict()
    ablations["plain RRF (equal weights, k=60)"] = run(replace(
        DEFAULT_WEIGHTS, **{name: 1.0 for name in RANKERS}, language=0.0, repeat=1.0, k=60.0)).as_dict()
    result = {"weights": DEFAULT_WEIGHTS.as_dict(), "scores": main_scores.as_dict(), "per_query": per_query,
              "ablations": ablations}
    (common.OUT / "quality_results.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({"scores": result["scores"], "ranks": main_scores.ranks, "ablations": ablations}, indent=1))


if __name__ == "__main__":
    main()
