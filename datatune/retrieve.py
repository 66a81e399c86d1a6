"""Retrieval for the build: the hybrid index of `retrieval_index`, as ranked Candidates.

One candidate per search hit (a dataset and its best config); configs of the same kind (MMLU's
subjects) travel with it as siblings, so one plan covers them all.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal, Sequence

from pydantic import BaseModel, create_model

from retrieval_index.popularity import hit_downloads, prefer_used

from .core.types import Catalog
from .llm import LLM
from .planner import Candidate, clip
from .progress import Reporter

RERANK_VOTES = 5
RERANK_TOP = 8
# label words that name no kind of task (the words datatune.query leaves out of a task's label list)
GENERIC_LABELS = frozenset({"yes", "no", "true", "false", "not", "other", "none", "neither"})


def llm_voter(llm: LLM, *, temperature: float = 0.0):
    """A rerank vote: the LLM names the one candidate that best fits the task, or "none".

    The answer is an enum of the candidates' ids (plus "none"), so an invented name can't be
    given; the candidates arrive shuffled per vote (by `rerank`), which is what varies the votes.
    """

    def vote(query: str, hits: Sequence) -> str | None:
        names = [f"{h.dataset_id}::{h.config}" for h in hits]
        Answer: type[BaseModel] = create_model("Pick", dataset=(Literal[tuple(names) + ("none",)], ...))  # type: ignore[valid-type]
        lines = []
        for name, h in zip(names, hits):
            try:
                features = h.entry.config(h.config).features[:8]
            except KeyError:
                features = ()
            cols = ", ".join(f.name + (f" ({'/'.join(f.labels[:6])})" if f.labels else "") for f in features)
            lines.append(f"- {name}: {clip(h.entry.summary or h.entry.pretty_name or '', 160)} Columns: {cols}")
        messages = [
            {"role": "system", "content": "You choose training data for a task. Answer in JSON."},
            {"role": "user", "content": f"Task: {query}\n\nCandidate datasets:\n" + "\n".join(lines)
             + "\n\nWhich one dataset's rows best fit the task? Answer none if none fits."},
        ]
        return llm.structured(messages, Answer, stage="rerank", temperature=temperature).dataset

    return vote


def without_generic_labels(text: str) -> str:
    """The label text without the words every yes/no or true/false config has as labels.

    "Answer "Yes" if these sentences are a paraphrase ..., otherwise answer "No"": label matching
    then finds circa (a yes/no dataset) for any such definition; what the labels mean is in the
    rest of the text. The task's label list already leaves these words out (`datatune.query`).
    """
    return " ".join(w for w in text.split() if re.sub(r"\W", "", w).lower() not in GENERIC_LABELS)


def _config_has_rows(hit) -> bool:
    try:
        return hit.entry.config(hit.config).has_rows
    except KeyError:
        return False


def open_index(catalog: Catalog, *, root: Path | None = None, progress=False, force: bool = False, engine: str = "local"):
    """The catalog's saved index, rebuilt (incrementally) when its inputs changed. progress: True (tqdm
    bars), False, or the caller's Reporter (quiet: nothing; --json: JSON events). engine "ray": the
    texts to embed are encoded on a Ray cluster's CPUs (engines/ray_embed.py)."""
    from retrieval_index.index import RetrievalIndex

    encoder = None
    if engine == "ray":
        from .engines.ray_embed import RayEncoder

        encoder = RayEncoder()
    return RetrievalIndex.load_or_build(catalog, root=root, progress=progress, force=force, encoder=encoder)


def make_retriever(catalog: Catalog, *, benchmark: str | None = None, reporter: Reporter | None = None,
                   index_root: Path | None = None, vote=None, votes: int = RERANK_VOTES):
    """A `retriever(query, k, exclude) -> list[Candidate]` over the catalog's (saved) index.

    With `vote` (see `llm_voter`), the top candidates are reranked by that many self-consistency
    votes (DataTune's rerank); candidates nobody voted for keep their fused order after them.
    """
    state: dict = {}

    def index():
        if "index" not in state:
            if reporter:
                reporter.event("index", message=f"loading the retrieval index for {catalog.location}")
            state["index"] = open_index(catalog, root=index_root, progress=reporter if reporter is not None else False)
        return state["index"]

    def rows_matcher():
        if "rows" not in state:
            from retrieval_index.by_rows import RowMatcher

            state["rows"] = RowMatcher(index())
        return state["rows"]

    def retrieve(query: str, k: int, exclude: list[str], labels: list[str] | None = None, languages: list[str] | None = None,
                 examples: list[str] | None = None, label_query: str | None = None) -> list[Candidate]:
        from retrieval_index.filters import Filters

        if label_query:
            label_query = without_generic_labels(label_query)
        base = dict(exclude=list(exclude), benchmark=benchmark)
        filters = Filters.make(**base) if (exclude or benchmark) else None
        hits = index().search(query, k=k, filters=filters, labels=labels or (), languages=languages, label_query=label_query)
        if sum(h.entry.has_rows and _config_has_rows(h) for h in hits) < k // 2:
            # card-only entries can crowd the top of a local catalog: also take the best ones with rows
            seen = {(h.dataset_id, h.config) for h in hits}
            more = index().search(query, k=k, filters=Filters.make(**base, has_rows=True), labels=labels or (), languages=languages, label_query=label_query)
            hits += [h for h in more if (h.dataset_id, h.config) not in seen]
        if examples:
            # the configs whose rows look like the examples join the card ranking (retrieval_index/by_rows.py)
            from retrieval_index.by_rows import fuse
            from retrieval_index.index import Hit

            entries = {e.id: e for e in index().entries}
            allowed = set(exclude)

            def lookup(dataset_id, config):
                e = entries.get(dataset_id)
                if e is None or allowed & set(e.names):
                    return None
                return Hit(dataset_id, config, 0.0, ("rows near the examples",), e, (config,))

            hits = fuse(hits, examples, rows_matcher(), lookup=lookup)[: max(k, len(hits))]
        hits = prefer_used(hits, hit_downloads)  # among those that fit, the one the Hub's users use
        if vote is not None and hits:
            from retrieval_index.rerank import rerank

            if reporter:
                reporter.event("rerank", message=f"reranking the top {min(RERANK_TOP, len(hits))} candidates with {votes} LLM votes")
            hits = rerank(query, hits, vote, votes=votes, top=RERANK_TOP).hits
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
