"""Golden rows: four whole builds on the real catalog, compared row for row with what the code gave before.

Each build runs the full pipeline (spec, planning, execution, curation, relevance, allocation, shuffle,
split assignment, output) with a fake LLM that answers by schema, a fixed list of candidates (no
retrieval) and the deterministic `HashEmbedder`; top-up is off. The rows of every split of the written
dataset (every column, in order) are compared with tests/golden/<task>.json:

- `sha256` per split over the canonical JSON of the full rows: the exact check;
- `index` per split, one compact line per row (provenance, method, check, output, a hash of the input):
  what the failure message diffs, so a changed row is named by its source row;
- `head` per split, the first rows in full, for a readable diff of the text itself.

A refactor must keep these rows. When rows change on purpose, regenerate and review the diff:

    DATATUNE_REGOLD=1 .venv/bin/python -m pytest tests/test_golden.py
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import pytest

from datatune.curate import curate
from datatune.embed import HashEmbedder
from datatune.pipeline import BuildOptions, build

from .conftest import schema_of
from .test_pipeline import retriever_for

GOLDEN = Path(__file__).parent / "golden"
REGOLD = os.environ.get("DATATUNE_REGOLD", "") not in ("", "0")
COLUMNS = ["input", "output", "source_dataset", "source_config", "source_split", "source_row", "method", "check"]
HEAD = 20


@dataclass(frozen=True)
class Task:
    name: str
    description: str
    spec: dict  # the fake LLM's task spec answer
    candidates: list[str]  # dataset:config, in rank order
    columns: dict  # frozenset of a source's columns -> (input columns, output column)
    kind: str = "review or opinion"  # every text kind the acceptance judge asks for
    options: dict = field(default_factory=dict)


def choice(cols: set[str]) -> tuple[list[str], str]:
    """The fake model's column choice for a source with these columns (by schema, like a sensible model)."""
    if {"question", "choices"} <= cols:  # ai2_arc, mmlu
        return ["question", "choices"], "answerKey" if "answerKey" in cols else "answer"
    if {"context", "question", "answers"} <= cols:  # squad
        return ["context", "question"], "answers"
    if {"question", "answer"} <= cols:  # gsm8k
        return ["question"], "answer"
    text = next(c for c in ("text", "sentence") if c in cols)
    label = next((c for c in ("label", "coarse_label") if c in cols), sorted(cols - {text})[-1])
    return [text], label


TASKS = [
    Task("sentiment_readme", "Classify the sentiment of a movie review as positive or negative",
         {"output_kind": "label", "labels": ["positive", "negative"], "language": "en", "input_format": "a movie review", "output_format": "a label"},
         ["imdb:plain_text", "cornell-movie-review-data/rotten_tomatoes:default", "fancyzhx/ag_news:default", "nyu-mll/glue:sst2"],
         {}, options={"size": 300, "validation_fraction": 0.1}),
    Task("news_topic", "Classify news articles by topic: World, Sports, Business or Technology",
         {"output_kind": "label", "labels": ["World", "Sports", "Business", "Technology"], "language": "en", "input_format": "a news article", "output_format": "a topic"},
         ["fancyzhx/ag_news:default", "CogComp/trec:default", "cornell-movie-review-data/rotten_tomatoes:default"],
         {}, kind="news article", options={"size": 300, "seed": 3}),
    Task("science_mc", "Answer multiple-choice science questions with the letter of the correct option",
         {"output_kind": "letter", "labels": [], "language": "en", "input_format": "a question with lettered options", "output_format": "a letter"},
         ["allenai/ai2_arc:ARC-Challenge", "cais/mmlu:astronomy", "cais/mmlu:college_physics"],
         {}, kind="question", options={"size": 300, "seed": 1, "validation_fraction": 0.2}),
    Task("math_number", "Solve grade-school math word problems with a numeric answer",
         {"output_kind": "number", "labels": [], "language": "en", "input_format": "a word problem", "output_format": "a number"},
         ["openai/gsm8k:main", "rajpurkar/squad:plain_text"],
         {}, kind="math word problem", options={"size": 300, "seed": 7}),
]


def fake_llm_for(task: Task):
    def handler(body):
        props = (schema_of(body) or {}).get("properties", {})
        if "output_kind" in props:
            return json.dumps(task.spec)
        if "output_column" in props:
            cols = set(props["output_column"]["enum"])
            inputs, output = choice(cols)
            return json.dumps({"input_columns": inputs, "output_column": output})
        if "kind" in props:
            return json.dumps({"kind": task.kind})
        if "attributes" in props:
            return json.dumps({"attributes": ["short", "long"]})
        return "ok"

    return handler


fixed_retriever = retriever_for  # candidates in a fixed order, no retrieval


def build_task(task: Task, catalog, fake_llm, out: Path) -> dict[str, list[dict]]:
    llm, _ = fake_llm(fake_llm_for(task))
    options = BuildOptions(out=out, synthetic=False, **task.options)
    build(task.description, topup_fn=None, catalog=catalog, llm=llm, retriever=fixed_retriever(catalog, task.candidates), options=options,
          curate_fn=curate, embedder=HashEmbedder())
    ds = datasets.load_dataset(str(out))
    return {split: [{c: r[c] for c in COLUMNS} for r in ds[split]] for split in sorted(ds)}


def canonical(row: dict) -> str:
    return json.dumps(row, ensure_ascii=False, sort_keys=True)


def index_line(row: dict) -> str:
    """One row, compactly: where it comes from, how it was made, its output (cut) and its input's hash."""
    digest = hashlib.sha256(row["input"].encode()).hexdigest()[:10]
    out = row["output"] if len(row["output"]) <= 40 else row["output"][:37] + "..."
    return (f"{row['source_dataset']}:{row['source_config']}:{row['source_split']}#{row['source_row']} "
            f"{row['method']} {row['check'] or '-'} {json.dumps(out, ensure_ascii=False)} {digest}")


def record(splits: dict[str, list[dict]]) -> dict:
    return {
        "rows": {s: len(rows) for s, rows in splits.items()},
        "sha256": {s: hashlib.sha256("\n".join(canonical(r) for r in rows).encode()).hexdigest() for s, rows in splits.items()},
        "index": {s: [index_line(r) for r in rows] for s, rows in splits.items()},
        "head": {s: rows[:HEAD] for s, rows in splits.items()},
    }


def _cut(value, n: int = 200) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= n else text[: n - 3] + "..."


def differences(want: dict, got: dict, limit: int = 5) -> list[str]:
    """Readable differences: row counts, then the first differing rows of each split."""
    out = []
    if set(want["rows"]) != set(got["rows"]):
        out.append(f"splits: golden {sorted(want['rows'])}, now {sorted(got['rows'])}")
    for s in sorted(set(want["rows"]) & set(got["rows"])):
        if want["sha256"][s] == got["sha256"][s]:
            continue
        if want["rows"][s] != got["rows"][s]:
            out.append(f"{s}: golden {want['rows'][s]} rows, now {got['rows'][s]}")
        wi, gi = want["index"][s], got["index"][s]
        shown = 0
        for i in range(max(len(wi), len(gi))):
            a = wi[i] if i < len(wi) else "(none)"
            b = gi[i] if i < len(gi) else "(none)"
            if a == b and i < HEAD and i < len(want["head"][s]) and i < len(got["head"][s]) and want["head"][s][i] != got["head"][s][i]:
                wr, gr = want["head"][s][i], got["head"][s][i]
                keys = [k for k in sorted(set(wr) | set(gr)) if wr.get(k) != gr.get(k)]
                a = f"{a}; " + ", ".join(f"{k}={_cut(wr.get(k))}" for k in keys)
                b = f"{b}; " + ", ".join(f"{k}={_cut(gr.get(k))}" for k in keys)
            if a != b:
                out.append(f"{s} row {i}:\n    golden {a}\n    now    {b}")
                shown += 1
                if shown == limit:
                    break
        if not shown:  # same index lines: the difference is in the text beyond the head
            out.append(f"{s}: same provenance and outputs as the golden rows, but their full text differs (sha256)")
        if wi != gi and sorted(wi) == sorted(gi):
            out.append(f"{s}: the same rows in another order")
    return out


@pytest.mark.parametrize("task", TASKS, ids=[t.name for t in TASKS])
def test_golden_rows(task, catalog, fake_llm, tmp_path):
    got = record(build_task(task, catalog, fake_llm, tmp_path / "out"))
    path = GOLDEN / f"{task.name}.json"
    if REGOLD:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(json.dumps(got, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        return
    assert path.is_file(), f"{path} is missing; write it with DATATUNE_REGOLD=1 .venv/bin/python -m pytest tests/test_golden.py"
    want = json.loads(path.read_text(encoding="utf-8"))
    diff = differences(want, got)
    assert not diff, (f"{task.name}: the build's rows differ from {path.name} (regenerate with DATATUNE_REGOLD=1 only "
                      "if the change is intended):\n" + "\n".join(diff))
