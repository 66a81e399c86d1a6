"""Allocation: which pooled rows fill --size, over integer codes of the pool's columns (the
dictionary codes records.RowStore.codes gives: no row objects, no string per row); and the
Selection of the chosen rows, written a split and a chunk at a time (ChosenSplit).

The rule (unchanged from the list-based version, which the golden tests pin):
- sources are taken in `order`, each dataset with a capped share (`per_source_cap` of --size when
  there are two or more datasets), balanced across the task's labels when it has labels;
- `weak` sources (far from the task, see relevance.py) get no capped share: they fill only what
  the others leave;
- within a label, a first pass respects the caps, a second takes whatever is left;
- by split (`allocate_by_split`): train rows of near sources first, then their validation rows,
  then far sources, and test splits only while the set is still short.

Each (label, pass, source) step takes a prefix of that source's not-yet-chosen rows with that
label, so the whole allocation is a few numpy operations per source and label.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import pyarrow as pa

from .records import SCHEMA, Row, RowStore, codes_in, dictionary_codes, encoded, gathered_chunks, position_type, rows_to_table


def source_cap(size: int, per_source_cap: float, n_sources: int) -> int:
    return size if n_sources < 2 else max(1, math.ceil(size * per_source_cap))


def split_order(splits) -> list[str]:
    """Train first, then validation, other splits, test last: rows come from a benchmark's test split
    only when nothing else can fill the set."""
    pref = {"train": 0, "validation": 1, "dev": 1, "test": 3}
    return sorted(splits, key=lambda s: (pref.get(s, 2), s))


@dataclass
class _Codes:
    """The few columns allocation reads, as integer codes in the pool's row order."""

    known: list[str]  # source keys ("dataset:config"), the given order first
    key: np.ndarray  # per row, its source key's position in `known`
    label: np.ndarray | None  # per row, its output's position in the task's labels (-1: none of them)
    splits: list[str]  # split names, train first (split_order)
    split: np.ndarray  # per row, its split's position in `splits`


ALLOCATED = ["source_dataset", "source_config", "source_split", "output"]  # the columns allocation reads


def _pool_codes(table: pa.Table, source_order: list[str], labels: list[str] | None) -> _Codes:
    # the source key ("dataset:config") of each row as an integer, from the two columns' dictionary
    # codes: no string per row is made (a 2M-row pool would otherwise join 2M strings), and no sort
    ds, ds_values = dictionary_codes(table.column("source_dataset"))
    cfg, cfg_values = dictionary_codes(table.column("source_config"))
    width, space = len(cfg_values), len(ds_values) * len(cfg_values)
    pair = ds.astype(np.int64 if space >= 2**31 else np.int32) * width + cfg
    present = np.flatnonzero(np.bincount(pair, minlength=space))  # the (dataset, config) pairs there are, in code order
    names = [f"{ds_values[int(x) // width]}:{cfg_values[int(x) % width]}" for x in present.tolist()]
    known = list(dict.fromkeys([*source_order, *names]))
    where = np.zeros(space, dtype=np.int32)
    where[present] = [known.index(k) for k in names]
    key = where[pair]
    del pair
    split, split_values = dictionary_codes(table.column("source_split"))
    splits = split_order([split_values[c] for c in np.flatnonzero(np.bincount(split, minlength=len(split_values))).tolist()])
    label = codes_in(table.column("output"), labels) if labels else None
    return _Codes(known, key, label, splits, codes_in(table.column("source_split"), splits))


def allocate_indices(table: pa.Table, order: list[str], size: int, per_source_cap: float, labels: list[str] | None = None,
                     weak: set[str] | frozenset = frozenset(), rows: np.ndarray | None = None) -> np.ndarray:
    """Positions of the rows that fill `size`, in the order they are chosen.

    `table` holds the pool's `ALLOCATED` columns in the pool's order (strings or dictionary codes, as
    RowStore.codes gives them). `rows` restricts the choice to those positions (kept in their order),
    as `allocate_by_split_indices` does per tier.
    """
    return _allocate(_pool_codes(table, order, labels), order, size, per_source_cap, labels, weak, rows)


def _allocate(codes: _Codes, order: list[str], size: int, per_source_cap: float, labels: list[str] | None,
              weak: set[str] | frozenset, rows: np.ndarray | None) -> np.ndarray:
    kind = position_type(len(codes.key))[0]
    rows = None if rows is None else np.asarray(rows).astype(kind, copy=False)
    known = codes.known
    key_code = codes.key if rows is None else codes.key[rows]
    # each source's rows (positions in the pool, in order) and their label codes
    by_source = {k: (np.flatnonzero(key_code == i).astype(kind) if rows is None else rows[key_code == i]) for i, k in enumerate(known)}
    del key_code
    label_of = {k: (codes.label[mine] if labels else None) for k, mine in by_source.items()}
    n_sources = len({k.split(":")[0] for k in order if len(by_source.get(k, ())) and k not in weak})
    cap = source_cap(size, per_source_cap, n_sources)
    quotas: list[tuple[int | None, int]] = [(None, size)]
    if labels:
        quotas = [(i, size // len(labels) + (1 if i < size % len(labels) else 0)) for i in range(len(labels))]
    chosen: list[np.ndarray] = []
    taken = {k: 0 for k in by_source}  # rows without a label: how many of the source are chosen (a prefix)
    taken_label: dict[tuple[str, int], int] = {}
    for label, quota in quotas:
        label_cap = math.ceil(cap * quota / size) if size else 0
        got: dict[str, int] = {}
        picked = 0
        for strict in (True, False):
            for k in order:
                if picked >= quota:
                    break
                ds_name = k.split(":")[0]
                if (strict and k in weak) or k not in by_source:
                    continue
                if label is None:
                    eligible, start = by_source[k], taken[k]
                else:
                    eligible, start = by_source[k][label_of[k] == label], taken_label.get((k, label), 0)
                room = quota - picked
                if strict:
                    room = min(room, label_cap - got.get(ds_name, 0))
                n = max(0, min(room, len(eligible) - start))
                if not n:
                    continue
                chosen.append(eligible[start:start + n])
                if label is None:
                    taken[k] += n
                else:
                    taken_label[(k, label)] = start + n
                got[ds_name] = got.get(ds_name, 0) + n
                picked += n
    return np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)


def allocate_by_split_indices(table: pa.Table, order: list[str], size: int, per_source_cap: float, labels: list[str] | None = None,
                              weak: set[str] | frozenset = frozenset()) -> np.ndarray:
    """`allocate_indices` over train rows of the near sources first; then their validation rows, then far
    (weak) sources' train and validation rows, and test splits only while the set is still short."""
    codes = _pool_codes(table, order, labels)
    if not len(codes.key):
        return np.zeros(0, dtype=np.int64)
    ranked = codes.splits
    test_rank = ranked.index("test") if "test" in ranked else len(ranked)
    split_rank = codes.split
    weak_codes = [i for i, k in enumerate(codes.known) if k in weak]
    far = np.isin(codes.key, weak_codes) if weak_codes else np.zeros(len(codes.key), dtype=bool)
    # a row's tier (test split?, far source?, split rank) as one integer that sorts as the tuple does
    width = len(ranked) + 1
    tier = ((split_rank >= test_rank).astype(np.int32) * 2 + far) * width + split_rank
    lowest = int(tier.min())
    tiers = (np.flatnonzero(np.bincount(tier - lowest)) + lowest).tolist()
    chosen = np.zeros(0, dtype=np.int64)
    for t in tiers:
        # the last tier is every row: no list of them is made
        chosen = _allocate(codes, order, size, per_source_cap, labels, weak, np.flatnonzero(tier <= t) if t < tiers[-1] else None)
        if len(chosen) >= size:
            break
    return chosen


def rest_indices(n_rows: int, chosen: np.ndarray, need: int) -> np.ndarray:
    """The first `need` positions not in `chosen`, in pool order (what fills a gap top-up left)."""
    if need <= 0:
        return np.zeros(0, dtype=np.int64)
    free = np.ones(n_rows, dtype=bool)
    free[chosen] = False
    return np.flatnonzero(free)[:need]


# -- the list-of-rows forms (library callers, tests) ----------------------------------------------
def allocate(rows: list[Row], order: list[str], size: int, per_source_cap: float, labels: list[str] | None = None,
             weak: set[str] | frozenset = frozenset()) -> list[Row]:
    idx = allocate_indices(rows_to_table(rows) if rows else SCHEMA.empty_table(), order, size, per_source_cap, labels, weak=weak)
    return [rows[i] for i in idx.tolist()]


class Selection:
    """The rows a build has chosen: positions in the pool while no stage rewrote a row, so that
    choosing, topping up and shuffling cost no string; a table of their own once a stage
    (verification, top-up) gives rows back.

    The pool's rows are `pool`'s (a records.RowStore) at the positions `view` (in that order);
    `index` are positions in the pool's order."""

    def __init__(self, pool: RowStore, index: np.ndarray, view: np.ndarray | None = None):
        self.pool = pool
        kind = position_type(pool.num_rows)[0]
        self.view = np.arange(pool.num_rows, dtype=kind) if view is None else np.asarray(view).astype(kind, copy=False)
        self.allocated = np.asarray(index).astype(kind, copy=False)
        self._index: np.ndarray | None = self.allocated
        self._own: pa.Table | None = None

    @property
    def num_rows(self) -> int:
        return len(self._index) if self._index is not None else self._own.num_rows

    def table(self) -> pa.Table:
        if self._own is not None:
            return self._own
        return self.pool.gather(self.view[self._index])

    def replace(self, table: pa.Table) -> None:
        self._own, self._index = table, None

    def fill_to(self, size: int) -> None:
        """Cut to `size`, or top up from pool rows allocation did not choose (when synthetic rows could not fill a gap)."""
        if self.num_rows >= size:
            if self._index is not None:
                self._index = self._index[:size]
            else:
                self._own = self._own.slice(0, size)
            return
        extra = rest_indices(len(self.view), self.allocated, size - self.num_rows)
        if not len(extra):
            return
        if self._index is not None:
            self._index = np.concatenate([self._index, extra])
        else:
            self._own = pa.concat_tables([self._own, self.pool.gather(self.view[extra])])

    def reorder(self, order: np.ndarray) -> None:
        if self._index is not None:
            self._index = self._index[order]
        else:
            self._own = self._own.take(pa.array(order, pa.int64()))

    def rows_between(self, lo: int, hi: int, columns: Sequence[str] | None = None) -> pa.Table:
        """The chosen rows lo..hi (in the selection's order) as a table of their own; with `columns`, only
        those, string columns dictionary-encoded (RowStore.codes)."""
        if self._own is not None:
            t = self._own.slice(lo, hi - lo)
            return encoded(t.select(list(columns))) if columns is not None else t
        positions = self.view[self._index[lo:hi]]
        return self.pool.codes(positions, columns) if columns is not None else self.pool.gather(positions)

    def chunks(self, lo: int, hi: int, size: int) -> Iterator[pa.Table]:
        """The chosen rows lo..hi, whole, `size` at a time (records.gathered_chunks)."""
        if self._own is not None:
            for a in range(lo, hi, size):
                yield self._own.slice(a, min(size, hi - a))
            return
        yield from gathered_chunks(self.pool, self.view[self._index[lo:hi]], size)

    def rows_at(self, positions: np.ndarray) -> pa.Table:
        """The chosen rows at these positions of the selection's order."""
        positions = np.asarray(positions, dtype=np.int64)
        if self._own is not None:
            return self._own.take(pa.array(positions, pa.int64()))
        return self.pool.gather(self.view[self._index[positions]])

    def split(self, lo: int, hi: int) -> "ChosenSplit":
        return ChosenSplit(self, lo, hi)


WRITE_CHUNK = 131_072  # rows gathered (and written as one parquet row group) at a time


@dataclass
class ChosenSplit:
    """One output split: rows lo..hi of a Selection, gathered a chunk at a time when written, so a
    build never holds its output as one more table beside the pool."""

    selection: Selection
    lo: int
    hi: int

    @property
    def num_rows(self) -> int:
        return self.hi - self.lo

    def batches(self, size: int = WRITE_CHUNK) -> Iterator[pa.Table]:
        yield from self.selection.chunks(self.lo, self.hi, size)

    def columns(self, names: Sequence[str]) -> pa.Table:
        """Only these columns of the split's rows, string columns dictionary-encoded (what counts and the card read)."""
        return self.selection.rows_between(self.lo, self.hi, names)

    def rows_at(self, positions: np.ndarray) -> pa.Table:
        return self.selection.rows_at(np.asarray(positions, dtype=np.int64) + self.lo)

    def table(self) -> pa.Table:
        return self.selection.rows_between(self.lo, self.hi)
