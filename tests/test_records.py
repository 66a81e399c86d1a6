"""records.py: counts over integer codes, and the row stores a build writes from (Buckets, ConcatRows)."""

from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pyarrow as pa
import pytest

from datatune.records import SCHEMA, Buckets, ConcatRows, TableRows, codes_in, concat, count_by, encoded, gathered_chunks


def table_of(n: int, seed: int) -> pa.Table:
    rng = random.Random(seed)
    return pa.table({
        "a": [rng.choice(["x", "y", "z", None]) for _ in range(n)],
        "b": [rng.choice(["p", "q"]) for _ in range(n)],
        "c": [f"free text {rng.randrange(n)}" for _ in range(n)],
    })


def counter_order(table: pa.Table, columns: list[str]) -> list[tuple[tuple, int]]:
    """What count_by promises: Counter.most_common over the rows (ties in order of first appearance)."""
    return list(Counter(tuple(r[c] for c in columns) for r in table.to_pylist()).most_common())


@pytest.mark.parametrize("columns", [["a"], ["a", "b"], ["c"], ["b", "c", "a"]])
@pytest.mark.parametrize("form", ["strings", "dictionary", "chunks with other dictionaries"])
def test_count_by_is_counter_most_common(columns, form):
    table = table_of(3000, 1)
    if form == "dictionary":
        table = encoded(table)
    elif form == "chunks with other dictionaries":
        table = concat([encoded(table.slice(0, 1000)), encoded(table.slice(1000, 1500)), encoded(table.slice(2500))])
    assert count_by(table, columns) == counter_order(table_of(3000, 1), columns)


def test_count_by_keeps_ties_in_order_of_first_appearance():
    table = pa.table({"k": ["b", "a", "c", "a", "b", "c", "d"]})
    assert count_by(table, ["k"]) == [(("b",), 2), (("a",), 2), (("c",), 2), (("d",), 1)]
    assert count_by(table.slice(0, 0), ["k"]) == []


def test_codes_in_is_each_value_s_place_or_minus_one():
    column = pa.chunked_array([pa.array(["neg", None, "pos"]).dictionary_encode(), pa.array(["pos", "other"])
                               .dictionary_encode()]).unify_dictionaries()
    assert codes_in(column, ["pos", "neg"]).tolist() == [1, -1, 0, 0, -1]
    assert codes_in(pa.array(["neg", "x"]), ["pos", "neg"]).tolist() == [1, -1]


class OnDisk(TableRows):
    """A table store written through Buckets, as a store that maps its rows again is."""

    in_memory = False


def rows_table(n: int, tag: str) -> pa.Table:
    return pa.table({"input": [f"{tag} input {i}" for i in range(n)], "output": [f"out {i % 3}" for i in range(n)],
                     "source_dataset": [tag] * n, "source_config": ["default"] * n, "source_split": ["train" if i % 4 else "test" for i in range(n)],
                     "source_row": list(range(n)), "method": ["mapped"] * n, "check": [""] * n}, schema=SCHEMA)


@pytest.mark.parametrize("size", [1, 7, 64, 1000])
def test_chunks_written_through_buckets_are_the_rows_in_order(size):
    parts = [rows_table(150, "a/one"), rows_table(90, "b/two")]
    store = ConcatRows([OnDisk(parts[0]), TableRows(parts[1])])
    positions = np.random.default_rng(size).permutation(store.num_rows)[:200]
    want = concat(parts).take(pa.array(positions)).to_pylist()
    chunks = list(gathered_chunks(store, positions, size))
    assert [c.num_rows for c in chunks[:-1]] == [size] * (len(chunks) - 1)
    assert concat(chunks).to_pylist() == want
    assert store.gather(positions).to_pylist() == want
    codes = store.codes(positions, ["output", "source_dataset", "source_row"])
    assert [{k: r[k] for k in ("output", "source_dataset", "source_row")} for r in want] == codes.to_pylist()


def test_buckets_read_back_in_target_order(tmp_path):
    with Buckets(3, 4) as sink:
        folder = sink.folder
        sink.add(np.array([9, 0, 5]), pa.array(["nine", "zero", "five"]))
        sink.add(np.array([4, 1, 8, 6, 2, 7, 3]), pa.array(["four", "one", "eight", "six", "two", "seven", "three"]))
        assert [sink.read(b).to_pylist() for b in range(3)] == [["zero", "one", "two", "three"], ["four", "five", "six", "seven"], ["eight", "nine"]]
    assert not folder.exists()
