"""Stage 5: which pooled rows the set takes: curation, source relevance, then allocation.

Curation (curate.py) drops near-duplicates, rows in the wrong language and rows overlapping the
evaluation texts; relevance (relevance.py) orders the sources by how near their rows are to the
examples and marks far ones as gap-fillers; allocation (allocate.py) picks positions over integer
codes of the pool's columns, balancing labels and capping each source. No string moves here.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..allocate import ALLOCATED, Selection, allocate_by_split_indices
from ..plan import Plan
from ..records import ConcatRows, RowStore, TableRows, position_type, release_unused, rows_to_table, table_to_rows
from ..task import TaskSpec
from .context import Context
from .pools import Executed


@dataclass
class Selected:
    chosen: Selection
    drops: Counter = field(default_factory=Counter)
    relevance: dict = field(default_factory=dict)  # relevance.SourceRelevance.to_dict(), when measured


def select_rows(executed: Executed, kept: list[Plan], spec: TaskSpec, ctx: Context, *, curate_fn: Callable | None = None,
                embedder=None) -> Selected:
    opts, pools = ctx.options, executed.pools
    drops: Counter = Counter()
    # the pooled rows are `pooled`'s at the positions `view`, in that order (see execute.Pool)
    pooled: RowStore = ConcatRows([p.store for p in pools.values()])
    starts = np.cumsum([0] + [p.store.num_rows for p in pools.values()])[:-1].tolist()
    kind = position_type(pooled.num_rows)[0]
    orders = [p.order.astype(kind, copy=False) + start for p, start in zip(pools.values(), starts)]
    view = orders[0] if len(orders) == 1 else np.concatenate(orders) if orders else np.zeros(0, dtype=kind)
    if curate_fn is not None and opts.curate:
        result = curate_fn(table_to_rows(pooled.gather(view)), spec, eval_texts=opts.eval_texts, engine=ctx.engine)
        pooled = TableRows(rows_to_table(result.rows))
        view = np.arange(pooled.num_rows, dtype=np.int64)
        drops.update(result.drops)
    order, weak, relevance_info = [p.key for p in kept], set(), {}
    if embedder is not None and len(pools) > 1:
        from ..relevance import SAMPLE, source_relevance

        relevance = source_relevance({k: table_to_rows(p.ordered(SAMPLE)) for k, p in pools.items()}, spec, embedder)
        order, weak = relevance.order(order), set(relevance.weak)
        relevance_info = relevance.to_dict()
        if weak:
            ctx.reporter.event("relevance", message=f"far from the {relevance.reference}, used only to fill gaps: " + ", ".join(relevance.weak),
                               relevance=relevance_info)
    labels = spec.labels if spec.output_kind == "label" else None
    index = allocate_by_split_indices(pooled.codes(view, ALLOCATED), order, opts.size, opts.per_source_cap, labels, weak=weak)
    release_unused()  # allocation's transient codes
    return Selected(Selection(pooled, index, view=view), drops, relevance_info)
