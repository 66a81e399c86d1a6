"""The BIG-bench harness (benchmarks/bigbench): a tiny run of every arm with a fake LLM on real rows,
and unit tests of the task split and the normalized score."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

import pytest

from benchmarks.bigbench.arms import ARMS, BENCHMARK, build_options
from benchmarks.bigbench.student import TrainConfig, answer_index, groups_from_rows, parse_options
from benchmarks.bigbench.tasks import Item, load_task, normalized_score, score_choices, split_task

from .conftest import SHARED, fake_rows, require_shared, schema_of

TASKS = SHARED / "bigbench" / "datatune"
CAUSE = TASKS / "cause_and_effect" / "task.json"


@pytest.fixture(scope="module")
def tasks_dir() -> Path:
    return require_shared(TASKS, "these tests read the BIG-bench task files")


# -- unit: score and split --------------------------------------------------------------------
def test_normalized_score_is_bigbench_s():
    assert normalized_score([1.0, 1.0], [0.5, 0.5]) == 100.0
    assert normalized_score([0.5, 0.5], [0.5, 0.5]) == 0.0
    assert normalized_score([0.0, 0.0], [0.25, 0.25]) == pytest.approx(-100 / 3)
    # chance is the mean over items of 1 / options: 2 and 4 options
    items = [Item(0, "q", ["x", "y"], [1, 0], True), Item(1, "q", ["a", "b", "c", "d"], [0, 0, 1, 0], True)]
    s = score_choices(items, [0, 2])
    assert s["chance"] == pytest.approx(0.375) and s["accuracy"] == 1.0 and s["normalized_score"] == 100.0
    s = score_choices(items, [1, None])
    assert s["accuracy"] == 0.0 and s["unanswered"] == 1 and s["normalized_score"] == pytest.approx(-60.0)
    assert -100 <= score_choices(items, [1, 0])["normalized_score"] <= 100


def test_examples_never_in_test_set_and_test_inputs_are_eval_texts(tasks_dir):
    for name in ("cause_and_effect", "implicatures", "temporal_sequences", "code_line_description"):
        task = load_task(tasks_dir / name / "task.json", seed=3)
        split = split_task(task, n_eval=20, seed=3)
        assert len(split.examples) == 2
        shown = {e.idx for e in split.examples}
        shown_text = {e.text for e in split.examples}
        assert not shown & {t.idx for t in split.test}
        assert not shown_text & {t.text for t in split.test}
        assert len(split.test) + len(split.examples) <= len(task.items)
        assert {t.text for t in split.eval_subset} <= {t.text for t in split.test}
        assert {t.text for t in split.test} <= set(split.eval_texts)
        assert not shown_text & set(split.eval_texts)
        opts = build_options("datatune", Path("unused"), task=task, split=split, size=10, seed=0, synthetic_share=0.5)
        assert opts.eval_texts == split.eval_texts and opts.benchmark == BENCHMARK and BENCHMARK in opts.exclude
        assert [e.input for e in opts.examples] == [e.text for e in split.examples]
    # the paper's subtask is the default; a yes/no task shows both labels
    task = load_task(CAUSE)
    assert task.name == "cause_and_effect/two_sentences" and task.lettered
    imp = split_task(load_task(tasks_dir / "implicatures" / "task.json"), n_eval=5)
    assert {e.answer for e in imp.examples} == {"yes", "no"}


def test_rows_become_groups_for_the_student():
    from datatune.records import Row

    assert parse_options("Q?\nA. one\nB. two") == ["one", "two"]
    assert parse_options("no options here") == []
    assert answer_index("B", ["one", "two"]) == 1 and answer_index("two", ["one", "two"]) == 1 and answer_index("C", ["a", "b"]) is None
    rows = [Row("Q?\nA. one\nB. two", "B"), Row("Q?", "A", method="synthetic"), Row("is it?", "yes"), Row("Q2?\nA. x\nB. y", "Z")]
    groups, stats = groups_from_rows(rows, labels=["yes", "no"])
    assert [g.candidates[g.correct] for g in groups] == ["two", "yes"]
    assert stats["letter_without_options"] == 1 and stats["answer_not_an_option"] == 1


def test_benchmark_guard_hides_the_bigbench_card(catalog):
    from retrieval_index.filters import Filters

    entry = catalog.entry("bigbench")
    assert not Filters.make(exclude=[BENCHMARK], benchmark=BENCHMARK).allows_entry(entry)


# -- the harness end to end, tiny ---------------------------------------------------------------
WORDS = ("river storm baker kitten ladder garden window candle engine lantern meadow pencil harbor "
         "violin tunnel blanket orchard rocket saddle teapot glacier marble parrot cactus anchor").split()


def bigbench_fake():
    n = itertools.count()

    def handler(body):
        props = (schema_of(body) or {}).get("properties", {})
        i = next(n)
        if "output_kind" in props:
            return json.dumps({"output_kind": "letter", "labels": [], "language": "en", "input_format": "", "output_format": ""})
        if "output_column" in props:
            cols = props["output_column"]["enum"]
            return json.dumps({"input_columns": [c for c in ("goal", "sol1", "sol2") if c in cols], "output_column": "label"})
        if "attributes" in props:
            return json.dumps({"attributes": ["kitchen", "weather", "travel"]})
        if "answer" in props:
            enum = props["answer"]["enum"]
            return json.dumps({"answer": enum[i % len(enum)]})
        if "rows" in props:
            def one(item):
                w = random.Random(next(n)).sample(WORDS, 8)
                wrong = item["wrong"]["maxItems"]
                return {"question": f"Which happened because the {w[0]} {w[1]} near the {w[2]}?",
                        "correct": f"The {w[3]} {w[4]}.", "wrong": [f"The {w[5 + k % 3]} {w[(6 + k) % 8]} {k}." for k in range(wrong)]}

            return fake_rows(body, one)
        return "ok"

    return handler


@pytest.mark.slow  # 69 s on 2 shared cores (pytest --durations)
def test_tiny_harness_every_arm(catalog, fake_llm, tmp_path, tasks_dir):
    from benchmarks.bigbench.arms import Env
    from benchmarks.bigbench.report import write_results_md
    from benchmarks.bigbench.run import run_task
    from datatune.embed import HashEmbedder
    from datatune.planner import Candidate
    from retrieval_index.filters import Filters

    seen_filters = []

    def retriever(query, k, exclude, **kw):
        # the real catalog's entries; the same guard the real retriever applies
        seen_filters.append(list(exclude))
        f = Filters.make(exclude=exclude, benchmark=BENCHMARK)
        out = []
        for name, cfg in (("bigbench", None), ("ybisk/piqa", "plain_text")):
            e = catalog.entry(name)
            if f.allows_entry(e):
                out.append(Candidate(e, e.config(cfg or e.configs[0].name)))
        return out

    handler = bigbench_fake()
    env = Env(catalog, lambda: fake_llm(handler)[0], retriever, HashEmbedder(), None, "fake-model")
    res = run_task(str(CAUSE), out=tmp_path / "runs", env=env, size=6, n_test=10, seed=0,
                   train=TrainConfig(epochs=1, batch_groups=4, max_steps=2), results_dir=tmp_path / "results", log=lambda m: None)
    assert seen_filters and all(BENCHMARK in x for x in seen_filters)
    arms = res["arms"]
    assert set(arms) == {*ARMS, "untrained"}
    for name, a in arms.items():
        assert -100 <= a["score"]["normalized_score"] <= 100, name
        assert a["score"]["items"] == 10
    assert arms["few-shot"]["llm"]["calls"] == 10 and arms["few-shot"]["rows"] == 0
    # provenance: retrieved rows trace to piqa rows, synthetic rows to nothing
    dt = arms["datatune"]
    assert dt["rows"] == 6 and dt["provenance"]["sources"] == ["ybisk/piqa:plain_text"]
    assert set(dt["provenance"]["by_method"]) == {"mapped"}
    assert all(s["source_dataset"] == "ybisk/piqa" and s["source_row"] >= 0 for s in dt["provenance"]["sample"])
    assert dt["label_accuracy"]["accuracy"] == 1.0 and dt["label_accuracy"]["checked"] == 6
    assert dt["student"]["steps"] == 2 and dt["student"]["training_groups"]["usable"] == 6
    assert dt["intrinsic"]["unique_bigrams_per_example"] > 0 and dt["intrinsic"]["remote_clique"] is not None
    mix = arms["datatune+synthetic"]
    assert mix["provenance"]["by_method"].get("synthetic", 0) >= 1 and mix["provenance"]["by_method"].get("mapped", 0) >= 1
    syn = arms["synthetic"]
    assert syn["rows"] >= 1 and set(syn["provenance"]["by_method"]) == {"synthetic"} and syn["provenance"]["sources"] == []
    assert all(s["source_dataset"] == "" and s["source_row"] == -1 for s in syn["provenance"]["sample"])
    # the files: per-arm cache, the result, the examples the build read, RESULTS.md from the results
    tdir = tmp_path / "runs" / "cause_and_effect__two_sentences"
    saved = json.loads((tmp_path / "results" / "cause_and_effect__two_sentences.json").read_text())
    assert set(saved["arms"]) == set(arms)
    examples = [json.loads(x) for x in (tdir / "examples.jsonl").read_text().splitlines()]
    assert len(examples) == 2 and all(set(e) == {"input", "output"} for e in examples)
    assert (tdir / "datatune" / "build" / "manifest.json").is_file()
    md = write_results_md(tmp_path / "results", tmp_path / "RESULTS.md", notes=tmp_path / "none.md")
    text = md.read_text()
    assert "cause_and_effect" in text and "44.5" in text and "reported, Mistral-7B QLoRA" in text
    # a second run is served from the per-arm cache
    again = run_task(str(CAUSE), out=tmp_path / "runs", env=env, size=6, n_test=10, seed=0,
                     train=TrainConfig(epochs=1, batch_groups=4, max_steps=2), log=lambda m: None)
    assert again["arms"]["datatune"] == dt
    # --force --reuse-builds retrains and rescores on the finished build: same rows, no new LLM call
    calls = []
    env2 = Env(catalog, lambda: calls.append(1) or fake_llm(handler)[0], retriever, HashEmbedder(), None, "fake-model")
    redo = run_task(str(CAUSE), out=tmp_path / "runs", env=env2, size=6, n_test=10, seed=0, arms=("datatune",), force=True,
                    reuse_builds=True, train=TrainConfig(epochs=1, batch_groups=4, max_steps=1), log=lambda m: None)
    assert redo["arms"]["datatune"]["provenance"] == dt["provenance"] and redo["arms"]["datatune"]["student"]["steps"] == 1
    assert calls == [] and redo["arms"]["datatune"]["llm"] == dt["llm"]
    # the ICL reading is added to cached arms from their built sets, without rebuilding or retraining
    icl = run_task(str(CAUSE), out=tmp_path / "runs", env=env, size=6, n_test=10, seed=0, icl_items=4,
                   train=TrainConfig(epochs=1, batch_groups=4, max_steps=2), log=lambda m: None)["arms"]
    assert icl["datatune"]["student"] == redo["arms"]["datatune"]["student"]
    assert icl["few-shot"]["icl"]["k"] == 0 and icl["few-shot"]["icl"]["score"]["items"] == 4
    assert icl["datatune"]["icl"]["demos_available"] == 6 and icl["datatune"]["icl"]["llm"]["calls"] == 4
    assert icl["datatune"]["icl"]["score"]["items"] == 4


def test_icl_demonstrations_follow_the_task_format():
    from benchmarks.bigbench.icl import demos_from_groups
    from benchmarks.bigbench.student import Group

    lettered = Group("Which?\nA. x\nB. y", ["x", "y"], 1)
    label = Group("Is it so?", ["yes", "no"], 0)
    assert [(d.text, d.answer) for d in demos_from_groups([lettered, label], lettered=True)] == [(lettered.input, "B")]
    assert [(d.text, d.answer) for d in demos_from_groups([lettered, label], lettered=False)] == [("Is it so?", "yes")]
