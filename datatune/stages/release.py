"""Stage 8: the Hub-layout folder: shuffled rows in their splits, the card, the manifest, plans.json.

The rows are shuffled by seed, split (--validation-fraction), measured (quality.py: counts over
every row, lexical measures over a seeded sample) and written as parquet with the card
(output.py). plans.json is written again with what else decides the rows, so `datatune apply`
reproduces the build from it.
"""

from __future__ import annotations

import platform
import random
import time
from array import array
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .. import __version__
from ..allocate import ChosenSplit, Selection
from ..output import COUNTED, write_output
from ..plan import BuildRecord, Plan, save_plans
from ..records import concat, position_type, release_unused, table_to_rows
from ..task import TaskSpec
from .context import Context


def shuffle_and_split(chosen: Selection, ctx: Context) -> dict[str, ChosenSplit]:
    """The chosen rows in seeded order, cut into splits: the first --validation-fraction of them is
    validation, the rest train. No string moves until a split is written."""
    kind, code = position_type(chosen.num_rows)
    order = array(code, range(chosen.num_rows))
    random.Random(ctx.options.seed).shuffle(order)  # the permutation shuffling the rows themselves gave
    chosen.reorder(np.frombuffer(order, dtype=kind))
    n, fraction = chosen.num_rows, ctx.options.validation_fraction
    if fraction <= 0 or n < 2:
        return {"train": chosen.split(0, n)}
    n_val = max(1, int(round(n * fraction)))
    return {"train": chosen.split(n_val, n), "validation": chosen.split(0, n_val)}


def split_rows(table: pa.Table, validation_fraction: float) -> dict[str, pa.Table]:
    """shuffle_and_split's cut over a table (library callers)."""
    if validation_fraction <= 0 or table.num_rows < 2:
        return {"train": table}
    n_val = max(1, int(round(table.num_rows * validation_fraction)))
    return {"train": table.slice(n_val), "validation": table.slice(0, n_val)}


class WrittenSplits(Mapping):
    """A build's splits as written: each read from its parquet file when asked for (not kept in memory)."""

    def __init__(self, out: Path, splits):
        self._data, self._names = out / "data", list(splits)

    def __getitem__(self, split: str) -> pa.Table:
        if split not in self._names:
            raise KeyError(split)
        return pq.read_table(self._data / f"{split}-00000-of-00001.parquet")

    def __iter__(self):
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def release(description: str, spec: TaskSpec, plans: list[Plan], splits: dict[str, ChosenSplit], ctx: Context, *, drops: Counter,
            executed_rows: int, relevance: dict, stats: dict, embedder=None, started: float) -> dict:
    """Measure and write the set into --out; the manifest it wrote."""
    opts, llm, catalog = ctx.options, ctx.llm, ctx.catalog
    manifest = {
        "datatune": __version__,
        "python": platform.python_version(),
        "versions": _versions(),
        "seed": opts.seed,
        "description": description,
        "catalog": catalog.location,
        "model": llm.endpoint.model,
        "endpoint": llm.endpoint.identity,
        "rows": {s: t.num_rows for s, t in splits.items()},
        "executed_rows": executed_rows,
        "timings_s": ctx.timings,
        "source_relevance": relevance,
        "llm": llm.usage.to_dict(),
        "wall_s": round(time.time() - started, 2),
    }
    with ctx.timed("quality"):
        metrics = _quality(splits, spec, ctx, drops=drops, embedder=embedder)
    stats = dict(stats)
    if embedder is not None and spec.examples and "example_coverage" not in stats:
        from ..coverage import example_coverage

        everything = _rows_taker(splits)(np.arange(sum(s.num_rows for s in splits.values()), dtype=np.int64))
        stats["example_coverage"] = example_coverage(table_to_rows(everything), spec.examples, embedder).to_dict()
    metrics.update(stats)
    manifest["quality"] = {k: v for k, v in metrics.items() if k not in ("by_source_config",)}
    with ctx.timed("output"):
        write_output(opts.out, spec, splits, plans, drops=dict(drops), manifest=manifest, metrics=metrics)
        # plans.json again, with what else decides the rows: `datatune apply` reproduces this build from it
        save_plans(opts.out / "plans.json", spec, plans,
                   build=BuildRecord.of(opts, catalog=catalog.location, embed=embedder is not None, model=llm.endpoint.model))
    manifest["timings_s"] = ctx.timings
    return manifest


def _rows_taker(splits: dict[str, ChosenSplit]) -> Callable[[np.ndarray], pa.Table]:
    """Whole rows at positions over the splits in order (what the quality measures' samples read)."""
    parts = list(splits.values())
    starts = np.cumsum([0] + [s.num_rows for s in parts])

    def take_rows(positions: np.ndarray) -> pa.Table:
        which = np.searchsorted(starts, positions, side="right") - 1
        tables = [parts[k].rows_at(positions[which == k] - starts[k]) for k in range(len(parts))]
        return concat(tables).take(pa.array(np.argsort(np.argsort(which, kind="stable"), kind="stable"), pa.int64()))

    return take_rows


def _quality(splits: dict[str, ChosenSplit], spec: TaskSpec, ctx: Context, *, drops: Counter, embedder) -> dict:
    """quality.quality_report over every row's counted columns (the splits in order, as dictionary codes),
    whole rows only for the samples the measures read; the counted columns go when it returns."""
    from ..quality import quality_report

    release_unused()
    counted = concat([s.columns(COUNTED) for s in splits.values()])
    metrics = quality_report(counted, spec, embedder=embedder, drops=dict(drops), plots_dir=ctx.options.out / "plots", embed_sample=500,
                             take_rows=_rows_taker(splits))
    del counted
    release_unused()
    return metrics


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("datasets", "huggingface-hub", "openai", "pyarrow", "sentence-transformers", "xllamacpp", "bm25s"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out
