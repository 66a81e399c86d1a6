"""Hybrid, schema-aware retrieval over dataset cards: which existing datasets fit a task.

    from retrieval_index import RetrievalIndex, Filters
    index = RetrievalIndex.load_or_build(catalog)          # cached, incremental
    hits = index.search("classify the stance of a tweet", k=10, filters=Filters.make(licenses="mit"))
"""

from .evaluate import DevQuery, Scores, evaluate, load_dev_set
from .filters import Filters, is_copy_of
from .fusion import Weights
from .index import DEFAULT_WEIGHTS, BuildStats, Hit, RetrievalIndex
from .rerank import Reranked, rerank

__all__ = [
    "BuildStats", "DEFAULT_WEIGHTS", "DevQuery", "Filters", "Hit", "Reranked", "RetrievalIndex", "Scores", "Weights",
    "evaluate", "is_copy_of", "load_dev_set", "rerank",
]
