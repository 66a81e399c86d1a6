"""The local engine: batches mapped one after another in this process."""

from __future__ import annotations

from collections import Counter
from typing import Callable, Iterator, Mapping, Sequence

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

    def map_blocks(self, fn: Callable[[Sequence], object], items: Sequence, *, block: int) -> list:
        return [fn(items)]  # one process: blocks would only add calls

    def fill_llm(self, plan, chunks: Mapping[int, list], llm) -> Iterator[tuple[int, list, Counter]]:
        """Each chunk's per-row LLM fields (execute.fill_llm_fields) in this process, in index order; the
        chunks' rows are left as they were (the filled rows are copies, as they are on Ray)."""
        from ..execute import fill_llm_fields
        from ..records import Row

        for idx in sorted(chunks):
            done, drops = fill_llm_fields(plan, [Row(**r.to_dict()) for r in chunks[idx]], llm)
            yield idx, done, drops
