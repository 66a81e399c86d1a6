"""Where compiled plans run: `local` (this process) or `ray` (Ray Data, on a laptop or a cluster).

An engine maps a source split's Arrow batches through a compiled plan (`compile.RowMapper.map_arrow`)
and yields the mapped batches in source order. The split comes as a `datasets.Dataset` or as the
`source.SplitRows` the build reads it through (its pages given back as the pass moves on).
Everything after (which rows are valid, the seeded pool, allocation, output) reads positions, so
the same plans and seed give the same rows whichever engine mapped them.

An engine also fills per-row LLM fields, a chunk of rows at a time: `local` sends each chunk's requests
from this process; `ray` runs chunks as Ray tasks, each a client of the same endpoint with the LLM's
concurrency, cache and a reserved share of its call budget (llm/portable.py). And it runs curation's
per-row work over the pooled rows (`map_blocks`: exact-duplicate keys, the word tokens near-duplicate
removal and the contamination check read), the same keys and tokens either way.
"""

from __future__ import annotations

from collections import Counter
from typing import Callable, Iterator, Mapping, Protocol, Sequence

import datasets
import pyarrow as pa

from ..core.errors import ConfigError
from .source import SplitRows

ENGINES = ("local", "ray")


class Engine(Protocol):
    name: str

    def map_split(self, mapper, source: "datasets.Dataset | SplitRows", *, batch_size: int) -> Iterator[pa.Table]:
        """`mapper.map_arrow` over the split's batches (only the columns the plan reads), in source order:
        the yielded tables have columns input, output, drop and as many rows as the split in all."""
        ...

    def map_blocks(self, fn: Callable[[Sequence], object], items: Sequence, *, block: int) -> list:
        """`fn` over `items` a block of at most `block` items at a time, the results in block order (local:
        one call over all items; ray: a task per block). `fn` must give the same result over the blocks as
        over the whole, concatenated: curation's per-row work (duplicate keys, tokens) is such a function."""
        ...

    def fill_llm(self, plan, chunks: Mapping[int, list], llm) -> Iterator[tuple[int, list, Counter]]:
        """The plan's per-row LLM fields filled in each chunk of rows (execute.fill_llm_fields), yielded
        as (chunk index, rows whose calls succeeded, drops) as chunks finish; every request counts
        against `llm`'s budget and usage wherever it was sent."""
        ...


def get_engine(name: str = "local") -> Engine:
    """The engine called `name`; `ray` joins DATATUNE_RAY_ADDRESS's cluster when set, else starts a local one."""
    if name == "local":
        from .local import LocalEngine

        return LocalEngine()
    if name == "ray":
        from .ray import RayEngine

        return RayEngine()
    raise ConfigError(f"--engine must be one of {', '.join(ENGINES)} (got {name!r})")
