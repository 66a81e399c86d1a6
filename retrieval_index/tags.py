"""Tag match: how close a description is to a dataset's task tags, in embedding space.

Task tags are a small controlled vocabulary ("word-sense-disambiguation", "table-question-answering",
"stance-detection") that names the task more precisely than most card prose. A description rarely
uses the tag's words ("is a word used with the same meaning"), so tags are matched by meaning: each
distinct tag is embedded once, and a dataset scores the similarity of its closest tag.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from datatune.catalog.base import DatasetEntry

from .text import humanize


def tag_texts(entry: DatasetEntry) -> list[str]:
    """The entry's task categories and ids as phrases (`text classification paraphrase identification`)."""
    return list(dict.fromkeys(humanize(t) for t in (*entry.task_categories, *entry.task_ids) if t))


class TagMatch:
    """Per entry, the rows (in the index's vector matrix) of its tags' embeddings."""

    def __init__(self, entries: Sequence[DatasetEntry], row_of: dict[str, int]):
        flat: list[int] = []
        starts: list[int] = []
        self.has_tags = np.zeros(len(entries), dtype=bool)
        for i, e in enumerate(entries):
            rows = [row_of[t] for t in tag_texts(e) if t in row_of]
            starts.append(len(flat))
            if rows:
                self.has_tags[i] = True
                flat.extend(rows)
            else:
                flat.append(0)  # placeholder, masked by has_tags
        self._flat = np.asarray(flat, dtype=np.int64)
        self._starts = np.asarray(starts, dtype=np.int64)
        self._rows = np.unique(self._flat[np.repeat(self.has_tags, np.diff(np.append(self._starts, len(flat))))])

    def scores(self, row_sims: np.ndarray, margin: float = 0.05) -> np.ndarray:
        """Per entry, the similarity of its tag that is closest to the query, counting only the tags
        within `margin` of the best one (the tags the description is about); 0 for the others."""
        if self._rows.size == 0:
            return np.zeros(len(self.has_tags), dtype=np.float32)
        s = row_sims[self._flat]
        s = np.where(s >= row_sims[self._rows].max() - margin, s, 0)
        best = np.maximum.reduceat(s, self._starts)
        return np.where(self.has_tags, np.maximum(best, 0), 0).astype(np.float32)
