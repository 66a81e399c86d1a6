"""The same-model comparison (issue 18): one small instruction model, prompted few-shot against LoRA-tuned on each arm's rows.

    .venv/bin/python -m benchmarks.bigbench.samemodel --all                    # builds, then students, then RESULTS.md
    .venv/bin/python -m benchmarks.bigbench.samemodel --all --phase build      # the sets only (LLM-bound)
    .venv/bin/python -m benchmarks.bigbench.samemodel --all --phase student    # the students on finished sets
    .venv/bin/python -m benchmarks.bigbench.samemodel --all --device cuda --student-model mistralai/Mistral-7B-v0.1 \\
        --size 3000 --paper-scale                                              # the paper's scale, on a GPU

Phases, each resumable:

1. **build**: each build arm (`datatune`, `datatune+synthetic`, `synthetic`) of each task, with
   `arms.run_build` (the CLI's wiring), into OUT/<task>/<arm>/build; a finished build is marked by
   OUT/<task>/<arm>/build.json and skipped; an interrupted one resumes from its run state.
2. **student**: the base student model answers the scored items with the task's two examples
   (`few-shot`), and a LoRA adapter trained on each set's rows answers them zero-shot in the training
   format; both by the options' log-likelihood (`student.LoRAStudent`). Each (task, arm, settings)
   result is a JSON file under benchmarks/bigbench/results_samemodel/<task>/ keyed by a hash of the
   settings and the training rows, and adapters are saved under the cache folder (default
   ~/.cache/datatune-bench), so a rerun reads what is done and trains only what is missing.
3. **report**: RESULTS.md (report.py) from the result files.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

from .arms import ARMS, make_env, provenance, run_build, save_json, usage_of
from .run import ALL_TASKS, TASKS_DIR, slug, slug_arm, versions
from .tasks import load_task, score_choices, split_task, write_eval_file, write_examples

HERE = Path(__file__).resolve().parent
BUILD_ARMS = tuple(a for a in ARMS if a != "few-shot")
RESULTS_DIR = HERE / "results_samemodel"
DEFAULT_SIZE = 40
DEFAULT_TEST = 40


def cache_root() -> Path:
    return Path(os.environ.get("DATATUNE_BENCH_CACHE") or Path.home() / ".cache" / "datatune-bench")


def task_paths(args) -> list[str]:
    if args.all:
        return [str(Path(args.tasks_dir) / t / "task.json") for t in ALL_TASKS]
    return list(args.task)


def prepare(task_path: str, out: Path, *, n_test: int, seed: int):
    task = load_task(task_path, seed=seed)
    split = split_task(task, n_eval=n_test, seed=seed)
    tdir = out / slug(task.name)
    write_examples(split.examples, tdir / "examples.jsonl")
    write_eval_file(split.eval_texts, tdir / "eval.jsonl")
    return task, split, tdir


# -- phase 1: the sets ---------------------------------------------------------------------------
def build_phase(task_path: str, *, out: Path, env_factory, size: int, n_test: int, seed: int, synthetic_share: float,
                arms: tuple[str, ...] = BUILD_ARMS, force: bool = False, log=print) -> dict[str, dict]:
    task, split, tdir = prepare(task_path, out, n_test=n_test, seed=seed)
    done: dict[str, dict] = {}
    for arm in arms:
        if arm not in BUILD_ARMS:
            continue
        adir = tdir / slug_arm(arm)
        marker = adir / "build.json"
        if marker.is_file() and not force:
            done[arm] = json.loads(marker.read_text())
            log(f"[{task.name}] {arm}: built ({done[arm]['rows']} rows, {done[arm]['build_s']} s)")
            continue
        failed = adir / "build_error.json"
        if failed.is_file() and not force:
            done[arm] = json.loads(failed.read_text())
            log(f"[{task.name}] {arm}: failed before ({done[arm]['error'][:120]})")
            continue
        log(f"[{task.name}] {arm}: building {size} rows ...")
        env = env_factory()
        t0 = time.perf_counter()
        try:
            b = run_build(arm, env, task=task, split=split, out=adir / "build", size=size, seed=seed, synthetic_share=synthetic_share)
        except Exception as e:  # datatune found no set (e.g. no candidate fits): recorded, and the other arms go on
            from datatune.core.errors import DatatuneError

            if not isinstance(e, DatatuneError):
                raise
            plans = _plans_of(adir / "build")
            info = {"arm": arm, "rows": 0, "error": f"{type(e).__name__}: {e}", "build_s": round(time.perf_counter() - t0, 2),
                    "size": size, "seed": seed, "synthetic_share": synthetic_share, "plans": plans}
            save_json(failed, info)
            done[arm] = info
            log(f"[{task.name}] {arm}: no set ({info['error'][:300]})")
            continue
        info = {"arm": arm, "rows": len(b["rows"]), "build_s": b["wall_s"], "llm": usage_of(b["llm"]), "model": b["llm"].endpoint.model,
                "size": size, "seed": seed, "synthetic_share": synthetic_share, "provenance": provenance(b["rows"])["by_source"],
                "plans": {"kept": [f"{p.key} ({p.reason})" for p in b["plans"] if p.keep],
                          "rejected": [f"{p.key}: {p.reason}"[:200] for p in b["plans"] if not p.keep and not p.card_only]}}
        save_json(marker, info)
        done[arm] = info
        log(f"[{task.name}] {arm}: {info['rows']} rows in {info['build_s']} s; sources {info['provenance']}")
    return done


def _plans_of(bdir: Path) -> dict:
    """What the planner decided in a build folder (kept / rejected), if it got that far."""
    try:
        from datatune.plan import load_plans

        plans = load_plans(bdir / "plans.json").plans if (bdir / "plans.json").is_file() else []
    except Exception:
        return {}
    return {"kept": [f"{p.key} ({p.reason})" for p in plans if p.keep],
            "rejected": [f"{p.key}: {p.reason}"[:200] for p in plans if not p.keep and not getattr(p, "card_only", False)]}


def load_set(adir: Path):
    """A finished build's rows, spec, manifest and plans."""
    from datatune.plan import load_plans
    from datatune.report import load_built

    bdir = adir / "build"
    rows, spec = load_built(bdir)
    manifest = json.loads((bdir / "manifest.json").read_text()) if (bdir / "manifest.json").is_file() else {}
    plans = load_plans(bdir / "plans.json").plans if (bdir / "plans.json").is_file() else []
    return rows, spec, manifest, plans


def builds_done(task_path: str, out: Path, arms: tuple[str, ...], *, seed: int) -> bool:
    """Every build arm of the task has finished (build.json) or failed (build_error.json)."""
    tdir = out / slug(load_task(task_path, seed=seed).name)
    return all(any((tdir / slug_arm(a) / f).is_file() for f in ("build.json", "build_error.json")) for a in arms if a in BUILD_ARMS)


def ready_first(tasks: list[str], out: Path, arms: tuple[str, ...], *, seed: int, poll_s: float = 30.0, log=print):
    """The tasks in the order their builds finish (a --phase build run in another process makes them)."""
    pending = list(tasks)
    said = False
    while pending:
        ready = [t for t in pending if builds_done(t, out, arms, seed=seed)]
        if not ready:
            if not said:
                log(f"waiting for builds: {len(pending)} tasks left")
                said = True
            time.sleep(poll_s)
            continue
        said = False
        pending.remove(ready[0])
        yield ready[0]


# -- phase 2: the students -------------------------------------------------------------------------
TRAINING_FIELDS = ("epochs", "batch", "lr", "lora_r", "lora_alpha", "lora_dropout", "lora_layers", "targets", "max_steps", "max_length")


def reading_settings(cfg: dict) -> dict:
    """What the few-shot reading depends on: the model and how it reads, not how an adapter would be trained."""
    return {k: v for k, v in cfg.items() if k not in TRAINING_FIELDS}


def result_key(cfg: dict, arm: str, task_name: str, items, groups) -> str:
    """What a cached student result depends on: the settings, the scored items and the training rows."""
    h = hashlib.sha256()
    h.update(json.dumps({"cfg": cfg, "arm": arm, "task": task_name}, sort_keys=True).encode())
    for it in items:
        h.update(json.dumps([it.text, it.options, it.scores]).encode())
    for g in groups or []:
        h.update(json.dumps([g.input, g.candidates, g.correct]).encode())
    return h.hexdigest()[:16]


def student_phase(task_path: str, *, out: Path, student, size: int, n_test: int, seed: int, arms: tuple[str, ...] = ARMS,
                  results_dir: Path = RESULTS_DIR, embedder=None, catalog=None, force: bool = False, log=print) -> dict:
    """Every arm of one task read by the same student; returns (and writes) the task's result."""
    from .metrics import intrinsic, label_accuracy
    from .student import groups_from_rows

    task, split, tdir = prepare(task_path, out, n_test=n_test, seed=seed)
    items = split.eval_subset
    cfg = student.settings()
    rdir = results_dir / slug(task.name)
    arms_out: dict[str, dict] = {}
    for arm in arms:
        groups, gstats, extra = None, None, {}
        if arm != "few-shot":
            adir = tdir / slug_arm(arm)
            if not (adir / "build.json").is_file():
                if not (adir / "build_error.json").is_file():
                    log(f"[{task.name}] {arm}: no finished build in {adir}; skipped")
                    continue
                # the build found no set: the student trained on nothing is the base model, read zero-shot
                err = json.loads((adir / "build_error.json").read_text())
                rows, spec, groups, gstats, labels = [], None, [], {"rows": 0, "usable": 0}, task.labels or None
                extra = {"rows": 0, "build_error": err["error"], "build_s": err["build_s"], "plans": err.get("plans") or {},
                         "provenance": {"by_source": {}, "by_method": {}, "sources": []}}
            else:
                rows, spec, manifest, plans = load_set(adir)
                labels = spec.labels if spec is not None and spec.output_kind == "label" else (task.labels or None)
                groups, gstats = groups_from_rows(rows, labels=labels or task.labels or None, seed=seed)
                binfo = json.loads((adir / "build.json").read_text())
                extra = {"rows": len(rows), "provenance": provenance(rows), "drops": (manifest.get("quality") or {}).get("drops", {}),
                         "build_s": binfo["build_s"], "llm": binfo["llm"], "model": binfo["model"],
                         "plans": {"kept": [f"{p.key} ({p.reason})" for p in plans if p.keep], "planned": len([p for p in plans if not p.card_only]),
                                   "rejected": [f"{p.key}: {p.reason}"[:200] for p in plans if not p.keep and not p.card_only]},
                         "spec": {"output_kind": getattr(spec, "output_kind", None), "labels": getattr(spec, "labels", None)}}
        key = result_key(reading_settings(cfg) if arm == "few-shot" else cfg, arm, task.name, items, groups)
        f = rdir / f"{slug_arm(arm)}.json"
        if f.is_file() and not force:
            prev = json.loads(f.read_text())
            if prev.get("key") == key:
                arms_out[arm] = prev
                log(f"[{task.name}] {arm}: cached ({prev['score']['normalized_score']} ± {prev['score']['normalized_se']})")
                continue
        t0 = time.perf_counter()
        if arm == "few-shot":
            student.reset()
            choices, info = student.answer(items, examples=split.examples, description=task.description)
            res = {"arm": arm, "rows": 0, "student": {"kind": student.kind, "adapter": None, **info}}
        else:
            student.reset()
            trained = student.train(groups, description=task.description)
            adapter = cache_root() / "adapters" / slug(task.name) / f"{slug_arm(arm)}-{key}"
            student.save_adapter(adapter)
            choices, info = student.answer(items, description=task.description)
            res = {"arm": arm, **extra, "student": {"kind": student.kind, "adapter": str(adapter), "training_groups": gstats, **trained, **info}}
            t1 = time.perf_counter()
            try:
                res["intrinsic"] = intrinsic(rows, spec, embedder=embedder) if embedder is not None and rows else None
                res["label_accuracy"] = label_accuracy(rows, catalog, labels=labels or task.labels or None) if catalog is not None and rows else None
            except Exception as e:  # a measure must not lose the student's result
                res["metrics_error"] = f"{type(e).__name__}: {e}"
            res["metrics_s"] = round(time.perf_counter() - t1, 2)
        res["score"] = score_choices(items, choices)
        res["student_s"] = round(time.perf_counter() - t0, 2)
        res["key"], res["settings"] = key, cfg
        save_json(f, res)
        arms_out[arm] = res
        log(f"[{task.name}] {arm}: {res['score']['normalized_score']} ± {res['score']['normalized_se']} in {res['student_s']} s")
    for other in ARMS:  # an arm this run didn't touch (--arms) keeps its last result
        f = rdir / f"{slug_arm(other)}.json"
        if other not in arms_out and f.is_file():
            arms_out[other] = json.loads(f.read_text())
    arms_out = {a: arms_out[a] for a in ARMS if a in arms_out}
    result = {"task": task.name, "task_path": task.path, "description": task.description, "lettered": task.lettered,
              "labels": task.labels, "items": len(task.items), "split": split.summary(),
              "config": {"size": size, "n_test": len(items), "seed": seed, "student": cfg}, "versions": versions(), "arms": arms_out}
    save_json(rdir / "result.json", result)
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.bigbench.samemodel", description=__doc__.split("\n\n")[0])
    where = ap.add_mutually_exclusive_group(required=True)
    where.add_argument("--task", action="append", help="a BIG-bench task.json (repeatable)")
    where.add_argument("--all", action="store_true", help=f"the five DataTune tasks under {TASKS_DIR}")
    ap.add_argument("--tasks-dir", default=str(TASKS_DIR))
    ap.add_argument("--phase", choices=("build", "student", "report", "all"), default="all")
    ap.add_argument("--size", type=int, default=DEFAULT_SIZE, help="rows per arm (N)")
    ap.add_argument("--test-size", type=int, default=DEFAULT_TEST, help="test items scored (seeded subsample)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--arms", default=",".join(ARMS))
    ap.add_argument("--synthetic-share", type=float, default=0.5)
    ap.add_argument("--out", default="out/bigbench-samemodel", help="run folder (built sets)")
    ap.add_argument("--results-dir", default=str(RESULTS_DIR))
    ap.add_argument("--catalog", default=str(HERE.parents[1].parent / "shared" / "hub"))
    ap.add_argument("--model", help="LLM for the builds (default: the embedded qwen2.5-coder-1.5b)")
    ap.add_argument("--base-url", help="an OpenAI-compatible endpoint for the builds")
    ap.add_argument("--student-model", default="qwen2.5-coder-0.5b",
                    help="the student: an embedded model key (its GGUF is dequantized once), a GGUF path, or a Hugging Face causal LM id/path")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--paper-scale", action="store_true", help="the paper's student settings (LoRA on every layer, r=16, 1024 tokens, 3 epochs); for --device cuda")
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--max-length", type=int)
    ap.add_argument("--lora-layers", type=int, help="LoRA on the top K layers (0 = all)")
    ap.add_argument("--wait-builds", action="store_true",
                    help="student phase: wait for each task's builds (a --phase build run in another process) before reading it")
    ap.add_argument("--force", action="store_true")
    ap.add_argument("-q", "--quiet", action="store_true")
    args = ap.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    arms = tuple(a.strip() for a in args.arms.split(",") if a.strip())
    bad = [a for a in arms if a not in ARMS]
    if bad:
        ap.error(f"unknown arms {bad}; choose from {', '.join(ARMS)}")
    log = lambda m: print(time.strftime("%H:%M:%S"), m, file=sys.stderr, flush=True)  # noqa: E731
    out, results_dir = Path(args.out), Path(args.results_dir)
    holder: dict = {}

    def env_factory():
        if "env" not in holder:
            holder["env"] = make_env(args.catalog, model=args.model, base_url=args.base_url, progress=not args.quiet)
        return holder["env"]

    t0 = time.perf_counter()
    tasks = task_paths(args)
    if args.phase in ("build", "all"):
        for t in tasks:
            build_phase(t, out=out, env_factory=env_factory, size=args.size, n_test=args.test_size, seed=args.seed,
                        synthetic_share=args.synthetic_share, arms=arms, force=args.force, log=log)
        log(f"builds done at {time.perf_counter() - t0:.0f} s")
        if "env" in holder:  # the build LLM server leaves the cores to the student
            try:
                from datatune.llm.embedded import stop_all

                stop_all()
            except Exception:
                pass
    if args.phase in ("student", "all"):
        from .student import LoRAConfig, LoRAStudent

        lcfg = LoRAConfig.paper() if args.paper_scale else LoRAConfig()
        for k, v in (("epochs", args.epochs), ("max_length", args.max_length), ("lora_layers", args.lora_layers)):
            if v is not None:
                setattr(lcfg, k, v)
        student = LoRAStudent(args.student_model, device=args.device, config=lcfg, seed=args.seed, log=log)
        from datatune.catalog import open_catalog
        from datatune.embed import get_embedder

        embedder, catalog = get_embedder(), open_catalog(args.catalog)
        for t in (ready_first(tasks, out, arms, seed=args.seed, log=log) if args.wait_builds else tasks):
            student_phase(t, out=out, student=student, size=args.size, n_test=args.test_size, seed=args.seed, arms=arms,
                          results_dir=results_dir, embedder=embedder, catalog=catalog, force=args.force, log=log)
        log(f"students done at {time.perf_counter() - t0:.0f} s")
    if args.phase in ("report", "all"):
        from .report import write_samemodel_md

        path = write_samemodel_md(results_dir, HERE / "RESULTS.md")
        log(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
