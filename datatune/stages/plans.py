"""Stage 3: a plan for each candidate, in rank order, until the kept ones cover --size.

Each plan is checked on real rows (planner.py), then accepted only when its transformed rows are
the kind of thing the task asks for (the calibrated relevance gate and the LLM's kind judge). A kept
plan is copied to its sibling configs (MMLU's subjects) and given its row estimates.
"""

from __future__ import annotations

from ..allocate import split_order
from ..core.errors import DatasetLoadError
from ..plan import LLMField, Plan
from ..planner import Candidate, plan_candidate, reject
from ..task import TaskSpec
from .context import Context


def plan_sources(spec: TaskSpec, candidates: list[Candidate], ctx: Context, *, embedder=None) -> list[Plan]:
    """Plan candidates in rank order until enough kept sources cover --size (or candidates run out).
    `embedder` scores each plan's transformed inputs for the relevance gate (gate.py); None skips it.
    Plans of an interrupted run (the run folder's plans.json) are reused, not asked again."""
    opts, rep = ctx.options, ctx.reporter
    done = {p.key: p for p in (Plan.model_validate(x) for x in (ctx.state("plans.json") or []))}
    plans: list[Plan] = []
    need = opts.size
    with rep.bar("plan", total=min(sum(c.entry.has_rows and c.config.has_rows for c in candidates), opts.max_candidates), unit="dataset") as bar:
        planned = 0
        for rank, c in enumerate(candidates, 1):
            c.rank = rank
            # only rows outside test splits count as enough: a test-only source (MATH, gsm8k's socratic
            # config) must not stop planning before a source with a train split is found
            kept_rows = sum(p.rows_not_test for p in plans if p.keep)
            kept_sources = len({p.dataset for p in plans if p.keep and (p.est_rows_not_test is None or p.est_rows_not_test)})
            if planned >= opts.max_candidates or (kept_rows >= 2 * need and kept_sources >= 2):
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
                p = plan_one(spec, c, ctx, embedder=embedder)
                planned += 1
                if p.keep:
                    plans += sibling_plans(p, c, opts.splits)
                bar.update()
                rep.event("plan", message=f"{'keep' if p.keep else 'reject'} {c.key}: {p.reason}", key=c.key, keep=p.keep)
            plans.append(p)
            ctx.save("plans.json", [x.model_dump() for x in plans])
    return plans


def report_plans(plans: list[Plan], ctx: Context) -> None:
    kept = [p for p in plans if p.keep]
    siblings = sum(p.same_plan_as is not None for p in kept)
    planned = len(plans) - sum(p.card_only or p.same_plan_as is not None for p in plans)
    card_only = sum(p.card_only for p in plans)
    ctx.reporter.event("plans", message=f"{len(kept) - siblings} of {planned} planned kept"
                       + (f", with {siblings} sibling configs on the same plan" if siblings else "")
                       + (f"; {card_only} card-only skipped" if card_only else "")
                       + ": " + ", ".join(p.key for p in kept), kept=[p.key for p in kept])


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
        share = plan.est_rows / max(1, c.config.num_rows)
        p.est_rows, p.same_plan_as = int(cfg.num_rows * share), plan.config
        p.est_rows_not_test = int(sum(n for sp, n in cfg.splits.items() if sp != "test" and sp in p.splits) * share)
        out.append(p)
    return out


def plan_one(spec: TaskSpec, c: Candidate, ctx: Context, *, embedder=None) -> Plan:
    """One candidate's plan, checked on its rows and accepted or rejected with the reason."""
    opts = ctx.options
    # sample from the largest labelled-looking split: train, then validation, test last (often unlabelled)
    allowed = [s for s in c.config.splits if opts.splits is None or s in opts.splits]
    if c.config.splits and not allowed:
        return reject(c, f"it has no {'/'.join(opts.splits or [])} split (--splits); its splits: {', '.join(c.config.splits)}")
    pref = {"train": 0, "validation": 1, "test": 3}
    splits = sorted(allowed, key=lambda s: (pref.get(s, 2), -c.config.splits[s])) or ["train"]
    try:
        ds = ctx.catalog.load(c.entry.id, c.config.name, splits[0])
    except DatasetLoadError as e:
        return reject(c, str(e), kind="load_failed")
    plan = plan_candidate(spec, c, ds, llm=ctx.llm, seed=opts.seed, mode=opts.planner)
    if plan.keep:
        accept_rows(plan, spec, ds, ctx.llm, votes=opts.judge_votes, seed=opts.seed, embedder=embedder)
    if plan.keep:
        plan.splits = split_order(allowed) or splits
        kept_share = plan.checks.get("rows_kept", 0) / max(1, plan.checks.get("rows_checked", 1))
        plan.est_rows = int(sum(c.config.splits.get(s, 0) for s in plan.splits) * kept_share)
        plan.est_rows_not_test = int(sum(c.config.splits.get(s, 0) for s in plan.splits if s != "test") * kept_share)
        translate_fields(spec, c, plan)
    return plan


def accept_rows(plan: Plan, spec: TaskSpec, ds, llm, *, votes: int, seed: int = 0, embedder=None) -> None:
    """Semantic acceptance of a kept plan, on a sample of its transformed inputs: the relevance gate
    (gate.py: MiniLM cosine to the examples against calibrated bars; skipped, and recorded as skipped,
    without an embedder) and the LLM kind judge over `votes` inputs (acceptance.py; 0 = not asked).
    A rejected plan's reason says which and why; both verdicts go to plan.checks (plans.json)."""
    from ..gate import GATE_ROWS, GateVerdict, combine, relevance_gate

    if embedder is None and not votes:
        plan.checks["relevance_gate"] = GateVerdict(reason="skipped: the build has no embedder, so the relevance gate was not run").to_dict()
        return
    from ..acceptance import judge_inputs
    from ..compile import compile_plan
    from ..planner import sample_rows

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


def translate_fields(spec: TaskSpec, c: Candidate, plan: Plan) -> None:
    """A source in another language than the task's: the LLM writes the fields per row."""
    from ..expand import LANGUAGES

    langs = {x.lower()[:2] for x in c.entry.languages}
    if langs and spec.language not in langs and "multilingual" not in langs:
        name = {v: k for k, v in LANGUAGES.items()}.get(spec.language, spec.language).capitalize()
        plan.llm_fields.append(LLMField(target="input", instruction=f"Translate the input into {name}. Keep its meaning and format."))
        if spec.output_kind in ("text", "span"):
            plan.llm_fields.append(LLMField(target="output", instruction=f"Translate the output into {name}."))
