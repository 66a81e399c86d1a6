"""Run compiled plans over all rows, batched, with provenance; the LLM only for `llm` fields.

A build draws a bounded pool from each source (`sample_pool`): every row is mapped once over
Arrow batches to learn which rows are valid (and why the others are dropped), the valid ones are
shuffled by seed, train split first, and only the first `keep` are made into rows. Memory grows
with the pool, not with the source: a 20M-row source costs its valid-row index, not 20M rows.

Compiled rows cost no LLM call. Fields the plan marks `llm` go through the LLM layer (bounded
concurrency, cache, budget); a source whose per-row LLM failures pass one third is dropped
(DataTune's rule).
"""

from __future__ import annotations

import random
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .compile import compile_plan
from .engines import Engine
from .engines.local import LocalEngine
from .llm import LLM
from .plan import Plan
from .records import SCHEMA, Row, constant, table_to_rows

BATCH = 8192


@dataclass
class SourceResult:
    plan: Plan
    rows: list[Row] = field(default_factory=list)
    drops: Counter = field(default_factory=Counter)
    seen: int = 0
    error: str = ""


def iter_mapped(plan: Plan, split: str, ds: datasets.Dataset, *, batch_size: int = BATCH) -> Iterator[tuple[list[Row], Counter]]:
    """Compiled rows of one split, a batch at a time (bounded memory on large splits)."""
    mapper = compile_plan(plan, ds.features)
    cols = [c for c in mapper.columns if c in ds.column_names]
    ds = ds.select_columns(cols)
    method = "llm" if plan.needs_llm else "mapped"
    start = 0
    for batch in ds.iter(batch_size=batch_size):
        m = mapper.map_batch(batch)
        drops = Counter(why for why in m.drops if why)
        rows = [Row(a, b, plan.dataset, plan.config, split, start + i, method)
                for i, (a, b, why) in enumerate(zip(m.inputs, m.outputs, m.drops)) if why is None]
        start += len(m.inputs)
        yield rows, drops


def execute_plan(plan: Plan, load: Callable[[str], datasets.Dataset], *, on_rows: Callable[[int], None] | None = None) -> SourceResult:
    """All compiled rows of a plan over its splits (load(split) -> Dataset)."""
    res = SourceResult(plan)
    for split in plan.splits:
        ds = load(split)
        for rows, drops in iter_mapped(plan, split, ds):
            res.rows.extend(rows)
            res.drops.update(drops)
            res.seen += len(rows) + sum(drops.values())
            if on_rows:
                on_rows(len(rows) + sum(drops.values()))
    return res


def fill_llm_fields(plan: Plan, rows: list[Row], llm: LLM, *, on_done: Callable[[int], None] | None = None) -> tuple[list[Row], Counter]:
    """Apply the plan's per-row LLM instructions; rows whose call failed are dropped and counted."""
    drops: Counter = Counter()
    fields = list(plan.llm_fields)
    if plan.output is not None and plan.output.kind == "llm":
        from .plan import LLMField

        fields.append(LLMField(target="output", instruction=plan.output.instruction or "Answer the task for this input."))
    for f in fields:
        requests = [
            [
                {"role": "system", "content": "You rewrite one field of a dataset row. Reply with the new value only."},
                {"role": "user", "content": f"Instruction: {f.instruction}\n\nInput: {r.input}\n\nCurrent {f.target}: {getattr(r, f.target) or '(none)'}"},
            ]
            for r in rows
        ]
        answers = llm.text_many(requests, stage="execute-llm", on_done=(lambda i: on_done(1)) if on_done else None)
        kept = []
        for r, a in zip(rows, answers):
            if isinstance(a, Exception) or not str(a).strip():
                drops["llm_failed"] += 1
                continue
            setattr(r, f.target, str(a).strip())
            r.method = "llm"
            kept.append(r)
        rows = kept
    return rows, drops


@dataclass
class Pool:
    """A source's rows for the build: the first `keep` valid rows in seeded order, and what was dropped.

    The rows are `table`'s (records.SCHEMA) at the positions `order`, in that order: when the pool is
    most of the source, `table` holds every valid row as mapped in one pass, in source order, and no
    string is moved until the output is gathered."""

    table: pa.Table
    order: np.ndarray
    drops: Counter
    seen: int  # source rows read

    def __len__(self) -> int:
        return len(self.order)

    def ordered(self, n: int | None = None) -> pa.Table:
        """The pool's (first n) rows in order, as a table of their own."""
        return self.table.take(pa.array(self.order[:n] if n is not None else self.order, pa.int64()))

    @property
    def rows(self) -> list[Row]:
        return table_to_rows(self.ordered())


def sample_pool(plan: Plan, load: Callable[[str], datasets.Dataset], *, seed: int, keep: int, split_rank: Sequence[str],
                batch_size: int = BATCH, on_rows: Callable[[int], None] | None = None, engine: Engine | None = None) -> Pool:
    """The first `keep` valid rows of a plan's splits after a seeded shuffle, splits in `split_rank` order.

    The order is that of shuffling the list of every valid row with `random.Random(f"{seed}:{plan.key}")`
    and stable-sorting it by split rank (as the build always did), computed over row positions only.
    `engine` maps the batches (datatune/engines: local by default, or Ray); the pool is the same either way.
    """
    engine = engine or LocalEngine()
    method = "llm" if plan.needs_llm else "mapped"
    drops: Counter = Counter()
    seen = 0
    sources: list[tuple[str, datasets.Dataset, np.ndarray]] = []  # split, its dataset, source rows that are valid
    loaded = [(split, load(split)) for split in plan.splits]
    # a pool that is most of the source keeps pass 1's mapped rows (no second read, no gather); a small
    # one is made again from the rows chosen, so memory follows the pool, not the source
    retain = 2 * keep >= sum(len(ds) for _, ds in loaded)
    kept_parts: list[pa.Table] = []
    for split, ds in loaded:
        mapper = compile_plan(plan, ds.features)
        valid, start = [], 0
        for mapped in engine.map_split(mapper, ds, batch_size=batch_size):
            why = mapped.column("drop")
            ok = pc.is_null(why)
            valid.append(np.flatnonzero(ok.to_numpy(zero_copy_only=False)) + start)
            if retain:
                kept_parts.append(pa.table({"input": mapped.column("input").filter(ok), "output": mapped.column("output").filter(ok),
                                            "source_split": constant(split, len(valid[-1])), "source_row": pa.array(valid[-1], pa.int64())}))
            if why.null_count < len(why):
                counts = pc.value_counts(why.drop_null())
                drops.update(dict(zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist())))
            start += mapped.num_rows
            if on_rows:
                on_rows(mapped.num_rows)
        seen += start
        sources.append((split, ds, np.concatenate(valid) if valid else np.zeros(0, dtype=np.int64)))
    counts = [len(v) for _, _, v in sources]
    order = array("q", range(sum(counts)))
    random.Random(f"{seed}:{plan.key}").shuffle(order)  # the same permutation as shuffling the rows themselves
    pos = np.frombuffer(order, dtype=np.int64)
    ends = np.cumsum(counts)
    which = np.searchsorted(ends, pos, side="right")  # the split of each position
    rank = {s: i for i, s in enumerate(split_rank)}
    ranks = np.asarray([rank.get(split, len(rank)) for split, _, _ in sources], dtype=np.int64)
    if len(set(ranks[[k for k, c in enumerate(counts) if c]].tolist())) > 1:
        pos = pos[np.argsort(ranks[which], kind="stable")]
    chosen = pos[:keep]
    if retain:  # every valid row is at hand, in the order of `pos`: the pool is positions into them
        mapped = pa.concat_tables(kept_parts) if kept_parts else _empty_mapped()
        return Pool(_with_provenance(mapped, plan, method), chosen.copy(), drops, seen)
    chosen_split = np.searchsorted(ends, chosen, side="right")
    n = len(chosen)
    parts, offset = [], 0
    where = np.zeros(n, dtype=np.int64)  # each chosen row's place among the mapped rows below
    for k, (split, ds, valid) in enumerate(sources):
        mine = np.flatnonzero(chosen_split == k)
        if not len(mine):
            continue
        source_rows = valid[chosen[mine] - (ends[k] - counts[k])]
        mapper = compile_plan(plan, ds.features)
        columns = ds.select_columns([c for c in mapper.columns if c in ds.column_names]).with_format("arrow")
        # only the chosen rows, in the order chosen (`columns[:]` would copy the whole split first)
        m = mapper.map_arrow(columns[source_rows.tolist()])
        parts.append(pa.table({"input": m.column("input"), "output": m.column("output"), "source_split": constant(split, len(mine)),
                               "source_row": pa.array(source_rows, pa.int64())}))
        where[mine] = offset + np.arange(len(mine))
        offset += len(mine)
    if len(parts) == 1:
        mapped = parts[0]  # one split: already in the order chosen
    elif parts:
        mapped = pa.concat_tables(parts).take(pa.array(where))
    else:
        mapped = _empty_mapped()
    return Pool(_with_provenance(mapped, plan, method), np.arange(n, dtype=np.int64), drops, seen)


def _empty_mapped() -> pa.Table:
    return pa.table({"input": pa.array([], pa.string()), "output": pa.array([], pa.string()),
                     "source_split": pa.array([], pa.string()), "source_row": pa.array([], pa.int64())})


def _with_provenance(mapped: pa.Table, plan: Plan, method: str) -> pa.Table:
    n = mapped.num_rows
    return pa.table({
        "input": mapped.column("input"), "output": mapped.column("output"),
        "source_dataset": constant(plan.dataset, n), "source_config": constant(plan.config, n),
        "source_split": mapped.column("source_split"), "source_row": mapped.column("source_row"),
        "method": constant(method, n), "check": constant("", n),
    }, schema=SCHEMA)
