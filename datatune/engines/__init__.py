"""Where compiled plans run: `local` (this process) or `ray` (Ray Data, on a laptop or a cluster).

An engine maps a source split's Arrow batches through a compiled plan (`compile.RowMapper.map_arrow`)
and yields the mapped batches in source order. The split comes as a `datasets.Dataset` or as the
`source.SplitRows` the build reads it through (its pages given back as the pass moves on).
Everything after (which rows are valid, the seeded pool, allocation, output) reads positions, so
the same plans and seed give the same rows whichever engine mapped them.
"""

from __future__ import annotations

from typing import Iterator, Protocol

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


def get_engine(name: str = "local") -> Engine:
    """The engine called `name`; `ray` joins DATATUNE_RAY_ADDRESS's cluster when set, else starts a local one."""
    if name == "local":
        from .local import LocalEngine

        return LocalEngine()
    if name == "ray":
        from .ray import RayEngine

        return RayEngine()
    raise ConfigError(f"--engine must be one of {', '.join(ENGINES)} (got {name!r})")
