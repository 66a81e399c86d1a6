"""The local engine: batches mapped one after another in this process."""

from __future__ import annotations

from typing import Iterator

import datasets
import pyarrow as pa


def arrow_batches(ds: datasets.Dataset, columns: list[str], batch_size: int) -> Iterator[pa.Table]:
    """`ds`'s rows as Arrow tables of `batch_size` rows, only `columns` (those present)."""
    ds = ds.select_columns([c for c in columns if c in ds.column_names]).with_format("arrow")
    yield from ds.iter(batch_size=batch_size)


class LocalEngine:
    name = "local"

    def map_split(self, mapper, ds: datasets.Dataset, *, batch_size: int) -> Iterator[pa.Table]:
        for table in arrow_batches(ds, mapper.columns, batch_size):
            yield mapper.map_arrow(table)
