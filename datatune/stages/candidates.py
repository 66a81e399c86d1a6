"""Stage 2: candidate datasets for the spec, ranked by the retriever (hybrid, schema-aware)."""

from __future__ import annotations

from typing import Callable

from ..planner import Candidate
from ..query import retrieval_query
from ..task import TaskSpec
from .context import Context

Retriever = Callable[..., list[Candidate]]  # (query, k, exclude, *, labels, languages, examples, label_query)


def find_candidates(spec: TaskSpec, retriever: Retriever, ctx: Context) -> list[Candidate]:
    opts = ctx.options
    query = retrieval_query(spec)
    found = retriever(query.text, opts.top_k, opts.exclude, labels=list(query.labels), languages=[spec.language],
                      examples=[e.input for e in spec.examples], label_query=query.label_text)
    with_rows = sum(c.entry.has_rows and c.config.has_rows for c in found)
    ctx.reporter.event("candidates", message=f"{len(found)} retrieved, {with_rows} with rows in this catalog; "
                       f"planning up to {min(with_rows, opts.max_candidates)} in rank order "
                       "(fewer once the kept ones cover --size); top: " + ", ".join(c.key for c in found[:8]) + (", ..." if len(found) > 8 else ""),
                       candidates=[{"key": c.key, "score": c.score, "has_rows": c.entry.has_rows} for c in found])
    return found
