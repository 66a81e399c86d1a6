"""Coverage of the user's examples: does the built set have rows near each example?

The user's few examples say what the task's inputs look like. A set can be balanced by label and
still miss a kind of input entirely (tweets when all sources are movie reviews). Each example's
embedding neighbourhood is measured: the example is covered when at least `min_neighbours` rows
lie within cosine similarity `threshold` of it. Top-up then writes rows only for the uncovered
examples, each conditioned on its example.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .records import Row
from .task import Example

# MiniLM cosine similarity between inputs of the same kind and topic (movie review vs movie
# review) is mostly 0.4-0.7; unrelated inputs mostly below 0.2. The bottom of the first range:
# at 0.45 a written blender review 0.437 from a blender example did not count as near it.
THRESHOLD = 0.40
MIN_NEIGHBOURS = 3


@dataclass
class Coverage:
    threshold: float
    min_neighbours: int
    neighbours: list[int] = field(default_factory=list)  # rows within the threshold, per example
    nearest: list[float] = field(default_factory=list)  # similarity of the closest row, per example

    @property
    def uncovered(self) -> list[int]:
        return [i for i, n in enumerate(self.neighbours) if n < self.min_neighbours]

    @property
    def share(self) -> float:
        return 1.0 - len(self.uncovered) / len(self.neighbours) if self.neighbours else 1.0

    def to_dict(self) -> dict:
        return {"examples": len(self.neighbours), "covered": len(self.neighbours) - len(self.uncovered),
                "share": round(self.share, 3), "threshold": self.threshold, "min_neighbours": self.min_neighbours,
                "neighbours": self.neighbours, "nearest": [round(x, 3) for x in self.nearest]}


def example_coverage(rows: list[Row], examples: list[Example], embedder, *, threshold: float = THRESHOLD,
                     min_neighbours: int = MIN_NEIGHBOURS, batch: int = 4096) -> Coverage:
    """Neighbour counts of each example's input among the rows' inputs (unit-length embeddings)."""
    cov = Coverage(threshold, min_neighbours)
    if not examples:
        return cov
    ex = np.asarray(embedder.encode([e.input for e in examples]), dtype=np.float32)
    counts = np.zeros(len(examples), dtype=np.int64)
    best = np.full(len(examples), -1.0, dtype=np.float32)
    for start in range(0, len(rows), batch):
        vec = np.asarray(embedder.encode([r.input for r in rows[start:start + batch]]), dtype=np.float32)
        sims = ex @ vec.T
        counts += (sims >= threshold).sum(axis=1)
        best = np.maximum(best, sims.max(axis=1))
    cov.neighbours = counts.tolist()
    cov.nearest = [float(x) for x in best]
    return cov
