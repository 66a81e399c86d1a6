"""Stage 6 (--verify): the chosen rows' labels against the LLM's blind labels (verify.py)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ..allocate import Selection
from ..records import rows_to_table, table_to_rows
from ..task import TaskSpec
from .context import Context


@dataclass
class Verified:
    drops: Counter = field(default_factory=Counter)
    record: dict = field(default_factory=dict)  # policy, counts, calls: the card's and manifest's "verification"


def verify_labels(chosen: Selection, spec: TaskSpec, ctx: Context) -> Verified:
    """Checks the chosen rows only (the budget goes where it counts); rows are flagged, relabelled or
    dropped in `chosen` by the policy."""
    from ..verify import verify_rows

    opts, rep = ctx.options, ctx.reporter
    budget = opts.verify_budget if opts.verify_budget is not None else 2 * chosen.num_rows
    vr = verify_rows(table_to_rows(chosen.table()), spec, ctx.llm, policy=opts.verify, max_calls=budget, votes=3, seed=opts.seed, reporter=rep)
    chosen.replace(rows_to_table(vr.rows))
    record = {"policy": opts.verify, **dict(vr.counts), "calls": vr.calls, **({"note": vr.note} if vr.note else {})}
    if vr.note:
        rep.event("verify", message=f"verify: rows left unchecked: {vr.note}")
    rep.event("verify", message="verify: " + ", ".join(f"{k} {v}" for k, v in vr.counts.items() if v), verification=record)
    return Verified(Counter(vr.dropped), record)
