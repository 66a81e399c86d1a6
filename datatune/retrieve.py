"""Retrieval for the build: the hybrid index of `retrieval_index`, as ranked Candidates.

One candidate per search hit (a dataset and its best config); configs of the same kind (MMLU's
subjects) travel with it as siblings, so one plan covers them all.
"""

from __future__ import annotations

from pathlib import Path

from .catalog.base import Catalog
from .planner import Candidate
from .progress import Reporter


def open_index(catalog: Catalog, *, root: Path | None = None, progress: bool = False, force: bool = False):
    """The catalog's saved index, rebuilt (incrementally) when its inputs changed."""
    from retrieval_index.index import RetrievalIndex

    return RetrievalIndex.load_or_build(catalog, root=root, progress=progress, force=force)


def make_retriever(catalog: Catalog, *, benchmark: str | None = None, reporter: Reporter | None = None,
                   index_root: Path | None = None):
    """A `retriever(query, k, exclude) -> list[Candidate]` over the catalog's (saved) index."""
    state: dict = {}

    def index():
        if "index" not in state:
            if reporter:
                reporter.event("index", message=f"loading the retrieval index for {catalog.location}")
            state["index"] = open_index(catalog, root=index_root, progress=reporter is not None)
        return state["index"]

    def retrieve(query: str, k: int, exclude: list[str], labels: list[str] | None = None, languages: list[str] | None = None) -> list[Candidate]:
        from retrieval_index.filters import Filters

        base = dict(exclude=list(exclude), benchmark=benchmark)
        filters = Filters.make(**base) if (exclude or benchmark) else None
        hits = index().search(query, k=k, filters=filters, labels=labels or (), languages=languages)
        if sum(h.entry.has_rows for h in hits) < k // 2:
            # card-only entries can crowd the top of a local catalog: also take the best ones with rows
            seen = {(h.dataset_id, h.config) for h in hits}
            more = index().search(query, k=k, filters=Filters.make(**base, has_rows=True), labels=labels or (), languages=languages)
            hits += [h for h in more if (h.dataset_id, h.config) not in seen]
        out = []
        for h in hits:
            try:
                config = h.entry.config(h.config)
            except KeyError:
                continue
            siblings = tuple(c for c in h.configs if c != h.config)
            out.append(Candidate(h.entry, config, score=h.score, siblings=siblings, why=tuple(h.why)))
        return out

    return retrieve
