"""BM25 over the documents' lexical text, built with bm25s (scores precomputed into a sparse matrix).

bm25s stores each token's per-document BM25 contribution, so a query is a few sparse row sums:
milliseconds at 100k documents, where rank-bm25 loops over every document in Python. Over a large
index the sums run compiled (kernels.scatter_add).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import bm25s
import numpy as np

from .kernels import scatter_add
from .text import tokenize


class Lexical:
    """A BM25 index: `scores(query)` gives one float32 score per document (0 = no shared token)."""

    def __init__(self, model: bm25s.BM25):
        self.model = model
        self._vocab: dict[str, int] = model.vocab_dict
        s = model.scores
        self._data, self._indices, self._indptr, self.num_docs = s["data"], s["indices"], s["indptr"], int(s["num_docs"])

    @classmethod
    def build(cls, texts: Sequence[str], *, k1: float = 1.2, b: float = 0.75) -> "Lexical":
        model = bm25s.BM25(k1=k1, b=b, method="lucene")
        model.index([tokenize(t) or ["<empty>"] for t in texts], show_progress=False)
        return cls(model)

    def query_ids(self, query: str) -> list[int]:
        """Vocabulary ids of the query's tokens, each once (a repeated word is not a stronger match)."""
        ids = [self._vocab.get(t) for t in dict.fromkeys(tokenize(query))]
        return [i for i in ids if i is not None]

    def scores(self, query: str) -> np.ndarray:
        out = np.zeros(self.num_docs, dtype=np.float32)
        for t in self.query_ids(query):
            lo, hi = self._indptr[t], self._indptr[t + 1]
            scatter_add(out, self._indices[lo:hi], self._data[lo:hi])  # one entry per document within a token's row
        return out

    def save(self, folder: Path) -> None:
        self.model.save(str(folder), show_progress=False)

    @classmethod
    def load(cls, folder: Path) -> "Lexical":
        return cls(bm25s.BM25.load(str(folder), show_progress=False))
