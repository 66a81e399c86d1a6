"""Stage 4: each kept source's pool, a seeded sample of its valid mapped rows (execute.sample_pool).

Compiled plans map Arrow batches on the chosen engine (engines/) and cost no LLM call; a plan with
per-row LLM fields fills them in shards of LLM_CHUNK rows, kept in the run folder so a resumed build
reuses every finished shard.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from ..allocate import source_cap, split_order
from ..core.errors import BudgetExceeded, DatasetLoadError, OfflineError
from ..execute import Pool, sample_pool
from ..plan import Plan
from ..records import Row, TableRows, release_unused, rows_to_table
from .context import Context

LLM_CHUNK = 16  # rows per shard on the per-row LLM path


@dataclass
class Executed:
    pools: dict[str, Pool]  # plan key -> its pool, in the order of the kept plans
    drops: Counter = field(default_factory=Counter)  # source rows not made into rows, by reason

    @property
    def rows(self) -> int:
        return sum(len(p) for p in self.pools.values())


def cap_of(options, kept: list[Plan]) -> int:
    """The most rows one source may give (--per-source-cap of --size when others are there)."""
    return source_cap(options.size, options.per_source_cap, len({p.dataset for p in kept}))


def execute_sources(kept: list[Plan], ctx: Context) -> Executed:
    """Compiled rows of every kept source (a seeded sample of them), LLM fields filled in shards.
    A source that fails to load is skipped, counted, and its plan marked so (plans.json says why)."""
    opts, rep = ctx.options, ctx.reporter
    cap = cap_of(opts, kept)
    engine = ctx.engine if kept else None
    result = Executed({})
    with rep.bar("execute", total=sum(p.est_rows for p in kept), unit="row") as bar:
        for plan in kept:
            def load(split, plan=plan):
                return ctx.catalog.load(plan.dataset, plan.config, split)

            keep = math.ceil(cap * 1.3) if plan.needs_llm else 3 * cap
            try:
                # a seeded sample of the valid rows, train first; only those become rows
                pool = sample_pool(plan, load, seed=opts.seed, keep=keep, split_rank=split_order(plan.splits), on_rows=bar.update,
                                   engine=engine)
            except DatasetLoadError as e:
                rep.event("skip", message=f"skip {plan.key}: {e}")
                result.drops["source_failed_to_load"] += 1
                plan.keep, plan.reason, plan.reject_kind = False, str(e), "load_failed"
                continue
            result.drops.update(pool.drops)
            if plan.needs_llm:
                rows, drops = llm_rows(plan, pool.rows, ctx, engine)
                result.drops.update(drops)
                done = rows_to_table(rows)
                pool = Pool(TableRows(done), np.arange(done.num_rows, dtype=np.int64), pool.drops, pool.seen)
            result.pools[plan.key] = pool
    release_unused()  # pass 1's transients
    return result


def llm_rows(plan: Plan, rows: list[Row], ctx: Context, engine=None) -> tuple[list[Row], Counter]:
    """Per-row LLM fields, LLM_CHUNK rows per shard, filled by `engine` (local by default): a resumed
    build reuses finished shards. A source whose LLM rows fail for more than a third is dropped whole
    (DataTune's rule)."""
    from ..engines.local import LocalEngine

    engine = engine or LocalEngine()
    run, drops = ctx.run, Counter()
    shards: dict[int, list[Row]] = {}
    todo: dict[int, list[Row]] = {}
    for i in range(0, len(rows), LLM_CHUNK):
        idx = i // LLM_CHUNK
        cached = run.read_shard(plan.key, idx)
        if cached is None:
            todo[idx] = rows[i:i + LLM_CHUNK]
        else:
            shards[idx] = cached
    failed = 0
    with ctx.reporter.bar(f"llm rows {plan.dataset}", total=len(rows), unit="row") as bar:
        bar.update(sum(min(LLM_CHUNK, len(rows) - idx * LLM_CHUNK) for idx in shards))
        try:
            for idx, done, d in engine.fill_llm(plan, todo, ctx.llm):
                failed += d.get("llm_failed", 0)
                drops.update(d)
                run.write_shard(plan.key, idx, done)
                shards[idx] = done
                bar.update(len(todo[idx]))
        except (BudgetExceeded, OfflineError) as e:
            stopped = min(set(todo) - set(shards))
            raise type(e)(f"{e} (stopped during {plan.key}, chunk {stopped}; the run state is kept in {run.out})") from e
    out = [r for idx in sorted(shards) for r in shards[idx]]
    if rows and failed / len(rows) > 1 / 3:
        ctx.reporter.event("skip", message=f"drop {plan.key}: {failed} of {len(rows)} LLM rows failed (more than a third)")
        drops["source_llm_failures"] += len(out)
        return [], drops
    return out, drops
