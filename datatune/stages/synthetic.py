"""Stage 7: synthetic rows, only where the sourced rows leave a gap (topup.py)."""

from __future__ import annotations

from typing import Callable

from ..allocate import Selection
from ..records import rows_to_table, table_to_rows
from ..task import TaskSpec
from ..topup import ToppedUp
from .context import Context


def top_up(chosen: Selection, spec: TaskSpec, ctx: Context, topup_fn: Callable[..., ToppedUp], *, embedder=None) -> ToppedUp:
    """`topup_fn` (topup.topup by default) over the chosen rows; they are replaced by its rows in `chosen`."""
    done = topup_fn(table_to_rows(chosen.table()), spec, options=ctx.options, llm=ctx.llm, reporter=ctx.reporter, embedder=embedder)
    chosen.replace(rows_to_table(done.rows))
    return done
