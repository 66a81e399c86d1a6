"""A source split's rows as Arrow, read so that the pages read do not stay in the process.

`datasets` keeps a split in memory-mapped Arrow files: every page a pass reads stays resident
(RssFile) until the mapping goes, and the kernel maps 64 KB around each page fault, so one pass or
one random sample of a few thousand rows makes the whole file resident (270 MB at 2M short rows).
`SplitRows` maps the same files again, read-only, in this process and gives the pages back
(`madvise(MADV_DONTNEED)`) as reading moves on: a page given back is read again from the page
cache when it is next touched, so nothing changes but what stays resident.

That needs the split to be its files unchanged: no indices mapping (a `select` or `shuffle`) and
nothing replayed over the files but a column selection or new metadata (no `cast`, no `rename`);
any other split is read through `datasets` as before (`SplitRows` over the `Dataset`), the same
rows either way.
"""

from __future__ import annotations

import mmap
from typing import Iterator, Sequence

import datasets
import numpy as np
import pyarrow as pa

RELEASE_BYTES = 32 * 2**20  # source bytes read between two hand-backs of the pages read
RELEASE_BATCHES = 256  # record batches whose headers are read between two hand-backs, when a split is opened
SAME_ROWS = frozenset({"replace_schema_metadata", "select", "drop", "remove_column"})  # replays that leave the files' rows as they are


def _plain_files(ds: datasets.Dataset) -> list[str] | None:
    """The Arrow files whose rows, one after another, are `ds`'s rows; None when `ds` is more than that."""
    from datasets.table import ConcatenationTable, MemoryMappedTable

    if getattr(ds, "_indices", None) is not None:
        return None
    data = ds.data
    if isinstance(data, MemoryMappedTable):
        blocks = [data]
    elif isinstance(data, ConcatenationTable) and all(len(row) == 1 for row in data.blocks):
        blocks = [row[0] for row in data.blocks]
    else:
        return None
    if not all(isinstance(b, MemoryMappedTable) and all(r[0] in SAME_ROWS for r in b.replays) for b in blocks):
        return None
    return [b.path for b in blocks]


class SplitRows:
    """One split's rows, only `columns`: batches in order, slices, or the rows at ascending positions.

    Read through this process's own read-only mapping of the split's Arrow files when `ds` is just
    those files (see the module docstring), else through `ds`."""

    def __init__(self, ds: datasets.Dataset, columns: Sequence[str]):
        self.columns = [c for c in columns if c in ds.column_names]
        self.num_rows = len(ds)
        self._maps: list[mmap.mmap] = []
        self._table = self._own_table(ds)
        self._ds = ds.select_columns(self.columns).with_format("arrow") if self._table is None else None
        # (a string column's nbytes reads its offsets, which faults pages in: the files' size stands in)
        self.nbytes = sum(len(m) for m in self._maps) if self._table is not None else ds.data.nbytes
        self._every = max(1, RELEASE_BYTES * self.num_rows // max(1, self.nbytes))  # rows read between two hand-backs
        if self._table is not None:
            self._batches = self._table.to_batches()
            self._starts = np.cumsum([0] + [b.num_rows for b in self._batches], dtype=np.int64)

    def _own_table(self, ds: datasets.Dataset) -> pa.Table | None:
        files = _plain_files(ds)
        if not files:
            return None
        tables = []
        for path in files:
            with open(path, "rb") as f:
                m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            self._maps.append(m)
            batches = []
            for batch in pa.ipc.open_stream(pa.py_buffer(m)):  # reading the batches' headers faults pages in too
                batches.append(batch)
                if len(batches) % RELEASE_BATCHES == 0:
                    self.release()
            if batches:
                tables.append(pa.Table.from_batches(batches))
        self.release()
        try:
            table = pa.concat_tables(tables).select(self.columns) if tables else None
        except (KeyError, pa.ArrowInvalid):
            return None
        if table is None or table.num_rows != self.num_rows or not table.schema.equals(ds.data.table.select(self.columns).schema):
            return None  # not the rows `datasets` reads: read through it
        return table

    @property
    def own_mapping(self) -> bool:
        return self._table is not None

    def release(self) -> None:
        """Give back the pages read so far (they are read again from the page cache when touched)."""
        for m in self._maps:
            m.madvise(mmap.MADV_DONTNEED)

    def batches(self, size: int) -> Iterator[pa.Table]:
        """The rows in order, `size` at a time (as `datasets`' iter(batch_size=size) cuts them)."""
        if self._table is None:
            yield from self._ds.iter(batch_size=size)
            return
        since = 0
        for start in range(0, self.num_rows, size):
            yield self._table.slice(start, size)
            since += size
            if since >= self._every:
                self.release()
                since = 0
        self.release()

    def slice(self, start: int, n: int) -> pa.Table:
        """Rows start..start+n, zero-copy where the files are mapped here."""
        if self._table is None:
            return self._ds[start:start + n]
        return self._table.slice(start, n)

    def take(self, rows: np.ndarray) -> pa.Table:
        """The rows at these ascending positions, in that order (a copy)."""
        rows = np.asarray(rows, dtype=np.int64)
        if self._table is None:
            return self._ds[rows.tolist()] if len(rows) else self._ds[:0]
        if not len(rows):
            return self._table.slice(0, 0)
        # a take per record batch: Arrow's take over a many-chunk column concatenates the whole column first
        which = np.searchsorted(self._starts, rows, side="right") - 1
        cuts = np.flatnonzero(np.diff(which)) + 1
        parts, since = [], 0
        for lo, hi in zip(np.concatenate([[0], cuts]), np.concatenate([cuts, [len(rows)]])):
            k = int(which[lo])
            batch = self._batches[k]
            parts.append(batch.take(pa.array(rows[lo:hi] - self._starts[k])))
            since += batch.num_rows
            if since >= self._every:
                self.release()
                since = 0
        self.release()
        return pa.Table.from_batches(parts, schema=self._table.schema)
