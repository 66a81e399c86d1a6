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

import numpy as np
import pyarrow as pa

from .. import __version__
from ..allocate import Selection
from ..output import write_output
from ..plan import BuildRecord, Plan, save_plans
from ..records import concat, table_to_rows
from ..task import TaskSpec
from .context import Context


def shuffle_and_split(chosen: Selection, ctx: Context) -> dict[str, pa.Table]:
    order = array("q", range(chosen.num_rows))
    random.Random(ctx.options.seed).shuffle(order)  # the permutation shuffling the rows themselves gave
    chosen.reorder(np.frombuffer(order, dtype=np.int64))
    return split_rows(chosen.table(), ctx.options.validation_fraction)


def split_rows(table: pa.Table, validation_fraction: float) -> dict[str, pa.Table]:
    if validation_fraction <= 0 or table.num_rows < 2:
        return {"train": table}
    n_val = max(1, int(round(table.num_rows * validation_fraction)))
    return {"train": table.slice(n_val), "validation": table.slice(0, n_val)}


def release(description: str, spec: TaskSpec, plans: list[Plan], splits: dict[str, pa.Table], ctx: Context, *, drops: Counter,
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
        from ..quality import quality_report

        all_rows = concat(list(splits.values()))
        metrics = quality_report(all_rows, spec, embedder=embedder, drops=dict(drops), plots_dir=opts.out / "plots", embed_sample=500)
    stats = dict(stats)
    if embedder is not None and spec.examples and "example_coverage" not in stats:
        from ..coverage import example_coverage

        stats["example_coverage"] = example_coverage(table_to_rows(all_rows), spec.examples, embedder).to_dict()
    metrics.update(stats)
    manifest["quality"] = {k: v for k, v in metrics.items() if k not in ("by_source_config",)}
    with ctx.timed("output"):
        write_output(opts.out, spec, splits, plans, drops=dict(drops), manifest=manifest, metrics=metrics)
        # plans.json again, with what else decides the rows: `datatune apply` reproduces this build from it
        save_plans(opts.out / "plans.json", spec, plans,
                   build=BuildRecord.of(opts, catalog=catalog.location, embed=embedder is not None, model=llm.endpoint.model))
    manifest["timings_s"] = ctx.timings
    return manifest


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("datasets", "huggingface-hub", "openai", "pyarrow", "sentence-transformers", "xllamacpp", "bm25s"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out
