"""Tag match: how close a description is to a dataset's task tags, in embedding space.

Task tags are a small controlled vocabulary ("word-sense-disambiguation", "table-question-answering",
"stance-detection") that names the task more precisely than most card prose. A description rarely
uses the tag's words ("is a word used with the same meaning"), so tags are matched by meaning: each
distinct tag is embedded once, and a dataset scores the similarity of its closest tag.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from datatune.core.types import DatasetEntry

from .text import humanize


def tag_texts(entry: DatasetEntry) -> list[str]:
    """The entry's task categories and ids as phrases (`text classification paraphrase identification`)."""
    return list(dict.fromkeys(humanize(t) for t in (*entry.task_categories, *entry.task_ids) if t))


class TagMatch:
    """Per entry, the rows (in the index's vector matrix) of its tags' embeddings, and per tag the
    entries that have it."""

    def __init__(self, entries: Sequence[DatasetEntry], row_of: dict[str, int]):
        owners: dict[int, list[int]] = {}
        for i, e in enumerate(entries):
            for row in dict.fromkeys(row_of[t] for t in tag_texts(e) if t in row_of):
                owners.setdefault(row, []).append(i)
        self.num_entries = len(entries)
        self._rows = np.asarray(sorted(owners), dtype=np.int64)  # the distinct tags' rows
        self._owners = [np.asarray(owners[r], dtype=np.int64) for r in self._rows.tolist()]

    def scores(self, row_sims: np.ndarray, margin: float = 0.05) -> np.ndarray:
        """Per entry, the similarity of its tag that is closest to the query, counting only the tags
        within `margin` of the best one (the tags the description is about); 0 for the others."""
        out = np.zeros(self.num_entries, dtype=np.float32)
        if self._rows.size == 0:
            return out
        s = row_sims[self._rows]
        near = np.flatnonzero((s >= s.max() - margin) & (s > 0))
        for t in near[np.argsort(s[near], kind="stable")].tolist():  # ascending: an entry keeps its best tag
            out[self._owners[t]] = s[t]
        return out
