"""Run compiled plans over all rows, batched, with provenance; the LLM only for `llm` fields.

Compiled rows cost no LLM call. Fields the plan marks `llm` go through the LLM layer (bounded
concurrency, cache, budget); a source whose per-row LLM failures pass one third is dropped
(DataTune's rule).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Iterator

import datasets

from .compile import compile_plan
from .llm import LLM
from .plan import Plan
from .records import Row

BATCH = 8192


@dataclass
class SourceResult:
    plan: Plan
    rows: list[Row] = field(default_factory=list)
    drops: Counter = field(default_factory=Counter)
    seen: int = 0
    error: str = ""


def iter_mapped(plan: Plan, split: str, ds: datasets.Dataset, *, batch_size: int = BATCH) -> Iterator[tuple[list[Row], Counter]]:
    """Compiled rows of one split, a batch at a time (bounded memory on large splits)."""
    mapper = compile_plan(plan, ds.features)
    cols = [c for c in mapper.columns if c in ds.column_names]
    ds = ds.select_columns(cols)
    method = "llm" if plan.needs_llm else "mapped"
    start = 0
    for batch in ds.iter(batch_size=batch_size):
        m = mapper.map_batch(batch)
        drops = Counter(why for why in m.drops if why)
        rows = [Row(a, b, plan.dataset, plan.config, split, start + i, method)
                for i, (a, b, why) in enumerate(zip(m.inputs, m.outputs, m.drops)) if why is None]
        start += len(m.inputs)
        yield rows, drops


def execute_plan(plan: Plan, load: Callable[[str], datasets.Dataset], *, on_rows: Callable[[int], None] | None = None) -> SourceResult:
    """All compiled rows of a plan over its splits (load(split) -> Dataset)."""
    res = SourceResult(plan)
    for split in plan.splits:
        ds = load(split)
        for rows, drops in iter_mapped(plan, split, ds):
            res.rows.extend(rows)
            res.drops.update(drops)
            res.seen += len(rows) + sum(drops.values())
            if on_rows:
                on_rows(len(rows) + sum(drops.values()))
    return res


def fill_llm_fields(plan: Plan, rows: list[Row], llm: LLM, *, on_done: Callable[[int], None] | None = None) -> tuple[list[Row], Counter]:
    """Apply the plan's per-row LLM instructions; rows whose call failed are dropped and counted."""
    drops: Counter = Counter()
    fields = list(plan.llm_fields)
    if plan.output is not None and plan.output.kind == "llm":
        from .plan import LLMField

        fields.append(LLMField(target="output", instruction=plan.output.instruction or "Answer the task for this input."))
    for f in fields:
        requests = [
            [
                {"role": "system", "content": "You rewrite one field of a dataset row. Reply with the new value only."},
                {"role": "user", "content": f"Instruction: {f.instruction}\n\nInput: {r.input}\n\nCurrent {f.target}: {getattr(r, f.target) or '(none)'}"},
            ]
            for r in rows
        ]
        answers = llm.text_many(requests, stage="execute-llm", on_done=(lambda i: on_done(1)) if on_done else None)
        kept = []
        for r, a in zip(rows, answers):
            if isinstance(a, Exception) or not str(a).strip():
                drops["llm_failed"] += 1
                continue
            setattr(r, f.target, str(a).strip())
            r.method = "llm"
            kept.append(r)
        rows = kept
    return rows, drops
