"""The row contract of a built dataset: every row says where it came from; and where a build's rows
are held until they are written (a `RowStore`).

A store gives whole rows by position (`gather`), or only some columns as dictionary codes (`codes`:
what allocation and the counts read, no string per row), and writes large selections a chunk at a
time (`gathered_chunks`): a store that is not in memory (execute.MappedRows, rows mapped again from
their source) scatters the chosen rows' inputs into one temporary Arrow file per chunk in a single
pass over its sources, and each chunk is read back and put in order when it is written.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import math
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Protocol, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

METHODS = ("mapped", "llm", "synthetic")


@dataclass(slots=True)
class Row:
    input: str
    output: str
    source_dataset: str = ""  # e.g. "openai/gsm8k"; empty for synthetic rows
    source_config: str = ""
    source_split: str = ""
    source_row: int = -1  # index of the row in that split; -1 for synthetic rows
    method: str = "mapped"
    check: str = ""  # label verification outcome: "" (not checked), "agree", "disagree:flagged", "code:error"... (verify.py)

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in FIELDS}


FIELDS = ("input", "output", "source_dataset", "source_config", "source_split", "source_row", "method", "check")


SCHEMA = pa.schema(
    [
        ("input", pa.string()),
        ("output", pa.string()),
        ("source_dataset", pa.string()),
        ("source_config", pa.string()),
        ("source_split", pa.string()),
        ("source_row", pa.int64()),
        ("method", pa.string()),
        ("check", pa.string()),
    ]
)


def rows_to_table(rows: list[Row]) -> pa.Table:
    return pa.Table.from_pylist([r.to_dict() for r in rows], schema=SCHEMA)


def table_to_rows(table: pa.Table) -> list[Row]:
    """Rows of a table; columns added to the contract later (`check`) default when an older shard lacks them."""
    names = [n for n in SCHEMA.names if n in table.column_names]
    return [Row(**d) for d in table.select(names).to_pylist()]


def as_table(rows: "list[Row] | pa.Table") -> pa.Table:
    """Rows as a table of the contract's columns (a table is returned as it is)."""
    return rows if isinstance(rows, pa.Table) else rows_to_table(list(rows))


def concat(tables: list[pa.Table]) -> pa.Table:
    return pa.concat_tables(tables) if tables else SCHEMA.empty_table()


def position_type(n: int) -> tuple[type, str]:
    """The integer type for positions among n rows, as numpy's and `array`'s type: 32 bits below 2^31 rows
    (a build's position arrays are most of its memory at millions of rows), 64 above."""
    return (np.int32, "i") if n < 2**31 else (np.int64, "q")


def indices(positions: np.ndarray) -> pa.Array:
    """Positions as an Arrow array for a take, in their own integer type (an empty list as int64)."""
    a = np.asarray(positions)
    return pa.array(a if a.dtype.kind in "iu" else a.astype(np.int64))


def constant(value: str, n: int) -> pa.Array:
    """A string column holding one value n times, without a Python list of n items."""
    return pa.array([value], pa.string()).take(pa.array(np.zeros(n, dtype=np.int64)))


def coded(values: Sequence[str], codes: np.ndarray) -> pa.DictionaryArray:
    """A dictionary-encoded string column: `values[codes[i]]` for each row (4 bytes a row)."""
    return pa.DictionaryArray.from_arrays(pa.array(np.asarray(codes, dtype=np.int32), pa.int32()), pa.array(list(values), pa.string()))


def encoded(table: pa.Table) -> pa.Table:
    """`table` with its string columns dictionary-encoded (as `RowStore.codes` gives them)."""
    return pa.table({n: pc.dictionary_encode(c) if pa.types.is_string(c.type) or pa.types.is_large_string(c.type) else c
                     for n, c in zip(table.column_names, table.columns)})


def dictionary_codes(column: "pa.ChunkedArray | pa.Array") -> tuple[np.ndarray, list]:
    """A column as integer codes (the dictionary's index type), one per row, and the distinct values they stand for (a null is None)."""
    col = column if isinstance(column, pa.ChunkedArray) else pa.chunked_array([column])
    if not pa.types.is_dictionary(col.type):
        col = pc.dictionary_encode(col)
    col = col.unify_dictionaries()
    if not col.num_chunks:
        return np.zeros(0, dtype=np.int64), [None]
    values = col.chunk(0).dictionary.to_pylist() + [None]
    null = len(values) - 1
    codes = np.concatenate([pc.fill_null(c.indices, null).to_numpy() for c in col.chunks])  # int32 as Arrow holds them
    first = {}
    remap = np.asarray([first.setdefault(v, i) for i, v in enumerate(values)], dtype=codes.dtype)
    if len(first) < len(values):  # a dictionary may repeat a value: one code per distinct value
        codes = remap[codes]
    return codes, values


def codes_in(column: "pa.ChunkedArray | pa.Array", values: Sequence[str]) -> np.ndarray:
    """Position of each row's value in `values` (-1 when it is none of them), from the column's dictionary codes."""
    codes, present = dictionary_codes(column)
    where = {v: i for i, v in enumerate(values)}
    lookup = np.asarray([where.get(v, -1) if v is not None else -1 for v in present], dtype=np.int32)
    return lookup[codes]


def count_by(table: pa.Table, columns: list[str]) -> list[tuple[tuple, int]]:
    """(values, rows) for each distinct combination of `columns`, most rows first, ties in order of first
    appearance (as `collections.Counter.most_common` orders them). Counted over integer codes."""
    n = table.num_rows
    if not n:
        return []
    cols = [dictionary_codes(table.column(c)) for c in columns]
    kind = np.int32 if math.prod(len(values) for _, values in cols) < 2**31 else np.int64
    key, space = np.zeros(n, dtype=kind), 1
    for codes, values in cols:
        if space * len(values) > 2**40:  # renumber the combinations seen so far, so the key stays small
            _, key = np.unique(key, return_inverse=True)
            key, space = key.reshape(-1).astype(np.int64), int(key.max()) + 1
        key = key * len(values) + codes
        space *= len(values)
    first, counts = _first_and_counts(key, space)
    order = np.lexsort((first, -counts))
    return [(tuple(values[codes[f]] for codes, values in cols), int(c)) for f, c in zip(first[order].tolist(), counts[order].tolist())]


def _first_and_counts(key: np.ndarray, space: int) -> tuple[np.ndarray, np.ndarray]:
    """For each distinct key, the row it first appears at and its number of rows."""
    if space <= max(1 << 16, 4 * len(key)):
        counts = np.bincount(key, minlength=space)
        present = np.flatnonzero(counts)
        if len(present) <= 64:  # a few distinct keys (labels, sources): where each first appears, one scan each
            return np.asarray([int(np.argmax(key == k)) for k in present.tolist()], dtype=np.int64), counts[present]
        first = np.full(space, len(key), dtype=np.int64)
        np.minimum.at(first, key, np.arange(len(key), dtype=np.int64))
        return first[present], counts[present]
    _, first, counts = np.unique(key, return_index=True, return_counts=True)
    return first, counts


@functools.cache
def _libc_trim():
    """glibc's malloc_trim, or None where the C library has none (musl, macOS)."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def release_unused() -> None:
    """Freed memory back to the system: Arrow's pool's, and the C heap's that numpy arrays come from
    (glibc keeps freed blocks of up to 32 MB for reuse, so a stage's transient arrays would otherwise
    stay in the process's footprint for the rest of the build)."""
    pa.default_memory_pool().release_unused()
    trim = _libc_trim()
    if trim is not None:
        trim(0)


# -- where a build's rows are held ----------------------------------------------------------------
CODED = ("output", "source_dataset", "source_config", "source_split", "source_row", "method", "check")  # all but the input


class RowStore(Protocol):
    """A build's rows (SCHEMA) held somewhere, read by position (0..num_rows-1)."""

    num_rows: int
    in_memory: bool  # gathering is a take from a table (no source to read again)

    def gather(self, positions: np.ndarray) -> pa.Table:
        """Whole rows (SCHEMA) at these positions, in that order."""
        ...

    def codes(self, positions: np.ndarray, columns: Sequence[str]) -> pa.Table:
        """Only `columns` at these positions, in that order, string columns dictionary-encoded."""
        ...

    def scatter(self, positions: np.ndarray, targets: np.ndarray, sink: "Buckets") -> None:
        """The input of the row at each of `positions` into `sink`, at the matching place in `targets`."""
        ...


def with_input(inputs: "pa.ChunkedArray | pa.Array", rest: pa.Table) -> pa.Table:
    """Whole rows (SCHEMA) from their inputs and the other columns (`CODED`, dictionary-encoded or not)."""
    columns = {"input": inputs, **{n: rest.column(n) for n in CODED}}
    return pa.table({f.name: columns[f.name].cast(f.type) for f in SCHEMA}, schema=SCHEMA)


def inverse(order: np.ndarray) -> np.ndarray:
    """The permutation that undoes `order` (result[order] = 0..n-1)."""
    out = np.empty(len(order), dtype=np.int64)
    out[order] = np.arange(len(order), dtype=np.int64)
    return out


class TableRows:
    """Rows held as a table (one chunk, so that a take does not concatenate first)."""

    in_memory = True

    def __init__(self, table: pa.Table):
        self.table = table.combine_chunks()
        self.num_rows = table.num_rows

    def gather(self, positions: np.ndarray) -> pa.Table:
        return self.table.take(indices(positions))

    def codes(self, positions: np.ndarray, columns: Sequence[str]) -> pa.Table:
        return encoded(self.table.select(list(columns)).take(indices(positions)))

    def scatter(self, positions: np.ndarray, targets: np.ndarray, sink: "Buckets") -> None:
        inputs = self.table.column("input")
        for a in range(0, len(positions), sink.size):
            sink.add(targets[a:a + sink.size], inputs.take(indices(positions[a:a + sink.size])))


class ConcatRows:
    """Several stores' rows one after another (the pools of a build, in plan order)."""

    def __init__(self, parts: Sequence[RowStore]):
        self.parts = list(parts)
        self.starts = np.cumsum([0] + [p.num_rows for p in self.parts], dtype=np.int64)
        self.num_rows = int(self.starts[-1])
        self.in_memory = all(p.in_memory for p in self.parts)

    def _by_part(self, positions: np.ndarray) -> Iterator[tuple[RowStore, np.ndarray, np.ndarray]]:
        """(part, which of `positions` are its rows, their positions in the part)."""
        positions = np.asarray(positions, dtype=np.int64)
        part = np.searchsorted(self.starts, positions, side="right") - 1
        for k, p in enumerate(self.parts):
            mine = np.flatnonzero(part == k)
            if len(mine):
                yield p, mine, positions[mine] - self.starts[k]

    def _in_order(self, pieces: list[tuple[np.ndarray, pa.Table]], schema: pa.Schema | None = None) -> pa.Table:
        if len(pieces) == 1:
            return pieces[0][1]
        if not pieces:
            return schema.empty_table()
        table = pa.concat_tables([t for _, t in pieces]).unify_dictionaries().combine_chunks()
        return table.take(pa.array(inverse(np.concatenate([m for m, _ in pieces])), pa.int64()))

    def gather(self, positions: np.ndarray) -> pa.Table:
        if len(self.parts) == 1:
            return self.parts[0].gather(positions)
        return self._in_order([(mine, p.gather(local)) for p, mine, local in self._by_part(positions)], SCHEMA)

    def codes(self, positions: np.ndarray, columns: Sequence[str]) -> pa.Table:
        if len(self.parts) == 1:
            return self.parts[0].codes(positions, columns)
        pieces = [(mine, p.codes(local, columns)) for p, mine, local in self._by_part(positions)]
        return self._in_order(pieces, encoded(SCHEMA.empty_table().select(list(columns))).schema)

    def scatter(self, positions: np.ndarray, targets: np.ndarray, sink: "Buckets") -> None:
        if len(self.parts) == 1:
            self.parts[0].scatter(positions, targets, sink)
            return
        for p, mine, local in self._by_part(positions):
            p.scatter(local, np.asarray(targets, dtype=np.int64)[mine], sink)


class Buckets:
    """Inputs scattered into one temporary Arrow file per `size` consecutive targets, read back in order."""

    SCHEMA = pa.schema([("target", pa.int64()), ("input", pa.string())])

    def __init__(self, n: int, size: int):
        self.n, self.size = n, size
        self.folder = Path(tempfile.mkdtemp(prefix="datatune-rows-"))
        self._writers: dict[int, tuple] = {}

    def __enter__(self) -> "Buckets":
        return self

    def __exit__(self, *exc) -> None:
        for stream, writer in self._writers.values():
            writer.close()
            stream.close()
        self._writers.clear()
        shutil.rmtree(self.folder, ignore_errors=True)

    def add(self, targets: np.ndarray, inputs: "pa.ChunkedArray | pa.Array") -> None:
        if not len(targets):
            return
        targets = np.asarray(targets, dtype=np.int64)
        bucket = targets // self.size
        order = np.argsort(bucket.astype(np.uint16) if self.n <= 1 << 16 else bucket, kind="stable")  # (a radix sort for 16-bit keys)
        table = pa.table({"target": targets[order], "input": inputs.take(pa.array(order, pa.int64()))}, schema=self.SCHEMA)
        cuts = np.searchsorted(bucket[order], np.arange(bucket.min(), bucket.max() + 2))
        for b, (lo, hi) in enumerate(zip(cuts[:-1], cuts[1:]), start=int(bucket.min())):
            if hi > lo:
                self._writer(b).write_table(table.slice(lo, hi - lo))

    def _writer(self, b: int):
        if b not in self._writers:
            stream = pa.output_stream(str(self.folder / f"{b}.arrow"), buffer_size=1 << 16)
            self._writers[b] = (stream, pa.ipc.new_stream(stream, self.SCHEMA))
        return self._writers[b][1]

    def read(self, b: int) -> pa.ChunkedArray:
        """The inputs of targets b*size.. in target order (the bucket's file is removed)."""
        if b not in self._writers:
            return pa.chunked_array([], pa.string())
        stream, writer = self._writers.pop(b)
        writer.close()
        stream.close()
        path = self.folder / f"{b}.arrow"
        with pa.input_stream(str(path)) as f:
            table = pa.ipc.open_stream(f).read_all()
        path.unlink()
        place = table.column("target").to_numpy() - b * self.size
        return table.column("input").take(pa.array(inverse(place), pa.int64()))


def gathered_chunks(store: RowStore, positions: np.ndarray, size: int) -> Iterator[pa.Table]:
    """Whole rows (SCHEMA) at `positions`, in that order, `size` at a time. A store in memory is taken
    from chunk by chunk; any other scatters every chosen input into Buckets in one pass first."""
    positions = np.asarray(positions)
    if store.in_memory:
        for a in range(0, len(positions), size):
            yield store.gather(positions[a:a + size])
        return
    n_chunks = -(-len(positions) // size)
    with Buckets(n_chunks, size) as sink:
        store.scatter(positions, np.arange(len(positions), dtype=position_type(len(positions))[0]), sink)
        release_unused()  # the scatter's sort orders
        for b in range(n_chunks):
            part = positions[b * size:(b + 1) * size]
            yield with_input(sink.read(b), store.codes(part, CODED))
