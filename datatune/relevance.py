"""How near each kept source's rows are to the task, so allocation fills from the nearest first.

Retrieval ranks datasets by their cards, and the configs of one dataset share a card: MMLU's
subjects all score alike, and the per-source cap then filled MMLU's share from whichever subject
came first (abstract_algebra, alphabetically). Measured on the BIG-bench tasks (MiniLM, 48 rows
per config, mean of each row's best cosine to the two examples): for elementary_math_qa, AQuA-RAT
0.38, MMLU elementary_mathematics 0.34, abstract_algebra 0.09; for cause_and_effect, COPA 0.33
and every MMLU subject 0.09 to 0.20.

So a dataset's configs are taken nearest first, and a source below `WEAK_SHARE` of the best
source's score is weak: it fills only what the others can't (COPA's 0.33 against MMLU's 0.20).
The score is measured on the transformed rows' inputs, against the user's examples when there are
some, else against the task description. The same score, on the rows the kind judge reads, is a
gate at planning time (gate.py, with bars calibrated in benchmarks/acceptance): here it only orders.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .records import Row
from .task import TaskSpec

SAMPLE = 48  # rows embedded per source: the pools arrive shuffled by seed, so the first ones
WEAK_SHARE = 2 / 3  # below this share of the best source's score, a source only fills gaps


@dataclass
class SourceRelevance:
    scores: dict[str, float] = field(default_factory=dict)  # plan key -> mean best cosine of its sampled rows
    reference: str = "examples"  # what the rows were compared with: "examples" or "description"

    @property
    def weak(self) -> list[str]:
        if not self.scores:
            return []
        best = max(self.scores.values())
        return [k for k, s in self.scores.items() if best > 0 and s < WEAK_SHARE * best]

    def order(self, keys: list[str]) -> list[str]:
        """Datasets keep their rank; a dataset's configs go nearest first; weak sources go last."""
        weak = set(self.weak)
        datasets: dict[str, list[str]] = {}
        for k in keys:
            datasets.setdefault(k.split(":")[0], []).append(k)
        ranked = [k for ks in datasets.values() for k in sorted(ks, key=lambda k: -self.scores.get(k, 0.0))]
        return [k for k in ranked if k not in weak] + sorted((k for k in ranked if k in weak), key=lambda k: -self.scores[k])

    def to_dict(self) -> dict:
        return {"reference": self.reference, "scores": {k: round(v, 3) for k, v in self.scores.items()}, "weak": self.weak}


def relevance_score(texts: list[str], refs: list[str], embedder) -> float:
    """The mean, over `texts`, of each text's best cosine to one of `refs` (0.0 when either is empty)."""
    if not texts or not refs:
        return 0.0
    ref = np.asarray(embedder.encode(list(refs)), dtype=np.float32)
    vec = np.asarray(embedder.encode(list(texts)), dtype=np.float32)
    return float((vec @ ref.T).max(axis=1).mean())


def source_relevance(pools: dict[str, list[Row]], spec: TaskSpec, embedder, *, sample: int = SAMPLE) -> SourceRelevance:
    """Score each pool by its first `sample` rows: the mean of each row's best cosine to a reference."""
    refs = [e.input for e in spec.examples if e.input.strip()]
    rel = SourceRelevance(reference="examples" if refs else "description")
    keys = [k for k, rows in pools.items() if rows]
    if not keys:
        return rel
    ref = np.asarray(embedder.encode(refs or [spec.description]), dtype=np.float32)
    texts = [r.input for k in keys for r in pools[k][:sample]]
    vec = np.asarray(embedder.encode(texts), dtype=np.float32)
    best = (vec @ ref.T).max(axis=1)
    start = 0
    for k in keys:
        n = min(sample, len(pools[k]))
        rel.scores[k] = float(best[start:start + n].mean())
        start += n
    return rel
