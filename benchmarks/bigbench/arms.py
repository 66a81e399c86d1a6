"""The arms of the comparison: how each one's training set is built (or, for few-shot, how it answers).

| arm | what |
| --- | --- |
| `few-shot` | no training data: the embedded LLM answers each test item given the two examples, through datatune's LLM layer with a structured answer whose value is an enum of the item's options |
| `datatune` | `build()` as the CLI wires it: retrieve, plan, execute, curate; no synthetic rows |
| `datatune+synthetic` | the same build, with the top-up stage filling part of the set (`synthetic_share`, default half) with datatune's synthetic rows |
| `synthetic` | datatune's own top-up and nothing else: the build is given a retriever that returns no candidates |
| `datatune-fixed-plans` | diagnostic: the `datatune` build's plans with the planner's mistakes corrected by hand, re-executed (no planning calls) |

Every build gets the task description, the two examples (as the examples file a user passes with
`--examples`), the test inputs as the contamination eval set (`--eval-file`), and the benchmark
guard: `benchmark="bigbench"` and `exclude=["bigbench"]`, so the catalog's `bigbench` card is never a
candidate. The stages are injected exactly as `datatune/cli.py` does (`_run_build`), with two seams of
build() used on purpose: `retriever` (empty for `synthetic`) and `topup_fn` (the share for
`datatune+synthetic`).
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Literal

from .tasks import LETTERS, Item, Split, Task

ARMS = ("few-shot", "datatune", "datatune+synthetic", "synthetic")
# diagnostic, run only when asked for: datatune's own plans with what the planner got wrong corrected by
# hand (benchmarks/bigbench/plans/<task>.json), executed by build() as `datatune apply` would
DIAGNOSTIC_ARMS = ("datatune-fixed-plans",)
BENCHMARK = "bigbench"


@dataclass
class Env:
    """What a build needs, wired as the CLI wires it (or injected by tests)."""

    catalog: object
    llm_factory: Callable[[], object]  # a fresh LLM (its own usage counts) per arm; the embedded server is shared
    retriever: Callable
    embedder: object | None = None
    reporter: object | None = None
    model: str = ""


def make_env(catalog_path: str, *, model: str | None = None, base_url: str | None = None, concurrency: int | None = None,
             no_cache: bool = False, progress: bool = True, embed: bool = True) -> Env:
    """The CLI's wiring (datatune/cli.py: make_settings, _quiet_libraries, _run_build)."""
    from datatune.catalog import open_catalog
    from datatune.cli import _quiet_libraries, _reporter, make_settings
    from datatune.llm import open_llm
    from datatune.retrieve import make_retriever

    _quiet_libraries()
    settings = make_settings(catalog_path, model, base_url, concurrency, None, no_cache)
    catalog = open_catalog(settings.catalog)
    reporter = _reporter(quiet=not progress, as_json=False)
    retriever = make_retriever(catalog, benchmark=BENCHMARK, reporter=reporter)
    embedder = None
    if embed:
        from datatune.embed import get_embedder

        embedder = get_embedder()
    return Env(catalog, lambda: open_llm(settings), retriever, embedder, reporter, model or settings.model or "qwen2.5-coder-1.5b")


def no_candidates(query, k, exclude, **kwargs):
    """The `synthetic` arm's retriever: nothing is retrieved, so nothing is transformed."""
    return []


def balanced_subset(rows, n: int, seed: int):
    """n rows taken round-robin across outputs (labels or letters), each output's rows in their order."""
    by_out: dict[str, list] = {}
    for r in rows:
        by_out.setdefault(r.output, []).append(r)
    keys = sorted(by_out)
    random.Random(f"{seed}:mix").shuffle(keys)
    out, i = [], 0
    while len(out) < min(n, len(rows)):
        for k in keys:
            if i < len(by_out[k]) and len(out) < n:
                out.append(by_out[k][i])
        i += 1
    return out


def shared_topup(share: float):
    """A top-up that keeps (1 - share) of the retrieved rows and lets datatune's top-up fill the rest.

    datatune tops up only where coverage is short, so with enough retrieved rows it adds none; the
    paper's "DataTune + synthetic" arm mixes both kinds, which this reproduces at the same size N."""
    from datatune.topup import topup

    def topup_fn(rows, spec, *, options, llm, **kwargs):
        keep = balanced_subset(rows, options.size - int(round(options.size * share)), options.seed)
        return call_topup(topup, keep, spec, options=replace(options, synthetic_fraction=share), llm=llm, **kwargs)

    return topup_fn


def call_topup(fn, rows, spec, **kwargs):
    """`fn(rows, spec, **kwargs)` with only the keyword arguments its signature takes (it grows over time)."""
    import inspect

    params = inspect.signature(fn).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        kwargs = {k: v for k, v in kwargs.items() if k in params}
    return fn(rows, spec, **kwargs)


def _fingerprint_matches(options, description: str, catalog) -> bool:
    from datatune.rundir import RunDir, fingerprint

    run = RunDir(options.out).read_json("run.json")
    return run is not None and run.get("fingerprint") == fingerprint(options.fingerprint_fields(description, catalog.location))


def build_options(arm: str, out: Path, *, task: Task, split: Split, size: int, seed: int, synthetic_share: float,
                  plans_file: Path | None = None):
    from datatune.pipeline import BuildOptions
    from datatune.task import Example

    common = dict(out=out, size=size, seed=seed, examples=[Example(input=e.text, output=e.answer) for e in split.examples],
                  eval_texts=split.eval_texts, exclude=[BENCHMARK], benchmark=BENCHMARK)
    if arm == "datatune":
        return BuildOptions(**common, synthetic=False)
    if arm == "datatune+synthetic":
        return BuildOptions(**common, synthetic=True, synthetic_fraction=synthetic_share)
    if arm == "synthetic":
        return BuildOptions(**common, synthetic=True, synthetic_fraction=1.0)
    if arm == "datatune-fixed-plans":
        if plans_file is None or not Path(plans_file).is_file():
            raise ValueError(f"the {arm} arm needs a plans file (benchmarks/bigbench/plans/<task>.json); none at {plans_file}")
        return BuildOptions(**common, synthetic=False, plans_file=Path(plans_file))
    raise ValueError(f"not a build arm: {arm}")


def run_build(arm: str, env: Env, *, task: Task, split: Split, out: Path, size: int, seed: int, synthetic_share: float = 0.5,
              plans_file: Path | None = None) -> dict:
    """Build one arm's set; returns its rows, spec, manifest and how it was built."""
    from datatune.curate import curate
    from datatune.pipeline import build
    from datatune.topup import topup

    options = build_options(arm, out, task=task, split=split, size=size, seed=seed, synthetic_share=synthetic_share, plans_file=plans_file)
    if out.exists():
        if _fingerprint_matches(options, task.description, env.catalog):
            options.resume = True  # an interrupted build of the same inputs continues
        else:
            options.overwrite = True
    llm = env.llm_factory()
    retriever = no_candidates if arm == "synthetic" else env.retriever
    topup_fn = {"datatune": None, "datatune+synthetic": shared_topup(synthetic_share), "synthetic": topup, "datatune-fixed-plans": None}[arm]
    t0 = time.perf_counter()
    path = "build()"
    res = build(task.description, catalog=env.catalog, llm=llm, retriever=retriever, options=options, reporter=env.reporter,
                curate_fn=curate, topup_fn=topup_fn, embedder=env.embedder)
    rows = [r for rs in res.rows.values() for r in rs]
    spec, manifest, plans = res.spec, res.manifest, res.plans
    wall = round(time.perf_counter() - t0, 2)
    return {"rows": rows, "spec": spec, "manifest": manifest, "plans": plans, "llm": llm, "wall_s": wall, "path": path}


# -- few-shot ---------------------------------------------------------------------------------
SYSTEM = "You answer one item of a task, the way the examples are answered. Reply with JSON."


def few_shot_messages(task: Task, examples: list[Item], item: Item) -> list[dict]:
    shots = "\n\n".join(f"Input:\n{e.text}\nAnswer: {e.answer}" for e in examples)
    want = "the letter of the correct option" if item.lettered else "one of: " + ", ".join(item.options)
    # the shared part first, the item last: the server reuses the cached prompt prefix across items
    return [{"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"Task: {task.description}\n\nExamples:\n\n{shots}\n\nInput:\n{item.text}\nAnswer with {want}."}]


def answer_model(values: tuple[str, ...]):
    from pydantic import create_model

    return create_model("Answer", answer=(Literal[values], ...))  # type: ignore[valid-type]


def few_shot(task: Task, split: Split, items: list[Item], llm) -> tuple[list[int | None], dict]:
    """The LLM's choice for each item (None when it gave no valid answer)."""
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, it in enumerate(items):
        enum = tuple(LETTERS[: len(it.options)]) if it.lettered else tuple(it.options)
        groups.setdefault(enum, []).append(i)
    choices: list[int | None] = [None] * len(items)
    t0 = time.perf_counter()
    for enum, idx in groups.items():
        model = answer_model(enum)
        answers = llm.structured_many([few_shot_messages(task, split.examples, items[i]) for i in idx], model, stage="few-shot")
        for i, a in zip(idx, answers):
            if not isinstance(a, Exception):
                choices[i] = enum.index(a.answer)
    return choices, {"seconds": round(time.perf_counter() - t0, 2), "failures": sum(c is None for c in choices)}


def usage_of(llm) -> dict:
    t = llm.usage.to_dict()
    return {"calls": t["total"]["calls"], "cache_hits": t["total"]["cache_hits"], "prompt_tokens": t["total"]["prompt_tokens"],
            "completion_tokens": t["total"]["completion_tokens"], "failures": t["total"]["failures"],
            "by_stage": {k: v["calls"] + v["cache_hits"] for k, v in t["stages"].items()}}


def provenance(rows) -> dict:
    """Rows by source (dataset:config:split) and method, and a few rows as they were traced."""
    by = Counter(f"{r.source_dataset or '(synthetic)'}:{r.source_config}:{r.source_split}" if r.source_dataset else "(synthetic)" for r in rows)
    return {
        "by_source": dict(by.most_common()),
        "by_method": dict(Counter(r.method for r in rows).most_common()),
        "sources": sorted({f"{r.source_dataset}:{r.source_config}" for r in rows if r.source_dataset}),
        "sample": [{k: v for k, v in r.to_dict().items() if k != "check"} | {"input": r.input[:300]} for r in rows[:3]],
    }


def save_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str), encoding="utf-8")
    tmp.replace(path)
