"""`build()`: task spec -> candidates -> plans -> pools -> selection -> verification -> top-up -> release.

Each stage is a module of `datatune/stages` (its table is in `stages/__init__.py`): a function over
typed records with its dependencies passed in, returning what it dropped. This module wires them,
keeps the run directory (resume) and fills in each dependency left at its default.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pyarrow as pa

from .core.errors import ConfigError
from .core.types import Catalog
from .llm import LLM
from .options import MAX_SIZE, BuildOptions
from .plan import Plan
from .progress import Reporter
from .records import Row, table_to_rows
from .rundir import RunDir, fingerprint
from .stages import Context
from .stages.candidates import Retriever, find_candidates
from .stages.plans import plan_sources, report_plans
from .stages.pools import LLM_CHUNK, cap_of, execute_sources
from .stages.release import WrittenSplits, release, shuffle_and_split
from .stages.selection import select_rows
from .stages.spec import task_spec
from .stages.synthetic import top_up
from .stages.verification import verify_labels
from .task import TaskSpec

__all__ = ["BuildOptions", "BuildResult", "DEFAULT", "LLM_CHUNK", "MAX_SIZE", "build"]


@dataclass
class BuildResult:
    out: Path
    spec: TaskSpec
    plans: list[Plan]
    tables: Mapping[str, pa.Table]  # split -> its rows (records.SCHEMA), read from the parquet written when asked for
    drops: dict[str, int]
    manifest: dict
    dry_run: bool = False
    estimate: dict = field(default_factory=dict)

    @property
    def rows(self) -> dict[str, list[Row]]:
        """The rows of each split as Row objects (made on each access: read `tables` for large sets)."""
        return {s: table_to_rows(t) for s, t in self.tables.items()}


class _Default:
    """The default of a `build()` dependency: the real one (None means: that stage is off)."""

    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT = _Default()


def build(
    description: str,
    *,
    catalog: Catalog,
    options: BuildOptions,
    llm: LLM | _Default = DEFAULT,
    retriever: Retriever | _Default = DEFAULT,
    reporter: Reporter | None = None,
    curate_fn: Callable | None | _Default = DEFAULT,
    topup_fn: Callable | None | _Default = DEFAULT,
    embedder=DEFAULT,
) -> BuildResult:
    """Build the dataset for `description` into `options.out`.

    Every stage runs with its real dependency unless one is passed: the LLM from the environment
    (`open_llm(Settings.from_env())`, the embedded model when no endpoint is set), the catalog's
    retrieval index, curation (`datatune.curate.curate`), synthetic top-up (`datatune.topup.topup`,
    when `options.synthetic`) and the MiniLM embedder (relevance, the gate, the quality measures).
    Pass None for `curate_fn`, `topup_fn` or `embedder` to turn that stage off.
    """
    rep = reporter or Reporter()
    options.validate()
    if isinstance(llm, _Default):
        from .core.settings import Settings
        from .llm import open_llm

        llm = open_llm(Settings.from_env())
    if isinstance(retriever, _Default):
        from .retrieve import make_retriever

        retriever = make_retriever(catalog, benchmark=options.benchmark, reporter=rep)
    if isinstance(curate_fn, _Default):
        from .curate import curate as curate_fn
    if isinstance(topup_fn, _Default):
        from .topup import topup as topup_fn
    if isinstance(embedder, _Default):
        from .embed import get_embedder

        embedder = None if options.dry_run else get_embedder()
    run = RunDir(options.out)
    try:
        return _build(description, catalog=catalog, llm=llm, retriever=retriever, options=options, rep=rep, run=run,
                      curate_fn=curate_fn, topup_fn=topup_fn, embedder=embedder)
    finally:
        run.close()  # the run folder's lock is released however the build ends


def _build(description, *, catalog, llm, retriever, options: BuildOptions, rep, run: RunDir, curate_fn, topup_fn, embedder) -> BuildResult:
    started = time.time()
    if not options.dry_run:
        fp = fingerprint(options.fingerprint_fields(description, catalog.location))
        if run.open(fp, {"description": description, "catalog": catalog.location, "seed": options.seed}, resume=options.resume,
                    overwrite=options.overwrite):
            rep.event("resume", message=f"continuing the build in {options.out}")
        if run.notice:  # an unfinished run of other inputs was replaced
            rep.event("replace", message=run.notice)
    ctx = Context(catalog=catalog, llm=llm, options=options, reporter=rep, run=run)

    with ctx.timed("task"):
        spec, saved = task_spec(description, ctx)
    if saved is not None:
        plans = saved.plans
    else:
        with ctx.timed("retrieve"):
            candidates = find_candidates(spec, retriever, ctx)
        with ctx.timed("plan"):
            plans = plan_sources(spec, candidates, ctx, embedder=embedder)
    report_plans(plans, ctx)
    kept = [p for p in plans if p.keep]
    estimate = estimate_rows(kept, options)
    if options.dry_run:
        return BuildResult(options.out, spec, plans, {}, {}, {}, dry_run=True, estimate=estimate)
    if not kept and not (options.synthetic and options.synthetic_fraction >= 1 and topup_fn is not None):
        raise ConfigError(f"no candidate dataset fits this task ({_why_none(plans)}); see every reason with --dry-run, "
                          "try --catalog with more datasets or a clearer description, or pass --synthetic-fraction 1 for a fully synthetic set")
    if not kept:
        rep.event("plans", message="no source fits: the set is all synthetic (--synthetic-fraction 1)")

    with ctx.timed("execute"):
        executed = execute_sources(kept, ctx)
    _release_unused()  # what pass 1 and the pools' transients freed goes back to the system before the next stage
    with ctx.timed("curate"):
        selected = select_rows(executed, kept, spec, ctx, curate_fn=curate_fn, embedder=embedder)
    _release_unused()
    # drops are added with update(), not +, which would lose the filters that dropped nothing (the card lists them)
    chosen, drops, stats = selected.chosen, Counter(executed.drops), {}
    drops.update(selected.drops)
    if options.verify != "off":
        with ctx.timed("verify"):
            verified = verify_labels(chosen, spec, ctx)
        drops.update(verified.drops)
        stats["verification"] = verified.record
    if topup_fn is not None and options.synthetic:
        with ctx.timed("topup"):
            topped = top_up(chosen, spec, ctx, topup_fn, embedder=embedder)
        drops.update(topped.drops)
        stats.update(topped.stats)
    chosen.fill_to(options.size)
    splits = shuffle_and_split(chosen, ctx)
    manifest = release(description, spec, plans, splits, ctx, drops=drops, executed_rows=executed.rows, relevance=selected.relevance,
                       stats=stats, embedder=embedder, started=started)
    run.set_status("done", rows=manifest["rows"])
    return BuildResult(options.out, spec, plans, WrittenSplits(options.out, splits), dict(drops), manifest)


def _release_unused() -> None:
    # Arrow's allocator (mimalloc) keeps freed memory for reuse; a stage's transient copies of a large
    # pool would otherwise stay in the process's footprint for the rest of the build
    pa.default_memory_pool().release_unused()


def _why_none(plans: list[Plan]) -> str:
    """The nearest candidates' reasons, first one per dataset: the model's invalid answer, a dataset
    that failed to load (with its file), or a plan that broke the spec, instead of a bare 'none fits'."""
    if not plans:
        return "retrieval found no candidates"
    planned = [p for p in plans if not p.card_only]
    if not planned:
        return f"all {len(plans)} candidates are card-only in this catalog"
    seen, out = set(), []
    for p in planned:
        if p.dataset not in seen:
            seen.add(p.dataset)
            out.append(f"{p.key}: {p.reason[:120]}")
        if len(out) == 2:
            break
    return "; ".join(out)


def allocate(rows: list[Row], order: list[str], options: BuildOptions, labels: list[str] | None = None,
             weak: set[str] | frozenset = frozenset()) -> list[Row]:
    """allocate.py's rule over a list of rows (library callers)."""
    from . import allocate as _allocate

    return _allocate.allocate(rows, order, options.size, options.per_source_cap, labels, weak=weak)


def estimate_rows(kept: list[Plan], options: BuildOptions) -> dict:
    """What a dry run prints: rows each kept source would give, LLM calls per-row fields would cost."""
    import math

    cap = cap_of(options, kept)
    per_source = {p.key: min(p.est_rows, cap) for p in kept}
    llm_rows = sum(min(per_source[p.key], math.ceil(cap * 1.3)) * max(1, len(p.llm_fields)) for p in kept if p.needs_llm)
    return {"rows_per_source": per_source, "llm_calls_execute": llm_rows, "rows_total": min(options.size, sum(per_source.values()))}
