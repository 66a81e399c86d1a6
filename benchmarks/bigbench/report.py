"""RESULTS.md from the per-task result files (benchmarks/bigbench/results/*.json) and NOTES.md."""

from __future__ import annotations

import json
from pathlib import Path

# DataTune paper (arXiv 2404.14361), Table 2: average normalized score over its six BIG-bench tasks,
# Mistral-7B fine-tuned with QLoRA on 3,000 rows per task (DESIGN.md, "Quality measures").
PAPER_AVG = {"few-shot": 29.8, "existing": 25.2, "synthetic": 33.3, "datatune": 36.2, "prompt2model": 40.0,
             "datatune+synthetic": 44.5, "gpt-3.5 few-shot": 68.0}
# ../shared/bigbench/datatune_runs/<task>.json: `normalized_aggregate_score` of the paper's W&B run
# summaries (Mistral-7B, trained on the retrieved + transformed set); code_line_description's run
# ended in CUDA OOM before scoring, medical_questions_russian is not among our five tasks.
PAPER_RUNS = {"cause_and_effect": 45.1, "elementary_math_qa": 6.1, "implicatures": 40.2, "temporal_sequences": 1.2,
              "code_line_description": None}

ROWS = [
    ("few-shot", "Few-shot (LLM, 2 examples, no training)", "few-shot"),
    (None, "Existing data (retrieved, untransformed)", "existing"),
    ("synthetic", "Synthetic (datatune top-up only)", "synthetic"),
    ("datatune", "DataTune (retrieved + transformed)", "datatune"),
    ("datatune+synthetic", "DataTune + synthetic", "datatune+synthetic"),
    ("untrained", "Untrained student (floor)", None),
    ("datatune-fixed-plans", "Diagnostic: DataTune with its plans corrected by hand", None),
]


def _fmt(x, nd=1):
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:.{nd}f}"
    return str(x)


def _short_task(name: str) -> str:
    return name.split("/")[0]


def load_results(results_dir: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(Path(results_dir).glob("*.json"))]


def table2(results: list[dict]) -> str:
    names = [_short_task(r["task"]) for r in results]
    head = "| method | " + " | ".join(names) + " | avg (here) | paper avg (reported, Mistral-7B QLoRA, different student) |"
    lines = [head, "|" + " --- |" * (len(names) + 3)]
    for arm, label, paper in ROWS:
        if arm == "datatune-fixed-plans" and not any(arm in r["arms"] for r in results):
            continue
        vals = []
        for r in results:
            a = r["arms"].get(arm) if arm else None
            vals.append(a["score"]["normalized_score"] if a else None)
        got = [v for v in vals if v is not None]
        avg = sum(got) / len(got) if got and len(got) == len(vals) else None
        lines.append(f"| {label} | " + " | ".join(_fmt(v) for v in vals) + f" | {_fmt(avg)} | {_fmt(PAPER_AVG.get(paper)) if paper else '–'} |")
    lines.append("| Paper's run summary for its DataTune set (datatune_runs/*.json) | "
                 + " | ".join(_fmt(PAPER_RUNS.get(n)) for n in names) + " | – | – |")
    lines.append("| GPT-3.5 few-shot (reported) | " + " | ".join("–" for _ in names) + f" | – | {PAPER_AVG['gpt-3.5 few-shot']} |")
    return "\n".join(lines)


ICL_ROWS = [("few-shot", "Few-shot: the task's 2 examples only"), ("synthetic", "+ 4 nearest rows of the synthetic set"),
            ("datatune", "+ 4 nearest rows of the DataTune set"), ("datatune+synthetic", "+ 4 nearest rows of the DataTune + synthetic set")]


def icl_table(results: list[dict]) -> str | None:
    """The ICL reading (icl.py): the embedded LLM answering with each set's nearest rows as extra examples."""
    if not any((a.get("icl") or {}).get("score") for r in results for a in r["arms"].values()):
        return None
    names = [_short_task(r["task"]) for r in results]
    lines = ["| prompt | " + " | ".join(names) + " | avg |", "|" + " --- |" * (len(names) + 2)]
    for arm, label in ICL_ROWS:
        vals = []
        for r in results:
            sc = ((r["arms"].get(arm) or {}).get("icl") or {}).get("score")
            vals.append(sc)
        got = [v["normalized_score"] for v in vals if v]
        avg = sum(got) / len(got) if got and len(got) == len(vals) else None
        cells = [f"{v['normalized_score']:.1f} ± {v['normalized_se']:.0f}" if v else "–" for v in vals]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {_fmt(avg)} |")
    items = {_short_task(r["task"]): max((((a.get("icl") or {}).get("score") or {}).get("items", 0) for a in r["arms"].values()), default=0)
             for r in results}
    lines.append("\nItems per task: " + ", ".join(f"{k} {v or '– (not run)'}" for k, v in items.items())
                 + " (the first of the scored subsample); ± is one standard error over items.")
    return "\n".join(lines)


def arm_seconds(a: dict) -> float:
    """Wall time of an arm as first run: build + student + measures (few-shot: answering; floor: scoring)."""
    if a.get("arm") == "untrained":
        return a.get("student_s") or 0.0
    if a.get("arm") == "few-shot":
        return a.get("wall_s") or 0.0
    return sum(a.get(k) or 0.0 for k in ("build_s", "student_s", "metrics_s"))


def _shared_path(path: str) -> str:
    """A task path as the repository sees it (`../shared/...`), whatever folder the run was in."""
    return "../shared/" + path.split("/shared/", 1)[1] if "/shared/" in path else path


def _icl_cell(a: dict) -> str:
    icl = a.get("icl") or {}
    if not icl.get("score"):
        return "–"
    extra = f" ({icl['llm']['calls']}, {icl['seconds']})" if icl.get("llm") else ""
    return f"{icl['score']['normalized_score']:.1f}{extra}"


def detail(r: dict) -> str:
    cfg = r["config"]
    out = [f"### {r['task']}\n",
           f"`{_shared_path(r['task_path'])}`, {r['items']} items; the build is told: *{r['description']}*  ",
           f"Examples shown: items {r['split']['examples']}; test set: {r['split']['test_items']} items (all passed as eval_texts); "
           f"scored: {cfg['n_test']} (seed {cfg['seed']}). N = {cfg['size']} rows per arm; student: {cfg['student']} "
           f"({cfg['train']['epochs']} epochs, {cfg['train']['batch_groups']} groups/step, lr {cfg['train']['lr']}).\n",
           "| arm | rows | sources (rows) | synthetic rows | usable for student | wall s (build / student) | LLM calls (+cache hits) | accuracy | chance | normalized | ICL reading (calls, s) |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for arm, a in r["arms"].items():
        sc = a["score"]
        prov = a.get("provenance") or {}
        srcs = ", ".join(f"{k} ({v})" for k, v in (prov.get("by_source") or {}).items() if k != "(synthetic)") or "–"
        synth = (prov.get("by_method") or {}).get("synthetic", 0) if prov else "–"
        st = (a.get("student") or {}).get("training_groups") or {}
        usable = f"{st.get('usable', 0)}/{st.get('rows', 0)}" if st else "–"
        llm = a.get("llm") or {}
        calls = f"{llm.get('calls', 0)} (+{llm.get('cache_hits', 0)})" if llm else "0"
        if arm == "few-shot":
            wall = f"{a.get('wall_s')} (answering)"
        elif arm == "untrained":
            wall = f"– / {a.get('student_s')}"
        else:
            wall = f"{a.get('build_s')} / {a.get('student_s')}"
        out.append(f"| {arm} | {a.get('rows', 0)} | {srcs} | {synth} | {usable} | {wall} | {calls} | {sc['accuracy']:.3f} | {sc['chance']:.3f} | {sc['normalized_score']:.1f} | {_icl_cell(a)} |")
    total = sum(arm_seconds(a) for a in r["arms"].values())
    out.append(f"\nTotal wall time of the arms: {total / 60:.1f} min.\n")
    out += ["| arm | near-duplicate rate (ROUGE-L ≥ T) | unique bigrams / example | tokens / example | self-BLEU | remote-clique | label accuracy (checked rows) | answer format valid | drops |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for arm, a in r["arms"].items():
        q = a.get("intrinsic")
        if not q:
            continue
        la = a.get("label_accuracy") or {}
        acc = f"{la['accuracy']:.3f} ({la['checked']})" if la.get("accuracy") is not None else f"– ({', '.join(f'{k}: {v}' for k, v in (la.get('not_checkable') or {}).items())})"
        drops = ", ".join(f"{k} {v}" for k, v in (a.get("drops") or {}).items() if v) or "–"
        out.append(f"| {arm} | {_fmt(q.get('near_duplicate_rate'), 3)} (T={q.get('near_duplicate_threshold')}) | {_fmt(q.get('unique_bigrams_per_example'), 2)} | "
                   f"{_fmt(q.get('tokens_per_example'), 1)} | {_fmt(q.get('self_bleu'), 3)} | {_fmt(q.get('remote_clique'), 3)} | {acc} | "
                   f"{_fmt(la.get('answer_format_valid'), 3)} | {drops} |")
    plans = [(arm, a["plans"]) for arm, a in r["arms"].items() if a.get("plans")]
    if plans:
        arm, p = plans[0]
        out.append(f"\nPlans ({arm} build): kept " + ("; ".join(p["kept"]) or "none") + ". Rejected: " + ("; ".join(p["rejected"][:8]) or "none") + ".")
    paths = {arm: a["path"] for arm, a in r["arms"].items() if a.get("path") and a["path"] != "build()"}
    for arm, pth in paths.items():
        out.append(f"\n`{arm}` was built by: {pth}")
    return "\n".join(out) + "\n"


def write_results_md(results_dir: Path, path: Path, notes: Path | None = None) -> Path:
    results = load_results(results_dir)
    notes = notes or path.with_name("NOTES.md")
    parts = ["# BIG-bench: datatune's arms against the DataTune paper's Table 2\n",
             "Generated by `python -m benchmarks.bigbench.run` from `benchmarks/bigbench/results/*.json`; "
             "the analysis below the tables is `NOTES.md`. Normalized score: 0 = chance, 100 = every item right.\n",
             "**Not the paper's setup**: our student is a 22M-parameter MiniLM cross-encoder trained on N rows on 2 CPU cores, "
             "the builds use the embedded Qwen2.5-Coder-1.5B and the offline catalog `../shared/hub` (19 datasets with rows); "
             "the paper fine-tuned Mistral-7B with QLoRA on 3,000 rows per task built with GPT-3.5/4. The paper's columns are "
             "its reported averages over six tasks (ours: the tasks below), for orientation only.\n"]
    if results:
        parts += ["## Normalized scores (Table 2 layout)\n", table2(results), ""]
        icl = icl_table(results)
        if icl:
            parts += ["## ICL reading: what each set's rows add to the embedded LLM (icl.py)\n",
                      "The trained student above cannot learn these tasks from N rows (NOTES.md), so each set is also read this way: "
                      "the few-shot prompt plus the 4 rows of the set nearest to the item. Normalized score on the same items.\n", icl, ""]
        r0 = results[0]
        vs = ", ".join(f"{k} {v}" for k, v in r0["versions"].items())
        parts.append(f"LLM: `{r0.get('model')}`; seed {r0['config']['seed']}; versions: {vs}.\n")
        parts += ["## Per task\n"] + [detail(r) for r in results]
    else:
        parts.append("No results yet: run the command above.\n")
    if notes.is_file():
        parts += ["", notes.read_text(encoding="utf-8")]
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


# -- the same-model comparison (samemodel.py, issue 18) ----------------------------------------
SAME_ROWS = [("few-shot", "Few-shot (the student model, 2 examples, no training)", "few-shot"),
             ("synthetic", "Synthetic (datatune top-up only), LoRA", "synthetic"),
             ("datatune", "DataTune (retrieved + transformed), LoRA", "datatune"),
             ("datatune+synthetic", "DataTune + synthetic, LoRA", "datatune+synthetic")]


def load_samemodel(results_dir: Path) -> list[dict]:
    out = []
    for p in sorted(Path(results_dir).glob("*/result.json")):
        out.append(json.loads(p.read_text()))
    order = {n: i for i, n in enumerate(("cause_and_effect", "code_line_description", "elementary_math_qa", "implicatures", "temporal_sequences"))}
    return sorted(out, key=lambda r: order.get(_short_task(r["task"]), 99))


def _cell(a: dict | None) -> str:
    if not a:
        return "–"
    sc = a["score"]
    mark = " †" if a.get("build_error") else ""
    return f"{sc['normalized_score']:.1f} ± {sc['normalized_se']:.1f}{mark}"


def _avg_se(scores: list[dict]) -> tuple[float, float]:
    """Mean of per-task normalized scores and its standard error (independent tasks)."""
    n = len(scores)
    m = sum(s["normalized_score"] for s in scores) / n
    se = (sum(s["normalized_se"] ** 2 for s in scores) ** 0.5) / n
    return m, se


def samemodel_table(results: list[dict]) -> str:
    names = [_short_task(r["task"]) for r in results]
    lines = ["| method | " + " | ".join(names) + " | avg (here) | paper avg (Table 2, Mistral-7B, 3,000 rows) |",
             "|" + " --- |" * (len(names) + 3)]
    for arm, label, paper in SAME_ROWS:
        arms = [r["arms"].get(arm) for r in results]
        got = [a["score"] for a in arms if a]
        avg = "–"
        if got and len(got) == len(arms):
            m, se = _avg_se(got)
            avg = f"{m:.1f} ± {se:.1f}"
        lines.append(f"| {label} | " + " | ".join(_cell(a) for a in arms) + f" | {avg} | {_fmt(PAPER_AVG.get(paper))} |")
    acc = ["| accuracy (few-shot / synthetic / DataTune / DataTune + synthetic) | "
           + " | ".join(" / ".join(f"{r['arms'][a]['score']['accuracy']:.2f}" if a in r["arms"] else "–" for a, _, _ in SAME_ROWS) for r in results)
           + " | | |"]
    chance = ["| chance (accuracy) | " + " | ".join(f"{next(iter(r['arms'].values()))['score']['chance']:.2f}" if r["arms"] else "–" for r in results) + " | | |"]
    return "\n".join(lines + acc + chance)


def ordering(r: dict) -> str:
    """The arms of one task from best to worst, with > where the gap exceeds two standard errors of the difference."""
    arms = [(a, r["arms"][a]["score"]) for a, _, _ in SAME_ROWS if a in r["arms"]]
    arms.sort(key=lambda x: -x[1]["normalized_score"])
    out = arms[0][0] if arms else ""
    for (a0, s0), (a1, s1) in zip(arms, arms[1:]):
        gap = s0["normalized_score"] - s1["normalized_score"]
        se = (s0["normalized_se"] ** 2 + s1["normalized_se"] ** 2) ** 0.5
        out += (" >> " if gap > 2 * se else " ≥ ") + a1
    return out


def sources_table(results: list[dict]) -> str:
    lines = ["| task | arm | rows (usable) | sources (rows) | label accuracy (checked) | training loss first → last |", "| --- | --- | --- | --- | --- | --- |"]
    for r in results:
        for arm in ("datatune", "datatune+synthetic", "synthetic"):
            a = r["arms"].get(arm)
            if not a:
                continue
            by = (a.get("provenance") or {}).get("by_source") or {}
            srcs = ", ".join(f"{k} ({v})" for k, v in by.items()) or "–"
            if a.get("build_error"):
                srcs = "no set: " + a["build_error"].split(";")[0][:260]
            st = a.get("student") or {}
            usable = (st.get("training_groups") or {}).get("usable")
            la = a.get("label_accuracy") or {}
            lac = f"{la['accuracy']:.2f} ({la['checked']})" if la.get("accuracy") is not None else "–"
            lines.append(f"| {_short_task(r['task'])} | {arm} | {a.get('rows')} ({usable}) | {srcs} | {lac} | {_fmt(st.get('loss_first'), 2)} → {_fmt(st.get('loss_last'), 2)} |")
    return "\n".join(lines)


def cost_table(results: list[dict]) -> str:
    lines = ["| task | build s (DataTune / + synthetic / synthetic) | build LLM calls | student s (few-shot / synthetic / DataTune / + synthetic) | train tokens (per trained arm) | total min |",
             "| --- | --- | --- | --- | --- | --- |"]
    grand = 0.0
    for r in results:
        a = r["arms"]
        b = [a.get(x, {}).get("build_s") for x in ("datatune", "datatune+synthetic", "synthetic")]
        calls = [str((a.get(x, {}).get("llm") or {}).get("calls", "–")) for x in ("datatune", "datatune+synthetic", "synthetic")]
        s = [a.get(x, {}).get("student_s") for x, _, _ in SAME_ROWS]
        toks = [str((a.get(x, {}).get("student") or {}).get("train_tokens", "–")) for x in ("synthetic", "datatune", "datatune+synthetic")]
        total = sum(v or 0 for v in b + s)
        grand += total
        lines.append(f"| {_short_task(r['task'])} | " + " / ".join(_fmt(v, 0) for v in b) + " | " + " / ".join(calls) + " | "
                     + " / ".join(_fmt(v, 0) for v in s) + " | " + " / ".join(toks) + f" | {total / 60:.1f} |")
    lines.append(f"| all | | | | | {grand / 60:.1f} |")
    return "\n".join(lines)


def write_samemodel_md(results_dir: Path, path: Path, notes: Path | None = None, minilm_dir: Path | None = None) -> Path:
    results = load_samemodel(results_dir)
    notes = notes or path.with_name("NOTES.md")
    minilm_dir = minilm_dir or path.with_name("results")
    parts = ["# BIG-bench: DataTune's Table 2 with a student that can learn\n",
             "Generated by `python -m benchmarks.bigbench.samemodel --all` from `benchmarks/bigbench/results_samemodel/*/`; the analysis is "
             "`NOTES.md` (below the tables). Normalized score: 0 = chance, 100 = every item right; ± is one standard error over the scored items "
             "(for the average: over tasks, from the per-task errors).\n"]
    if results:
        cfg = results[0]["config"]
        st = cfg["student"]
        parts.append(f"**Student**: `{st['model']}` (Qwen2.5-Coder-0.5B-Instruct from datatune's embedded-small GGUF, dequantized to "
                     f"{st['dtype']}) on {st['device']}. Few-shot: the base model with the task's 2 examples as earlier chat turns. Trained arms: "
                     f"LoRA r={st['lora_r']} (alpha {st['lora_alpha']}) on {', '.join(st['targets'])} of the top {st['lora_layers'] or 'all'} layers, "
                     f"{st['epochs']} epochs, {st['batch']} rows a step, lr {st['lr']}, at most {st['max_length']} tokens, on each arm's N = {cfg['size']} rows; "
                     f"then zero-shot in the training format. Every arm is scored on the same {cfg['n_test']} items per task (fewer where the task has "
                     "fewer) by the summed log-likelihood of each option's text after the prompt (BIG-bench's multiple_choice_grade). Builds: the embedded "
                     "Qwen2.5-Coder-1.5B and the offline catalog `../shared/hub`. The paper: Mistral-7B, QLoRA, 3,000 rows, GPT-3.5/4 builds, six tasks.\n")
        parts += ["## Table 2, side by side\n", samemodel_table(results),
                  "\n† the build found no set (sources below): the arm is the student trained on nothing, the base model prompted zero-shot.\n"]
        parts += ["Ordering per task (`>>`: the gap is more than two standard errors of the difference; `≥`: within it):\n"]
        parts += [f"- {_short_task(r['task'])}: {ordering(r)}" for r in results] + [""]
        parts += ["## Sources each arm used\n", sources_table(results), ""]
        parts += ["## What the run cost\n", cost_table(results), ""]
        vs = ", ".join(f"{k} {v}" for k, v in results[0]["versions"].items())
        parts.append(f"Versions: {vs}.\n")
    else:
        parts.append("No results yet: run the command above.\n")
    old = load_results(minilm_dir) if Path(minilm_dir).is_dir() else []
    if old:
        parts += ["## Earlier reading: MiniLM cross-encoder student (sessions 3 and 4, `results/*.json`)\n",
                  "A 22M cross-encoder trained on 40 rows against the 1.5B prompted: it measures the student more than the sets "
                  "(NOTES.md, second part). Kept as the cheap reading (`python -m benchmarks.bigbench.run`).\n", table2(old), ""]
        icl = icl_table(old)
        if icl:
            parts += ["ICL reading of those sets (the 1.5B with each set's 4 nearest rows as extra examples):\n", icl, ""]
    if notes.is_file():
        parts += ["", notes.read_text(encoding="utf-8")]
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
