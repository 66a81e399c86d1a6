"""Run compiled plans over all rows, batched, with provenance; the LLM only for `llm` fields.

A build draws a bounded pool from each source (`sample_pool`): every row is mapped once over
Arrow batches to learn which rows are valid (and why the others are dropped), the valid ones are
shuffled by seed, train split first, and only the first `keep` are kept. A pool that is most of
the source is held as its valid rows' places and outputs (`MappedRows`, about 8 bytes a row): the
inputs are mapped again from the source when the rows are written, one pass per split; a smaller
pool is mapped again from its chosen rows at once. Memory grows with the pool's positions, not
with its strings: a 20M-row source costs its valid-row index, not 20M rows.

Compiled rows cost no LLM call. Fields the plan marks `llm` go through the LLM layer (bounded
concurrency, cache, budget); a source whose per-row LLM failures pass one third is dropped
(DataTune's rule).
"""

from __future__ import annotations

import random
from array import array
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Callable, Iterator, Sequence

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .compile import RowMapper, compile_plan
from .engines import Engine
from .engines.local import LocalEngine
from .engines.source import SplitRows
from .llm import LLM
from .plan import Plan
from .records import CODED, SCHEMA, Buckets, Row, RowStore, TableRows, coded, constant, indices, inverse, position_type, table_to_rows, with_input

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


SPAN = 65_536  # source rows read (and their pages given back) per step when rows are mapped again


@dataclass
class SplitPositions:
    """One split's valid rows: where they are in the split (ascending), read again through `source`."""

    name: str
    source: SplitRows
    mapper: RowMapper
    rows: np.ndarray


class MappedRows:
    """A plan's valid rows as positions into its source splits and their outputs as dictionary codes
    (about 8 bytes a row): the input is mapped again from the source when rows are gathered, and
    written rows are scattered in one pass over each split (records.gathered_chunks)."""

    in_memory = False

    def __init__(self, plan: Plan, method: str, splits: list[SplitPositions], output: pa.DictionaryArray):
        kept = [s for s in splits if len(s.rows)]
        self.output = output
        # every split's rows one after another (each split then holds a view of its part, not a copy)
        self.source_row = kept[0].rows if len(kept) == 1 else np.concatenate([s.rows for s in kept] or [np.zeros(0, dtype=np.int64)])
        self.ends = np.cumsum([len(s.rows) for s in kept], dtype=np.int64)
        self.splits = [replace(s, rows=self.source_row[end - len(s.rows):end]) for s, end in zip(kept, self.ends)]
        self.num_rows = len(self.source_row)
        self.constants = {"source_dataset": plan.dataset, "source_config": plan.config, "method": method, "check": ""}

    def _split_of(self, positions: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.ends, positions, side="right")

    def codes(self, positions: np.ndarray, columns: Sequence[str]) -> pa.Table:
        positions = np.asarray(positions)
        out = {}
        for name in columns:
            if name == "output":
                out[name] = self.output.take(indices(positions))
            elif name == "source_split":
                out[name] = coded([s.name for s in self.splits], self._split_of(positions))
            elif name == "source_row":
                out[name] = pa.array(self.source_row[positions], pa.int64())
            elif name == "input":
                out[name] = pc.dictionary_encode(self._inputs(positions))
            else:
                out[name] = coded([self.constants[name]], np.zeros(len(positions), dtype=np.int32))
        return pa.table(out)

    def gather(self, positions: np.ndarray) -> pa.Table:
        positions = np.asarray(positions)
        return with_input(self._inputs(positions), self.codes(positions, CODED))

    def _by_split(self, positions: np.ndarray) -> Iterator[tuple[SplitPositions, np.ndarray, np.ndarray]]:
        """(split, which of `positions` are its rows in ascending source order, those source rows)."""
        rows = self.source_row[positions]
        split = self._split_of(positions) if len(self.splits) > 1 else None
        for k, s in enumerate(self.splits):
            mine = np.flatnonzero(split == k) if split is not None else None
            if mine is not None and not len(mine):
                continue
            mine_rows = rows[mine] if mine is not None else rows
            order = _ascending(mine_rows, s.source.num_rows)
            yield s, (mine[order] if mine is not None else order), mine_rows[order]

    def _mapped_inputs(self, split: SplitPositions, rows: np.ndarray) -> pa.ChunkedArray:
        """The inputs of these (ascending) source rows, mapped again; they were valid in pass 1 and must be now."""
        mapped = split.mapper.map_arrow(split.source.take(rows))
        if mapped.column("drop").null_count != mapped.num_rows:
            raise RuntimeError(f"{split.name}: a plan mapped rows valid in the first pass as dropped the second time: "
                               "the plan is not a function of the row")
        return mapped.column("input")

    def _inputs(self, positions: np.ndarray) -> pa.ChunkedArray:
        pieces = [(mine, self._mapped_inputs(s, rows)) for s, mine, rows in self._by_split(positions)]
        if not pieces:
            return pa.chunked_array([], pa.string())
        inputs = pa.chunked_array([c for _, p in pieces for c in p.chunks], pa.string())
        order = np.concatenate([m for m, _ in pieces])
        return inputs.combine_chunks().take(pa.array(inverse(order), pa.int64()))

    def scatter(self, positions: np.ndarray, targets: np.ndarray, sink: Buckets) -> None:
        positions, targets = np.asarray(positions), np.asarray(targets)
        for s, mine, rows in self._by_split(positions):
            steps = np.flatnonzero(np.diff(rows // SPAN)) + 1  # a step per SPAN source rows, read once
            for lo, hi in zip(np.concatenate([[0], steps]), np.concatenate([steps, [len(rows)]])):
                sink.add(targets[mine[lo:hi]], self._mapped_inputs(s, rows[lo:hi]))


def _ascending(rows: np.ndarray, bound: int) -> np.ndarray:
    """The order that sorts `rows` (values below `bound`): by placing each distinct row in a slot of
    its own where the rows are dense (no comparison sort of millions), by sorting otherwise."""
    if 16 * len(rows) < bound:
        return np.argsort(rows, kind="stable")
    kind = position_type(len(rows))[0]
    slot = np.full(bound, -1, dtype=kind)
    slot[rows] = np.arange(len(rows), dtype=kind)
    order = slot[slot >= 0]
    return order if len(order) == len(rows) else np.argsort(rows, kind="stable")  # a row asked for twice: sort


@dataclass
class Pool:
    """A source's rows for the build: the first `keep` valid rows in seeded order, and what was dropped.

    The rows are `store`'s (a records.RowStore) at the positions `order`, in that order: when the pool
    is most of the source, the store is MappedRows (every valid row's place in the source and its
    output, from the one pass), and no string is moved until the output is written."""

    store: RowStore
    order: np.ndarray
    drops: Counter
    seen: int  # source rows read

    def __len__(self) -> int:
        return len(self.order)

    def ordered(self, n: int | None = None) -> pa.Table:
        """The pool's (first n) rows in order, as a table of their own."""
        return self.store.gather(self.order[:n] if n is not None else self.order)

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
    sources: list[SplitPositions] = []
    # each split read through its own SplitRows: `datasets`' mapping of the files goes with the Dataset
    opened = [_open_split(plan, load(split)) for split in plan.splits]
    # a pool that is most of the source keeps pass 1's outputs and the valid rows' places (the inputs are
    # mapped again when written); a small one is made from the rows chosen, so memory follows the pool
    retain = 2 * keep >= sum(rows.num_rows for _, rows in opened)
    outputs: list[pa.Array] = []
    for split, (mapper, rows) in zip(plan.splits, opened):
        valid, start, row_type = [], 0, position_type(rows.num_rows)[0]
        for mapped in engine.map_split(mapper, rows, batch_size=batch_size):
            why = mapped.column("drop")
            ok = pc.is_null(why)
            valid.append((np.flatnonzero(ok.to_numpy(zero_copy_only=False)) + start).astype(row_type))
            if retain:
                outputs.extend(pc.dictionary_encode(mapped.column("output").filter(ok)).chunks)
            if why.null_count < len(why):
                counts = pc.value_counts(why.drop_null())
                drops.update(dict(zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist())))
            start += mapped.num_rows
            if on_rows:
                on_rows(mapped.num_rows)
        seen += start
        sources.append(SplitPositions(split, rows, mapper, np.concatenate(valid) if valid else np.zeros(0, dtype=row_type)))
    counts = [len(s.rows) for s in sources]
    kind, code = position_type(sum(counts))
    order = array(code, range(sum(counts)))
    random.Random(f"{seed}:{plan.key}").shuffle(order)  # the same permutation as shuffling the rows themselves
    pos = np.frombuffer(order, dtype=kind)
    ends = np.cumsum(counts)
    which = np.searchsorted(ends, pos, side="right")  # the split of each position
    rank = {s: i for i, s in enumerate(split_rank)}
    ranks = np.asarray([rank.get(s.name, len(rank)) for s in sources], dtype=np.int64)
    if len(set(ranks[[k for k, c in enumerate(counts) if c]].tolist())) > 1:
        pos = pos[np.argsort(ranks[which], kind="stable")]
    chosen = pos[:keep].copy()
    if retain:  # every valid row's place and output are at hand, in the order of `pos`: the pool is positions into them
        output = pa.chunked_array(outputs, pa.dictionary(pa.int32(), pa.string())).unify_dictionaries().combine_chunks()
        return Pool(MappedRows(plan, method, sources, output), chosen, drops, seen)
    return Pool(TableRows(_chosen_rows(plan, method, sources, chosen)), np.arange(len(chosen), dtype=kind), drops, seen)


def _open_split(plan: Plan, ds: datasets.Dataset) -> tuple[RowMapper, SplitRows]:
    mapper = compile_plan(plan, ds.features)
    return mapper, SplitRows(ds, mapper.columns)


def _chosen_rows(plan: Plan, method: str, sources: list[SplitPositions], chosen: np.ndarray) -> pa.Table:
    """The chosen rows (positions over every split's valid rows), mapped again, in the order chosen."""
    counts = np.asarray([len(s.rows) for s in sources], dtype=np.int64)
    ends = np.cumsum(counts)
    chosen_split = np.searchsorted(ends, chosen, side="right")
    parts, picked = [], []
    for k, s in enumerate(sources):
        mine = np.flatnonzero(chosen_split == k)
        if not len(mine):
            continue
        source_rows = s.rows[chosen[mine] - (ends[k] - counts[k])]
        ascending = np.argsort(source_rows, kind="stable")
        m = s.mapper.map_arrow(s.source.take(source_rows[ascending]))  # only the chosen rows, read in source order
        parts.append(pa.table({"input": m.column("input"), "output": m.column("output"), "source_split": constant(s.name, len(mine)),
                               "source_row": pa.array(source_rows[ascending], pa.int64())}))
        picked.append(mine[ascending])
    if not parts:
        return _with_provenance(_empty_mapped(), plan, method)
    mapped = pa.concat_tables(parts).combine_chunks().take(pa.array(inverse(np.concatenate(picked)), pa.int64()))
    return _with_provenance(mapped, plan, method)


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
