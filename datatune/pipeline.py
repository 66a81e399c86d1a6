"""`build()`: task spec -> retrieve -> plan -> execute -> curate -> top up -> output.

Each stage is a function over typed records with its dependencies passed in; this module wires
them, keeps the run directory (resume), reports progress and counts LLM usage per stage.
"""

from __future__ import annotations

import math
import platform
import random
import time
from array import array
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa

from . import __version__
from .allocate import Selection, allocate_by_split_indices, split_order
from .allocate import source_cap as _source_cap
from .core.errors import BudgetExceeded, ConfigError, DatasetLoadError, OfflineError
from .core.types import Catalog
from .execute import Pool, fill_llm_fields, sample_pool
from .expand import expand_task
from .llm import LLM
from .output import write_output
from .plan import Plan, PlanFile
from .planner import PLANNER_MODES, Candidate, plan_candidate, reject
from .progress import Reporter
from .records import Row, concat, rows_to_table, table_to_rows
from .rundir import RunDir, fingerprint
from .task import Example, TaskSpec

LLM_CHUNK = 16  # rows per shard on the per-row LLM path
MAX_SIZE = 10_000_000  # rows per build, until rows stay in Arrow between stages


@dataclass
class BuildOptions:
    out: Path
    size: int = 1000
    seed: int = 0
    validation_fraction: float = 0.0
    per_source_cap: float = 0.5  # share of --size one source may fill when others are available
    max_candidates: int = 8  # candidates planned at most
    top_k: int = 20
    examples: list[Example] = field(default_factory=list)
    eval_texts: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    benchmark: str | None = None
    plans_file: Path | None = None
    dry_run: bool = False
    resume: bool = False
    overwrite: bool = False
    synthetic: bool = True
    synthetic_fraction: float = 0.5
    synthetic_batch: int = 5  # synthetic rows asked for per LLM call
    curate: bool = True
    rerank: bool = False  # LLM self-consistency rerank of the retrieved candidates
    verify: str = "off"  # label verification policy: off, flag, relabel or drop (verify.py)
    verify_budget: int | None = None  # LLM calls the verification may spend; None = one per row plus confirmations
    planner: str = "hybrid"  # who decides what: "hybrid" (model picks columns) or "full" (model writes the derivation too)
    splits: list[str] | None = None  # source splits rows may come from; None = train first, the others only to fill
    judge_votes: int = 4  # transformed inputs of each kept source whose kind the LLM reads (semantic acceptance); 0 = off
    engine: str = "local"  # where compiled plans run (engines/): "local" or "ray"; the rows are the same

    def fingerprint_fields(self, description: str, catalog: str) -> dict:
        keep = {k: v for k, v in asdict(self).items() if k not in ("out", "dry_run", "resume", "overwrite", "engine")}
        return {"description": description, "catalog": catalog, **keep}

    def validate(self) -> None:
        if self.size < 1:
            raise ConfigError(f"--size must be at least 1 (got {self.size})")
        if self.size > MAX_SIZE:
            # rows are still Python objects between stages: 10M rows take a few GB; a billion were OOM-killed at 20 GB
            raise ConfigError(f"--size {self.size:,} is more than one build makes ({MAX_SIZE:,} rows at most); ask for fewer rows")
        if not 0 <= self.validation_fraction < 1:
            raise ConfigError(f"--validation-fraction must be in [0, 1) (got {self.validation_fraction})")
        if self.verify not in ("off", "flag", "relabel", "drop"):
            raise ConfigError(f"--verify must be off, flag, relabel or drop (got {self.verify!r})")
        if self.planner not in PLANNER_MODES:
            raise ConfigError(f"--planner must be one of {', '.join(PLANNER_MODES)} (got {self.planner!r})")
        if self.splits is not None and not self.splits:
            raise ConfigError("--splits needs at least one split name, e.g. --splits train")
        from .engines import ENGINES

        if self.engine not in ENGINES:
            raise ConfigError(f"--engine must be one of {', '.join(ENGINES)} (got {self.engine!r})")
        if not 0 < self.per_source_cap <= 1:
            raise ConfigError(f"--per-source-cap must be in (0, 1] (got {self.per_source_cap})")


@dataclass
class BuildResult:
    out: Path
    spec: TaskSpec
    plans: list[Plan]
    tables: dict[str, pa.Table]  # split -> its rows (records.SCHEMA), as written
    drops: dict[str, int]
    manifest: dict
    dry_run: bool = False
    estimate: dict = field(default_factory=dict)

    @property
    def rows(self) -> dict[str, list[Row]]:
        """The rows of each split as Row objects (made on each access: read `tables` for large sets)."""
        return {s: table_to_rows(t) for s, t in self.tables.items()}


Retriever = Callable[[str, int, list[str]], list[Candidate]]


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
    fp = fingerprint(options.fingerprint_fields(description, catalog.location))
    if not options.dry_run:
        resumed = run.open(fp, {"description": description, "catalog": catalog.location, "seed": options.seed}, resume=options.resume, overwrite=options.overwrite)
        if resumed:
            rep.event("resume", message=f"continuing the build in {options.out}")
        if run.notice:  # an unfinished run of other inputs was replaced
            rep.event("replace", message=run.notice)
    timings: dict[str, float] = {}

    def timed(name):
        class _T:
            def __enter__(self):
                self.t = time.perf_counter()

            def __exit__(self, *exc):
                timings[name] = round(timings.get(name, 0) + time.perf_counter() - self.t, 3)
        return _T()

    state = (lambda name: None) if options.dry_run else run.read_json
    save = (lambda name, obj: None) if options.dry_run else run.write_json

    # 1. task spec ---------------------------------------------------------------------------
    with timed("task"):
        saved_plans: PlanFile | None = None
        if options.plans_file:
            from .plan import load_plans

            saved_plans = load_plans(options.plans_file)
            spec = saved_plans.task
        elif (s := state("spec.json")) is not None:
            spec = TaskSpec.model_validate(s)
        else:
            failed = llm.usage.stage("task").failures
            spec = expand_task(description, options.examples, llm)
            if llm.usage.stage("task").failures == failed:
                save("spec.json", spec.model_dump())
            else:  # a spec read without the model's answer is not kept: a later run (endpoint fixed) asks again
                rep.event("spec", message="the LLM gave no valid task spec; using what the description and examples show")
    rep.event("spec", message=f"task: {spec.output_kind}" + (f" {spec.labels}" if spec.labels else "") + f", language {spec.language}", spec=spec.model_dump())

    # 2 + 3. retrieve and plan ------------------------------------------------------------------
    if saved_plans is not None:
        plans = saved_plans.plans
    else:
        with timed("retrieve"):
            from .query import retrieval_query

            query = retrieval_query(spec)
            candidates = retriever(query.text, options.top_k, options.exclude, labels=list(query.labels), languages=[spec.language],
                                   examples=[e.input for e in spec.examples], label_query=query.label_text)
        rep.event("candidates", message=f"{len(candidates)} retrieved, {sum(c.entry.has_rows and c.config.has_rows for c in candidates)} with rows in this catalog; "
                  f"planning up to {min(sum(c.entry.has_rows and c.config.has_rows for c in candidates), options.max_candidates)} in rank order "
                  "(fewer once the kept ones cover --size); top: " + ", ".join(c.key for c in candidates[:8]) + (", ..." if len(candidates) > 8 else ""),
                  candidates=[{"key": c.key, "score": c.score, "has_rows": c.entry.has_rows} for c in candidates])
        with timed("plan"):
            plans = plan_all(spec, candidates, catalog, llm, options, rep, state, save, embedder=embedder)
    kept = [p for p in plans if p.keep]
    rep.event("plans", message=f"{len(kept) - sum('same_plan_as' in p.checks for p in kept)} of "
              f"{len(plans) - sum(p.card_only or 'same_plan_as' in p.checks for p in plans)} planned kept"
              + (f", with {sum('same_plan_as' in p.checks for p in kept)} sibling configs on the same plan" if any("same_plan_as" in p.checks for p in kept) else "")
              + (f"; {sum(p.card_only for p in plans)} card-only skipped" if any(p.card_only for p in plans) else "")
              + ": " + ", ".join(p.key for p in kept), kept=[p.key for p in kept])

    estimate = estimate_rows(kept, catalog, options)
    if options.dry_run:
        return BuildResult(options.out, spec, plans, {}, {}, {}, dry_run=True, estimate=estimate)
    if not kept and not (options.synthetic and options.synthetic_fraction >= 1 and topup_fn is not None):
        raise ConfigError(f"no candidate dataset fits this task ({_why_none(plans)}); see every reason with --dry-run, "
                          "try --catalog with more datasets or a clearer description, or pass --synthetic-fraction 1 for a fully synthetic set")
    if not kept:
        rep.event("plans", message="no source fits: the set is all synthetic (--synthetic-fraction 1)")

    # 4. execute -----------------------------------------------------------------------------
    drops: Counter = Counter()
    with timed("execute"):
        pools = execute_all(kept, catalog, llm, options, rep, run, drops)
    executed_rows = sum(len(p) for p in pools.values())

    # 5. curate ------------------------------------------------------------------------------
    with timed("curate"):
        # the pooled rows are `pooled`'s at the positions `view`, in that order (see execute.Pool)
        pooled = concat([p.table for p in pools.values()])
        starts = np.cumsum([0] + [p.table.num_rows for p in pools.values()])[:-1]
        view = np.concatenate([p.order + start for p, start in zip(pools.values(), starts)]) if pools else np.zeros(0, dtype=np.int64)
        if curate_fn is not None and options.curate:
            result = curate_fn(table_to_rows(pooled.take(pa.array(view, pa.int64()))), spec, eval_texts=options.eval_texts)
            pooled = rows_to_table(result.rows)
            view = np.arange(pooled.num_rows, dtype=np.int64)
            drops.update(result.drops)
        labels = spec.labels if spec.output_kind == "label" else None
        order, weak, relevance_info = [p.key for p in kept], set(), {}
        if embedder is not None and len(pools) > 1:
            from .relevance import SAMPLE, source_relevance

            relevance = source_relevance({k: table_to_rows(p.ordered(SAMPLE)) for k, p in pools.items()}, spec, embedder)
            order, weak = relevance.order(order), set(relevance.weak)
            relevance_info = relevance.to_dict()
            if weak:
                rep.event("relevance", message=f"far from the {relevance.reference}, used only to fill gaps: " + ", ".join(relevance.weak), relevance=relevance_info)
        chosen = Selection(pooled, allocate_by_split_indices(pooled, order, options.size, options.per_source_cap, labels, weak=weak, view=view),
                           view=view)
    # 5b. verify labels (on the chosen rows only: the budget goes where it counts) ------------
    verification: dict = {}
    if options.verify != "off":
        with timed("verify"):
            from .verify import verify_rows

            budget = options.verify_budget if options.verify_budget is not None else 2 * chosen.num_rows
            vr = verify_rows(table_to_rows(chosen.table()), spec, llm, policy=options.verify, max_calls=budget, votes=3, seed=options.seed, reporter=rep)
            chosen.replace(rows_to_table(vr.rows))
            drops.update(vr.dropped)
            verification = {"policy": options.verify, **dict(vr.counts), "calls": vr.calls, **({"note": vr.note} if vr.note else {})}
            if vr.note:
                rep.event("verify", message=f"verify: rows left unchecked: {vr.note}")
            rep.event("verify", message="verify: " + ", ".join(f"{k} {v}" for k, v in vr.counts.items() if v), verification=verification)
    # 6. top up ------------------------------------------------------------------------------
    topup_stats: dict = {"verification": verification} if verification else {}
    if topup_fn is not None and options.synthetic:
        with timed("topup"):
            chosen.replace(rows_to_table(topup_fn(table_to_rows(chosen.table()), spec, options=options, llm=llm, reporter=rep, drops=drops,
                                                  embedder=embedder, stats=topup_stats)))
    chosen.fill_to(options.size)

    # 7. output ------------------------------------------------------------------------------
    order_ = array("q", range(chosen.num_rows))
    random.Random(options.seed).shuffle(order_)  # the permutation shuffling the rows themselves gave
    chosen.reorder(np.frombuffer(order_, dtype=np.int64))
    splits = split_rows(chosen.table(), options.validation_fraction)
    manifest = {
        "datatune": __version__,
        "python": platform.python_version(),
        "versions": _versions(),
        "seed": options.seed,
        "description": description,
        "catalog": catalog.location,
        "model": llm.endpoint.model,
        "endpoint": llm.endpoint.identity,
        "rows": {s: t.num_rows for s, t in splits.items()},
        "executed_rows": executed_rows,
        "timings_s": timings,
        "source_relevance": relevance_info,
        "llm": llm.usage.to_dict(),
        "wall_s": round(time.time() - started, 2),
    }
    with timed("quality"):
        from .quality import quality_report

        all_rows = concat(list(splits.values()))
        metrics = quality_report(all_rows, spec, embedder=embedder, drops=dict(drops), plots_dir=options.out / "plots", embed_sample=500)
    if embedder is not None and spec.examples and "example_coverage" not in topup_stats:
        from .coverage import example_coverage

        topup_stats["example_coverage"] = example_coverage(table_to_rows(all_rows), spec.examples, embedder).to_dict()
    metrics.update(topup_stats)
    manifest["quality"] = {k: v for k, v in metrics.items() if k not in ("by_source_config",)}
    with timed("output"):
        write_output(options.out, spec, splits, plans, drops=dict(drops), manifest=manifest, metrics=metrics)
        from .plan import BuildRecord, save_plans

        # plans.json again, with what else decides the rows: `datatune apply` reproduces this build from it
        save_plans(options.out / "plans.json", spec, plans,
                   build=BuildRecord.of(options, catalog=catalog.location, embed=embedder is not None, model=llm.endpoint.model))
    manifest["timings_s"] = timings
    run.set_status("done", rows=manifest["rows"])
    return BuildResult(options.out, spec, plans, splits, dict(drops), manifest)


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


def plan_all(spec, candidates, catalog, llm, options, rep, state, save, *, embedder=None) -> list[Plan]:
    """Plan candidates in rank order until enough kept sources cover --size (or candidates run out).
    `embedder` scores each plan's transformed inputs for the relevance gate (gate.py); None skips it."""
    done = {p["dataset"] + ":" + p["config"]: Plan.model_validate(p) for p in (state("plans.json") or [])}
    plans: list[Plan] = []
    need = options.size
    with rep.bar("plan", total=min(sum(c.entry.has_rows and c.config.has_rows for c in candidates), options.max_candidates), unit="dataset") as bar:
        planned = 0
        for rank, c in enumerate(candidates, 1):
            c.rank = rank
            # only rows outside test splits count as enough: a test-only source (MATH, gsm8k's socratic
            # config) must not stop planning before a source with a train split is found
            kept_rows = sum(p.checks.get("est_rows_not_test", p.checks.get("est_rows", 0)) for p in plans if p.keep)
            kept_sources = len({p.dataset for p in plans if p.keep and p.checks.get("est_rows_not_test", 1)})
            if planned >= options.max_candidates or (kept_rows >= 2 * need and kept_sources >= 2):
                break
            if c.key in done:
                plans.append(done[c.key])
                planned += 1
                bar.update()
                continue
            if not c.entry.has_rows or not c.config.has_rows:
                p = reject(c, "card only: no rows in this catalog, so it can't be transformed offline", kind="card_only")
                rep.event("skip", message=f"skip {c.key}: {p.reason}")
            else:
                p = plan_one(spec, c, catalog, llm, options, embedder=embedder)
                planned += 1
                if p.keep:
                    plans += sibling_plans(p, c, options.splits)
                bar.update()
                rep.event("plan", message=f"{'keep' if p.keep else 'reject'} {c.key}: {p.reason}", key=c.key, keep=p.keep)
            plans.append(p)
            save("plans.json", [x.model_dump() for x in plans])
    return plans


def sibling_plans(plan: Plan, c: Candidate, splits: list[str] | None = None) -> list[Plan]:
    """The same plan for configs of the same kind (same columns and labels), e.g. MMLU's subjects.

    Each sibling takes its own splits (gsm8k's `main` has train, its `socratic` sibling only test). A plan
    that draws other rows' answers (verification pairs, distractors) has none: its pool is its own config's."""
    out: list[Plan] = []
    if plan.output is not None and plan.output.pool:
        # the other rows' answers it draws from are this config's (xquad.de would get English distractors)
        return out
    for name in c.siblings:
        try:
            cfg = c.entry.config(name)
        except KeyError:
            continue
        if not cfg.has_rows or [f.name for f in cfg.features] != [f.name for f in c.config.features]:
            continue
        p = plan.model_copy(deep=True)
        p.config, p.splits = name, split_order([s for s in cfg.splits if splits is None or s in splits])
        if not p.splits:
            continue
        share = plan.checks.get("est_rows", 0) / max(1, c.config.num_rows)
        p.checks = {**p.checks, "est_rows": int(cfg.num_rows * share), "same_plan_as": plan.config,
                    "est_rows_not_test": int(sum(n for sp, n in cfg.splits.items() if sp != "test" and sp in p.splits) * share)}
        out.append(p)
    return out


def plan_one(spec, c: Candidate, catalog, llm, options, *, embedder=None) -> Plan:
    # sample from the largest labelled-looking split: train, then validation, test last (often unlabelled)
    allowed = [s for s in c.config.splits if options.splits is None or s in options.splits]
    if c.config.splits and not allowed:
        return reject(c, f"it has no {'/'.join(options.splits or [])} split (--splits); its splits: {', '.join(c.config.splits)}")
    pref = {"train": 0, "validation": 1, "test": 3}
    splits = sorted(allowed, key=lambda s: (pref.get(s, 2), -c.config.splits[s])) or ["train"]
    try:
        ds = catalog.load(c.entry.id, c.config.name, splits[0])
    except DatasetLoadError as e:
        return reject(c, str(e), kind="load_failed")
    plan = plan_candidate(spec, c, ds, llm=llm, seed=options.seed, mode=options.planner)
    if plan.keep:
        accept_rows(plan, spec, ds, llm, votes=options.judge_votes, seed=options.seed, embedder=embedder)
    if plan.keep:
        plan.splits = split_order(allowed) or splits
        kept_share = plan.checks.get("rows_kept", 0) / max(1, plan.checks.get("rows_checked", 1))
        plan.checks["est_rows"] = int(sum(c.config.splits.get(s, 0) for s in plan.splits) * kept_share)
        plan.checks["est_rows_not_test"] = int(sum(c.config.splits.get(s, 0) for s in plan.splits if s != "test") * kept_share)
        _maybe_translate(spec, c, plan)
    return plan


def accept_rows(plan: Plan, spec: TaskSpec, ds, llm, *, votes: int, seed: int = 0, embedder=None) -> None:
    """Semantic acceptance of a kept plan, on a sample of its transformed inputs: the relevance gate
    (gate.py: MiniLM cosine to the examples against calibrated bars; skipped, and recorded as skipped,
    without an embedder) and the LLM kind judge over `votes` inputs (acceptance.py; 0 = not asked).
    A rejected plan's reason says which and why; both verdicts go to plan.checks (plans.json)."""
    from .gate import GATE_ROWS, GateVerdict, combine, relevance_gate

    if embedder is None and not votes:
        plan.checks["relevance_gate"] = GateVerdict(reason="skipped: the build has no embedder, so the relevance gate was not run").to_dict()
        return
    from .acceptance import judge_inputs
    from .compile import compile_plan
    from .planner import sample_rows

    mapper = compile_plan(plan, ds.features)
    inputs = [a for a, _, why in (mapper.map_row(r) for r in sample_rows(ds, n=GATE_ROWS, seed=seed + 1)) if why is None]
    gate = relevance_gate(inputs, spec, embedder)
    verdict = None
    if votes and gate.level != "fail":  # a source the gate rejects costs no LLM call
        verdict = judge_inputs(llm, spec, inputs, rows=votes, seed=seed)
        plan.checks["acceptance"] = verdict.to_dict()
    keep, why = combine(gate, verdict)
    plan.checks["relevance_gate"] = gate.to_dict()
    if not keep:
        plan.keep, plan.reject_kind = False, "acceptance"
        plan.reason = f"{why} ({plan.reason})"


def _maybe_translate(spec: TaskSpec, c: Candidate, plan: Plan) -> None:
    """A source in another language than the task's: the LLM writes the fields per row."""
    from .expand import LANGUAGES
    from .plan import LLMField

    langs = {x.lower()[:2] for x in c.entry.languages}
    if langs and spec.language not in langs and "multilingual" not in langs:
        name = {v: k for k, v in LANGUAGES.items()}.get(spec.language, spec.language).capitalize()
        plan.llm_fields.append(LLMField(target="input", instruction=f"Translate the input into {name}. Keep its meaning and format."))
        if spec.output_kind in ("text", "span"):
            plan.llm_fields.append(LLMField(target="output", instruction=f"Translate the output into {name}."))


def source_cap(options: BuildOptions, n_sources: int) -> int:
    return _source_cap(options.size, options.per_source_cap, n_sources)


def execute_all(kept: list[Plan], catalog, llm, options, rep, run: RunDir, drops: Counter) -> dict[str, Pool]:
    """Compiled rows of every kept source (a seeded sample of them), LLM fields filled in shards."""
    from .engines import get_engine

    cap = source_cap(options, len({p.dataset for p in kept}))
    engine = get_engine(options.engine) if kept else None
    pools: dict[str, Pool] = {}
    total = sum(p.checks.get("est_rows", 0) for p in kept)
    with rep.bar("execute", total=total, unit="row") as bar:
        for plan in kept:
            def load(split, plan=plan):
                return catalog.load(plan.dataset, plan.config, split)

            keep = math.ceil(cap * 1.3) if plan.needs_llm else 3 * cap
            try:
                # a seeded sample of the valid rows, train first; only those become rows (execute.sample_pool)
                pool = sample_pool(plan, load, seed=options.seed, keep=keep, split_rank=split_order(plan.splits), on_rows=bar.update,
                                   engine=engine)
            except DatasetLoadError as e:
                rep.event("skip", message=f"skip {plan.key}: {e}")
                drops["source_failed_to_load"] += 1
                plan.keep, plan.reason, plan.reject_kind = False, str(e), "load_failed"
                continue
            drops.update(pool.drops)
            if plan.needs_llm:
                done = rows_to_table(_llm_rows(plan, pool.rows, llm, rep, run, drops))
                pool = Pool(done, np.arange(done.num_rows, dtype=np.int64), pool.drops, pool.seen)
            pools[plan.key] = pool
    return pools


def _llm_rows(plan: Plan, rows: list[Row], llm: LLM, rep, run: RunDir, drops: Counter) -> list[Row]:
    """Per-row LLM fields, LLM_CHUNK rows per shard: a resumed build reuses finished shards."""
    out: list[Row] = []
    failed = 0
    with rep.bar(f"llm rows {plan.dataset}", total=len(rows), unit="row") as bar:
        for i in range(0, len(rows), LLM_CHUNK):
            idx = i // LLM_CHUNK
            cached = run.read_shard(plan.key, idx)
            if cached is None:
                chunk = [Row(**r.to_dict()) for r in rows[i:i + LLM_CHUNK]]
                try:
                    done, d = fill_llm_fields(plan, chunk, llm)
                except (BudgetExceeded, OfflineError) as e:
                    raise type(e)(f"{e} (stopped during {plan.key}, chunk {idx}; the run state is kept in {run.out})") from e
                failed += d.get("llm_failed", 0)
                drops.update(d)
                run.write_shard(plan.key, idx, done)
                cached = done
            out.extend(cached)
            bar.update(min(LLM_CHUNK, len(rows) - i))
    if rows and failed / len(rows) > 1 / 3:
        rep.event("skip", message=f"drop {plan.key}: {failed} of {len(rows)} LLM rows failed (more than a third)")
        drops["source_llm_failures"] += len(out)
        return []
    return out


def allocate(rows: list[Row], order: list[str], options: BuildOptions, labels: list[str] | None = None,
             weak: set[str] | frozenset = frozenset()) -> list[Row]:
    """allocate.py's rule over a list of rows (library callers)."""
    from . import allocate as _allocate

    return _allocate.allocate(rows, order, options.size, options.per_source_cap, labels, weak=weak)


def split_rows(table: pa.Table, validation_fraction: float) -> dict[str, pa.Table]:
    if validation_fraction <= 0 or table.num_rows < 2:
        return {"train": table}
    n_val = max(1, int(round(table.num_rows * validation_fraction)))
    return {"train": table.slice(n_val), "validation": table.slice(0, n_val)}


def estimate_rows(kept: list[Plan], catalog, options) -> dict:
    cap = source_cap(options, len({p.dataset for p in kept}))
    per_source = {p.key: min(p.checks.get("est_rows", 0), cap) for p in kept}
    llm_rows = sum(min(per_source[p.key], math.ceil(cap * 1.3)) * max(1, len(p.llm_fields)) for p in kept if p.needs_llm)
    return {"rows_per_source": per_source, "llm_calls_execute": llm_rows, "rows_total": min(options.size, sum(per_source.values()))}


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("datasets", "huggingface-hub", "openai", "pyarrow", "sentence-transformers", "xllamacpp", "bm25s"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out
