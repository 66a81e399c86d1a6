"""The row contract of a built dataset: every row says where it came from."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

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


def constant(value: str, n: int) -> pa.Array:
    """A string column holding one value n times, without a Python list of n items."""
    import numpy as np

    return pa.array([value], pa.string()).take(pa.array(np.zeros(n, dtype=np.int64)))


def count_by(table: pa.Table, columns: list[str]) -> list[tuple[tuple, int]]:
    """(values, rows) for each distinct combination of `columns`, most rows first, ties in order of first
    appearance (as `collections.Counter.most_common` orders them)."""
    if not table.num_rows:
        return []
    g = table.select(columns).group_by(columns, use_threads=False).aggregate([([], "count_all")])
    keys = list(zip(*(g.column(c).to_pylist() for c in columns)))
    counts = g.column("count_all").to_pylist()
    return sorted(zip(keys, counts), key=lambda kv: -kv[1])
