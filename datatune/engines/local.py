"""The local engine: batches mapped one after another in this process."""

from __future__ import annotations

from typing import Iterator

import datasets
import pyarrow as pa

from .source import SplitRows


def split_rows(source: "datasets.Dataset | SplitRows", columns: list[str]) -> SplitRows:
    """`source` as a SplitRows of `columns` (a Dataset is opened; a SplitRows is kept as it is)."""
    return source if isinstance(source, SplitRows) else SplitRows(source, columns)


def arrow_batches(source: "datasets.Dataset | SplitRows", columns: list[str], batch_size: int) -> Iterator[pa.Table]:
    """The split's rows as Arrow tables of `batch_size` rows, only `columns` (those present)."""
    yield from split_rows(source, columns).batches(batch_size)


class LocalEngine:
    name = "local"

    def map_split(self, mapper, source: "datasets.Dataset | SplitRows", *, batch_size: int) -> Iterator[pa.Table]:
        for table in arrow_batches(source, mapper.columns, batch_size):
            yield mapper.map_arrow(table)
