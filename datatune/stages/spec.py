"""Stage 1: the task spec, from the description and examples (or from a plans.json being re-run)."""

from __future__ import annotations

from ..expand import expand_task
from ..plan import PlanFile, load_plans
from ..task import TaskSpec
from .context import Context


def task_spec(description: str, ctx: Context) -> tuple[TaskSpec, PlanFile | None]:
    """The spec, and the saved plans when the build re-runs a plans.json (`--plans`, `datatune apply`).

    A spec the LLM answered is kept in the run folder (a resumed build asks nothing); one read
    without the model's answer is not, so a later run, with the endpoint fixed, asks again."""
    opts, llm, rep = ctx.options, ctx.llm, ctx.reporter
    saved: PlanFile | None = None
    if opts.plans_file:
        saved = load_plans(opts.plans_file)
        spec = saved.task
    elif (s := ctx.state("spec.json")) is not None:
        spec = TaskSpec.model_validate(s)
    else:
        failed = llm.usage.stage("task").failures
        spec = expand_task(description, opts.examples, llm)
        if llm.usage.stage("task").failures == failed:
            ctx.save("spec.json", spec.model_dump())
        else:
            rep.event("spec", message="the LLM gave no valid task spec; using what the description and examples show")
    rep.event("spec", message=f"task: {spec.output_kind}" + (f" {spec.labels}" if spec.labels else "") + f", language {spec.language}",
              spec=spec.model_dump())
    return spec, saved
