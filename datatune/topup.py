"""Synthetic top-up: generate rows only where coverage is short.

Gaps are measured, not assumed: labels under their balanced share (or the whole set when the
sources fell short of --size). Generation is label-conditioned (TarGEN) and attribute-guided
(UniGen: attributes the LLM draws from the task and examples, cycled across requests) with a
temperature ramp for diversity; every synthetic row is deduplicated against everything kept.
Synthetic rows are `method = synthetic` and capped by --synthetic-fraction.
"""

from __future__ import annotations

import random
from collections import Counter

from pydantic import BaseModel, Field

from .curate import CurateConfig, curate
from .llm import LLM, InvalidOutput
from .records import Row
from .task import TaskSpec


class Attributes(BaseModel):
    attributes: list[str] = Field(min_length=1, max_length=8)


class SyntheticInput(BaseModel):
    input: str = Field(max_length=1200)


class SyntheticRow(BaseModel):
    input: str = Field(max_length=1200)
    output: str = Field(max_length=600)


def label_gaps(rows: list[Row], spec: TaskSpec, size: int, *, tolerance: float = 0.1) -> dict[str, int]:
    """Rows each label lacks for a balanced set of `size`; a label within `tolerance` of its share is not short."""
    counts = Counter(r.output for r in rows)
    gaps = {}
    for i, lb in enumerate(spec.labels):
        share = size // len(spec.labels) + (1 if i < size % len(spec.labels) else 0)
        if counts.get(lb, 0) < share * (1 - tolerance):
            gaps[lb] = share - counts.get(lb, 0)
    return gaps


def draw_attributes(spec: TaskSpec, llm: LLM) -> list[str]:
    shown = "; ".join(e.input[:120] for e in spec.examples[:3])
    msg = (f"Task: {spec.description}\n" + (f"Examples: {shown}\n" if shown else "") +
           "List short, varied attributes of inputs for this task (topics, styles, lengths, domains), one phrase each.")
    try:
        return llm.structured([{"role": "user", "content": msg}], Attributes, stage="topup").attributes
    except InvalidOutput:
        return ["everyday topic"]


def _prompt(spec: TaskSpec, label: str | None, attribute: str, shots: list[Row]) -> list[dict]:
    demo = "\n".join(f"- input: {r.input[:300]}" + ("" if label else f"\n  output: {r.output[:200]}") for r in shots)
    want = f"whose correct output is \"{label}\"" if label else "with its correct output"
    return [
        {"role": "system", "content": "You write new, realistic training examples for a task. Never copy an example."},
        {"role": "user", "content": f"Task: {spec.description}\nWrite one new input {want}. Attribute: {attribute}.\n"
                                    + (f"Examples of the kind of input:\n{demo}\n" if demo else "") + "Answer in JSON."},
    ]


def generate(spec: TaskSpec, wants: list[str | None], llm: LLM, *, seed: int, attributes: list[str], pool: list[Row],
             reporter=None, shots_for: list[list[Row]] | None = None) -> list[Row]:
    """One synthetic row per entry of `wants` (a label, or None for a free row).

    `shots_for` gives the demonstrations per request (an uncovered example); otherwise two rows of
    the same label are drawn from `pool`, or the user's examples when the pool is empty.
    """
    rng = random.Random(seed)
    requests, temps = [], []
    for i, label in enumerate(wants):
        if shots_for is not None:
            shots = shots_for[i]
        else:
            same = [r for r in pool if label is None or r.output == label] or pool
            shots = rng.sample(same, min(2, len(same))) if same else []
        shots = shots or [Row(e.input, e.output) for e in spec.examples[:2]]
        requests.append(_prompt(spec, label, attributes[i % len(attributes)], shots))
        temps.append(round(0.7 + 0.5 * i / max(1, len(wants) - 1), 2))  # temperature ramp 0.7 -> 1.2
    model = SyntheticInput if spec.output_kind == "label" else SyntheticRow
    out: list[Row] = []
    # one request per temperature step keeps the ramp while the batch runs concurrently
    groups: dict[float, list[int]] = {}
    for i, t in enumerate(temps):
        groups.setdefault(t, []).append(i)
    results: dict[int, object] = {}
    for t, idx in groups.items():
        answers = llm.structured_many([requests[i] for i in idx], model, stage="topup", temperature=t)
        results.update(zip(idx, answers))
    for i, label in enumerate(wants):
        a = results.get(i)
        if isinstance(a, Exception) or a is None:
            continue
        text = a.input.strip()
        output = label if label is not None else getattr(a, "output", "").strip()
        if text and output:
            out.append(Row(text, output, method="synthetic"))
    return out


def topup(rows: list[Row], spec: TaskSpec, *, options, llm: LLM, reporter=None, drops: Counter | None = None,
          max_rounds: int = 3, embedder=None, stats: dict | None = None) -> list[Row]:
    """Rows plus synthetic rows for the gaps; unchanged when nothing is short.

    Two kinds of gap: labels under their balanced share (or rows short of --size), then, with an
    `embedder` and user examples, examples with too few rows in their embedding neighbourhood
    (see coverage.py). `stats` receives the coverage before and after.
    """
    rows = _fill_gaps(rows, spec, options=options, llm=llm, reporter=reporter, drops=drops, max_rounds=max_rounds)
    if embedder is not None and spec.examples:
        rows = _cover_examples(rows, spec, options=options, llm=llm, reporter=reporter, drops=drops, embedder=embedder, stats=stats)
    return rows


def _cover_examples(rows: list[Row], spec: TaskSpec, *, options, llm: LLM, reporter, drops, embedder, stats) -> list[Row]:
    """Synthetic rows written after each uncovered example, swapped in for sourced rows of the same output."""
    from .coverage import example_coverage

    before = example_coverage(rows, spec.examples, embedder)
    if stats is not None:
        stats["example_coverage_before"] = before.to_dict()
    budget = int(options.size * options.synthetic_fraction) - sum(r.method == "synthetic" for r in rows)
    wants, shots = [], []
    for i in before.uncovered:
        e = spec.examples[i]
        label = e.output if spec.output_kind == "label" and e.output in spec.labels else None
        for _ in range(before.min_neighbours - before.neighbours[i]):
            wants.append(label)
            shots.append([Row(e.input, e.output)])
    wants, shots = wants[:max(0, budget)], shots[:max(0, budget)]
    if not wants:
        if stats is not None:
            stats["example_coverage"] = before.to_dict()
        return rows
    if reporter:
        reporter.event("topup", message=f"top-up: {len(wants)} synthetic rows near {len(before.uncovered)} uncovered examples")
    fresh = generate(spec, wants, llm, seed=options.seed + 100, attributes=["the same kind of input and topic as the example, in new words"], pool=rows, shots_for=shots)
    result = curate(rows + fresh, spec, eval_texts=options.eval_texts, config=CurateConfig(embedding_duplicates=False))
    survivors = {id(r) for r in result.rows}
    new = [r for r in fresh if id(r) in survivors]
    if drops is not None:
        drops["synthetic_rejected"] += len(fresh) - len(new)
    # keep --size: each new row replaces a sourced row with the same output, taken from the end
    out = list(rows)
    for r in new:
        if len(out) < options.size:
            out.append(r)
            continue
        for j in range(len(out) - 1, -1, -1):
            if out[j].method != "synthetic" and (spec.output_kind != "label" or out[j].output == r.output):
                out[j] = r
                break
    after = example_coverage(out, spec.examples, embedder)
    if stats is not None:
        stats["example_coverage"] = after.to_dict()
    return out


def _fill_gaps(rows: list[Row], spec: TaskSpec, *, options, llm: LLM, reporter, drops, max_rounds: int) -> list[Row]:
    size = options.size
    budget = int(size * options.synthetic_fraction)
    if spec.output_kind == "label" and spec.labels:
        need = label_gaps(rows, spec, size)
    else:
        need = {None: size - len(rows)} if len(rows) < size else {}
    total_need = min(budget, sum(need.values()))
    if total_need <= 0:
        return rows[:size]
    if reporter:
        reporter.event("topup", message=f"top-up: {total_need} synthetic rows for " + ", ".join(f"{k or 'all'}={v}" for k, v in need.items()))
    attributes = draw_attributes(spec, llm)
    made: list[Row] = []
    cfg = CurateConfig(embedding_duplicates=False)
    for rnd in range(max_rounds):
        counts = Counter(r.output for r in made)
        wants = [lb for lb, n in need.items() for _ in range(max(0, n - counts.get(lb, 0) if lb else n - len(made)))]
        wants = wants[: total_need - len(made)]
        if not wants:
            break
        fresh = generate(spec, wants, llm, seed=options.seed + rnd, attributes=attributes, pool=rows, reporter=reporter)
        # dedup against everything kept: run the curation filters over kept + synthetic, keep surviving synthetic rows
        result = curate(rows + made + fresh, spec, eval_texts=options.eval_texts, config=cfg)
        survivors = {id(r) for r in result.rows}
        new = [r for r in fresh if id(r) in survivors]
        if drops is not None:
            drops["synthetic_rejected"] += len(fresh) - len(new)
        made += new
    return rows + made[:total_need]
