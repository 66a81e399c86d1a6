"""Tasks as users write them: Super-NaturalInstructions definitions through `datatune build`.

    python -m benchmarks.tasks.run            # writes results.json and RESULTS.md next to this file
    python -m benchmarks.tasks.run --only task363_sst2_polarity_classification

For each of the 21 definitions in ../shared/eval/sni_dev.jsonl (their authors' words and examples):
retrieval rank of the task's source (MRR@10, also over retrieval_dev.jsonl); for the 12 whose source
has rows here, a build with the embedded model, and per build: whether the task's own source was
used, the share of outputs in the task's label vocabulary (its examples' and instances' outputs),
gold agreement of mapped rows through provenance (benchmarks/gold.py reads each source row's answer;
`LEXICON` below is the SNI authors' own correspondence between their label strings and the source's
class names, as their definitions state it), LLM calls and wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("DATATUNE_SHARED", ROOT.parent / "shared"))
OUT = Path(__file__).resolve().parent
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# task label -> the source class names (normalised) that mean it, per the SNI definition
LEXICON = {
    "task363_sst2_polarity_classification": {"POS": {"positive", "pos"}, "NEG": {"negative", "neg"}},
    "task379_agnews_topic_classification": {"World": {"world"}, "Sports": {"sports"}, "Business": {"business"}, "Sci/Tech": {"sci tech"}},
    "task1541_agnews_classification": {"0": {"world"}, "1": {"sports"}, "2": {"business"}, "3": {"sci tech"}},
    "task833_poem_sentiment_classification": {"positive": {"positive"}, "negative": {"negative"}},
    "task843_financial_phrasebank_classification": {"positive": {"positive"}, "negative": {"negative"}, "neutral": {"neutral"}},
    "task904_hate_speech_offensive_classification": {"Hate Speech": {"hate speech", "hate"}, "Offensive": {"offensive language", "offensive"},
                                                      "Neither": {"neither", "not offensive", "non offensive"}},
    "task1289_trec_classification": {"Description": {"desc"}, "Entity": {"enty"}, "Abbreviation": {"abbr"}, "Person": {"hum"},
                                     "Quantity": {"num"}, "Location": {"loc"}},
}


def load_tasks() -> list[dict]:
    return [json.loads(line) for line in (SHARED / "eval" / "sni_dev.jsonl").read_text().splitlines() if line.strip()]


def vocabulary(task: dict) -> set[str]:
    """The task's own label strings: what its definition quotes and its examples and instances answer."""
    from datatune.definitions import quoted_labels

    outs = {str(e["output"]).strip() for e in task["examples"]} | set(quoted_labels(task["definition"]))
    for inst in task.get("instances", []):
        outs |= {str(o).strip() for o in (inst["output"] if isinstance(inst["output"], list) else [inst["output"]])}
    return outs


def retrieval_rank(retriever, spec, relevant) -> int | None:
    """Rank of the first relevant dataset in what the build's own retriever returns (cards fused with rows)."""
    from datatune.query import retrieval_query
    from retrieval_index.evaluate import first_relevant_rank

    q = retrieval_query(spec)
    cands = retriever(q.text, 20, [], labels=list(q.labels), languages=[spec.language], examples=[e.input for e in spec.examples], label_query=q.label_text)
    ranked = []
    for c in cands:
        if c.entry not in ranked:
            ranked.append(c.entry)
    return first_relevant_rank(ranked[:10], relevant)


def build_one(task: dict, *, catalog, llm, retriever, embedder, size: int, out: Path) -> dict:
    from benchmarks.gold import gold_agreement
    from datatune.curate import curate
    from datatune.errors import DatatuneError
    from datatune.pipeline import BuildOptions, build
    from datatune.task import Example

    examples = [Example(input=e["input"], output=str(e["output"])) for e in task["examples"]]
    calls0, t0 = llm.usage.to_dict()["total"]["calls"], time.time()
    try:
        res = build(task["definition"], topup_fn=None, catalog=catalog, llm=llm, retriever=retriever, curate_fn=curate, embedder=embedder,
                    options=BuildOptions(out=out, size=size, max_candidates=4, synthetic=False, examples=examples, overwrite=True))
    except DatatuneError as e:
        return {"task": task["task"], "error": str(e), "llm_calls": llm.usage.to_dict()["total"]["calls"] - calls0,
                "wall_s": round(time.time() - t0, 1)}
    rows = [r for rs in res.rows.values() for r in rs]
    mapped = [r for r in rows if r.method == "mapped"]
    spec = res.spec
    kind = spec.output_kind
    lexicon = LEXICON.get(task["task"])
    if spec.wrong_answer:
        kind = "wrong_text"
    agree = n = 0
    if mapped:
        agree, n = gold_agreement(catalog, mapped, kind, lexicon=lexicon, lowercase=spec.lowercase_letters)
    vocab = vocabulary(task)
    classification = task["category"] in ("classification", "multiple_choice")
    sources = Counter(f"{r.source_dataset}:{r.source_config}:{r.source_split}" for r in rows)
    own = task["rows_dataset"].replace("__", "/", 1)
    return {
        "task": task["task"], "category": task["category"], "spec": {"output_kind": spec.output_kind, "labels": spec.labels},
        "rows": len(rows), "sources": dict(sources), "own_source_used": any(r.source_dataset == own for r in rows),
        "in_vocabulary": round(sum(r.output in vocab for r in rows) / max(1, len(rows)), 3) if classification else None,
        "gold_agreement": round(agree / n, 3) if n else None, "gold_judged": n,
        "kept": [p.key for p in res.plans if p.keep],
        "rejected": {p.key: p.reason[:160] for p in res.plans if not p.keep},
        "llm_calls": llm.usage.to_dict()["total"]["calls"] - calls0, "wall_s": round(time.time() - t0, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=60)
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--no-builds", action="store_true")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "benchmarks" / "retrieval"))
    import common

    from datatune.core.settings import Settings
    from datatune.expand import expand_task
    from datatune.llm import open_llm
    from datatune.retrieve import make_retriever
    from datatune.task import Example
    from retrieval_index.evaluate import load_dev_set, score_ranks

    started = time.time()
    catalog = common.catalog()
    llm = open_llm(Settings())
    retriever = make_retriever(catalog)
    from datatune.embed import get_embedder

    embedder = get_embedder()  # as the CLI passes it: sources are ordered by how near their rows are to the examples
    tasks = [t for t in load_tasks() if not args.only or t["task"] in args.only]
    per_task, sni_ranks = [], []
    for t in tasks:
        spec = expand_task(t["definition"], [Example(input=e["input"], output=str(e["output"])) for e in t["examples"]], llm)
        rank = retrieval_rank(retriever, spec, t["relevant"] + t.get("relevant_lenient", []))
        sni_ranks.append(rank)
        row = {"task": t["task"], "retrieval_rank": rank, "has_rows": t["has_rows"]}
        if t["has_rows"] and not args.no_builds:
            row.update(build_one(t, catalog=catalog, llm=llm, retriever=retriever, embedder=embedder, size=args.size, out=Path("/tmp/datatune-tasks") / t["task"]))
        per_task.append(row)
        print(json.dumps(row), flush=True)
    dev = load_dev_set(SHARED / "eval" / "retrieval_dev.jsonl")
    dev_ranks = [retrieval_rank(retriever, expand_task(q.query, [], llm), q.relevant) for q in dev] if not args.only else []
    result = {
        "size": args.size, "model": llm.endpoint.model,
        "retrieval": {"sni_definitions": score_ranks(sni_ranks).as_dict(), "retrieval_dev": score_ranks(dev_ranks).as_dict() if dev_ranks else None,
                      "both": score_ranks(sni_ranks + dev_ranks).as_dict()},
        "tasks": per_task, "wall_s": round(time.time() - started, 1), "llm": llm.usage.to_dict()["total"],
    }
    name = "results.json" if not args.only else "results_partial.json"
    (OUT / name).write_text(json.dumps(result, indent=2) + "\n")
    if not args.only:
        (OUT / "RESULTS.md").write_text(report(result))
    print(json.dumps(result["retrieval"]))


def report(r: dict) -> str:
    lines = ["# Tasks as users write them (Super-NaturalInstructions definitions)\n",
             f"`python -m benchmarks.tasks.run` on 2 cores, embedded {r['model']}, `--size {r['size']}`, no synthetic rows; "
             f"whole run {r['wall_s'] / 60:.1f} min, {r['llm']['calls']} LLM calls and {r['llm']['cache_hits']} answers from the response "
             "cache of earlier runs (a cold run asks all 405 of them).\n",
             "## Retrieval (MRR@10 of the task's source)\n",
             "| query set | MRR@10 | hit@1 | hit@5 |", "| --- | ---: | ---: | ---: |"]
    for name, s in r["retrieval"].items():
        if s:
            lines.append(f"| {name} | {s['mrr@10']:.3f} | {s['hit@1']:.2f} | {s['hit@5']:.2f} |")
    lines += ["\n## Builds (tasks whose source has rows here)\n",
              "| task | spec | rank | own source used | outputs in the task's labels | gold agreement (mapped) | sources | LLM calls | wall s |",
              "| --- | --- | ---: | --- | ---: | ---: | --- | ---: | ---: |"]
    for t in r["tasks"]:
        if not t.get("has_rows"):
            continue
        if "error" in t:
            lines.append(f"| {t['task']} | | {t['retrieval_rank']} | **error**: {t['error'][:120]} | | | | {t['llm_calls']} | {t['wall_s']} |")
            continue
        spec = t["spec"]["output_kind"] + (f" {t['spec']['labels']}" if t["spec"]["labels"] else "")
        voc = "-" if t["in_vocabulary"] is None else f"{t['in_vocabulary']:.0%}"
        gold = "-" if t["gold_agreement"] is None else f"{t['gold_agreement']:.1%} of {t['gold_judged']}"
        srcs = ", ".join(f"{k} ({v})" for k, v in t["sources"].items())
        lines.append(f"| {t['task']} | {spec} | {t['retrieval_rank']} | {'yes' if t['own_source_used'] else 'no'} | {voc} | {gold} | {srcs} | {t['llm_calls']} | {t['wall_s']} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
