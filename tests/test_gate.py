"""The embedding relevance gate (gate.py): calibrated bars, its combination with the kind judge, and its wiring into planning."""

from __future__ import annotations

import json

import numpy as np
import pytest

from datatune.acceptance import Acceptance
from datatune.gate import GateVerdict, bars, combine, level, relevance_gate
from datatune.task import Example, TaskSpec

REVIEWS = [Example(input="a gorgeous , witty , seductive movie .", output="positive"),
           Example(input="the plot is nothing but boilerplate clichés .", output="negative")]


class Angle:
    """A fake embedder: every text the task's examples are is on axis 0; a text in `at` sits at that cosine to it."""

    def __init__(self, at: dict[str, float], examples=REVIEWS):
        self.at, self.examples = at, {e.input for e in examples}

    def encode(self, texts):
        out = []
        for t in texts:
            c = 1.0 if t in self.examples else next((v for k, v in self.at.items() if t.startswith(k)), 0.0)
            out.append([c, float(np.sqrt(max(0.0, 1 - c * c)))])
        return np.asarray(out, dtype=np.float32)


def require(catalog, *datasets):
    """Skip (with the reason) when the shared catalog lacks a dataset folder this test reads rows of."""
    for ds in datasets:
        try:
            if catalog.entry(ds).has_rows:
                continue
        except KeyError:
            pass
        pytest.skip(f"{ds} has no rows in this catalog")


def spec(examples=REVIEWS, description="Classify the sentiment of a movie review as positive or negative"):
    return TaskSpec(description=description, output_kind="label", labels=["positive", "negative"], examples=list(examples))


def test_bars_follow_the_number_of_examples():
    assert bars(1) == (-0.02, 0.06) and bars(2) == (0.03, 0.10) and bars(3) == bars(7) == (0.06, 0.13)
    assert level(0.02, "examples", 2) == "fail" and level(0.05, "examples", 2) == "soft" and level(0.10, "examples", 2) == "pass"
    assert level(0.02, "examples", 1) == "soft"  # one example: scores run lower, so does the bar
    assert level(-0.2, "description") == "skipped"


def test_gate_levels_and_reasons():
    inputs = [f"far row {i}" for i in range(10)]
    v = relevance_gate(inputs, spec(), Angle({"far": 0.01}))
    assert v.level == "fail" and not v.accepted and v.applied and v.threshold == 0.03 and v.rows == 10
    assert v.reason == "its rows are far from the examples: cosine 0.01, bar 0.03"
    assert relevance_gate(inputs, spec(), Angle({"far": 0.07})).level == "soft"
    ok = relevance_gate(inputs, spec(), Angle({"far": 0.5}))
    assert ok.level == "pass" and ok.accepted and ok.to_dict()["score"] == 0.5
    # only GATE_ROWS inputs are scored
    assert relevance_gate([f"far {i}" for i in range(100)], spec(), Angle({"far": 0.5})).rows == 24


def test_gate_is_skipped_and_says_so():
    inputs = [f"row {i}" for i in range(10)]
    none = relevance_gate(inputs, spec(), None)
    assert none.level == "skipped" and none.accepted and not none.applied and "no embedder" in none.reason
    few = relevance_gate(inputs[:2], spec(), Angle({}))
    assert few.level == "skipped" and "only 2 transformed inputs" in few.reason
    # without examples the score is recorded, never a bar: descriptions don't separate right from wrong
    no_examples = spec(examples=[])
    on_axis = Angle({"row": -0.3}, examples=[Example(input=no_examples.description, output="")])  # the description on axis 0
    desc = relevance_gate(inputs, no_examples, on_axis)
    assert desc.level == "skipped" and desc.accepted and desc.reference == "description" and desc.score == pytest.approx(-0.3, abs=1e-3)
    assert "recorded only" in desc.reason and desc.threshold is None


def test_combine_with_the_kind_judge():
    fail, soft, passed = (GateVerdict(score=s, threshold=0.06, soft_threshold=0.13, n_examples=3, rows=24, level=lv, reason=f"gate {lv}")
                          for s, lv in ((0.02, "fail"), (0.09, "soft"), (0.3, "pass")))
    news = ["news article"]
    # fail: rejected whatever the judge says (and without it)
    assert combine(fail, None) == (False, "gate fail")
    assert combine(fail, Acceptance(news, ["news article"] * 4))[0] is False
    # soft: most inputs of another kind -> rejected, though one matches (alone, the judge would keep it)
    mixed = Acceptance(news, ["question", "question", "question", "news article"], "examples")
    assert mixed.accepted
    keep, why = combine(soft, mixed)
    assert not keep and why.startswith("gate soft, and 3 of 4 of its inputs read as another kind of text") and soft.votes == {"judged": 4, "other_kind": 3}
    assert combine(soft, Acceptance(news, ["question", "news article", "news article", "other"]))[0]  # 1 of 4: kept
    assert combine(soft, Acceptance(["other"], ["question"] * 4))[0]  # nothing to compare with
    assert combine(soft, None) == (True, "")  # no judge: false rejects cost more
    # pass: the judge's own rule (no input of the task's kind)
    assert combine(passed, mixed) == (True, "")
    keep, why = combine(passed, Acceptance(news, ["question"] * 4, "examples"))
    assert not keep and why.startswith("its inputs are not the kind of text the task takes")


def test_build_rejects_a_far_source_before_asking_the_judge(catalog, fake_llm, tmp_path):
    """Wiring: the fake embedder puts sst2's sentences orthogonal to the movie-review examples
    (cosine 0 < bar 0.03 at two examples): sst2 is rejected without an LLM judgment, the reason in
    plans.json and on the card; rotten_tomatoes (its other rows on the examples' axis) passes and fills the set."""
    from datatune.pipeline import BuildOptions, build

    from .test_pipeline import SENTIMENT, retriever_for, smart_fake

    require(catalog, "cornell-movie-review-data/rotten_tomatoes", "nyu-mll/glue")
    rt = {t for sp in ("train", "validation", "test") for t in catalog.load("cornell-movie-review-data/rotten_tomatoes", "default", sp)["text"]}
    sst2 = {t.strip() for t in catalog.load("nyu-mll/glue", "sst2", "validation")["sentence"]}
    near = ({t.strip() for t in rt} - sst2) | {e.input for e in REVIEWS}  # SST-2's sentences are Rotten Tomatoes snippets: some are in both

    class Emb:
        def encode(self, texts):
            return np.asarray([[1.0, 0.0] if t in near else [0.0, 1.0] for t in texts], dtype=np.float32)

    llm, ep = fake_llm(smart_fake())
    keys = ["nyu-mll/glue:sst2", "cornell-movie-review-data/rotten_tomatoes:default"]
    options = BuildOptions(out=tmp_path / "out", size=100, examples=REVIEWS, synthetic=False)
    res = build(SENTIMENT, curate_fn=None, topup_fn=None, catalog=catalog, llm=llm, retriever=retriever_for(catalog, keys), options=options, embedder=Emb())
    by_key = {p.key: p for p in res.plans}
    far, rtp = by_key["nyu-mll/glue:sst2"], by_key["cornell-movie-review-data/rotten_tomatoes:default"]
    assert not far.keep and far.reason.startswith("its rows are far from the examples: cosine 0.00, bar 0.03 ("), far.reason
    assert far.checks["relevance_gate"]["level"] == "fail" and "acceptance" not in far.checks  # no LLM call spent on it
    assert rtp.keep and rtp.checks["relevance_gate"]["level"] == "pass" and rtp.checks["relevance_gate"]["score"] > 0.5
    assert "acceptance" in rtp.checks  # the judge still reads the kept source's inputs
    saved = {p["dataset"] + ":" + p["config"]: p for p in json.loads((tmp_path / "out" / "plans.json").read_text())["plans"]}
    assert saved["nyu-mll/glue:sst2"]["checks"]["relevance_gate"]["threshold"] == 0.03
    assert "rejected: its rows are far from the examples: cosine 0.00, bar 0.03" in (tmp_path / "out" / "README.md").read_text()
    assert {r.source_dataset for rs in res.rows.values() for r in rs} == {"cornell-movie-review-data/rotten_tomatoes"}


def test_build_without_an_embedder_records_the_skipped_gate(catalog, fake_llm, tmp_path):
    from datatune.pipeline import BuildOptions, build

    from .test_pipeline import SENTIMENT, retriever_for, smart_fake

    require(catalog, "cornell-movie-review-data/rotten_tomatoes")
    llm, _ = fake_llm(smart_fake())
    keys = ["cornell-movie-review-data/rotten_tomatoes:default"]
    for votes in (4, 0):
        options = BuildOptions(out=tmp_path / f"out{votes}", size=50, examples=REVIEWS, synthetic=False, judge_votes=votes)
        res = build(SENTIMENT, curate_fn=None, topup_fn=None, embedder=None, catalog=catalog, llm=llm, retriever=retriever_for(catalog, keys), options=options)
        gate = res.plans[0].checks["relevance_gate"]
        assert res.plans[0].keep and gate["level"] == "skipped" and not gate["applied"] and "no embedder" in gate["reason"]
        assert ("acceptance" in res.plans[0].checks) == bool(votes)


AG_NEWS_EXAMPLES = [  # AG News train rows (the catalog holds its test split only)
    "Wall St. Bears Claw Back Into the Black (Reuters) Reuters - Short-sellers, Wall Street's dwindling band of ultra-cynics, are seeing green again.",
    "Venezuelans Vote Early in Referendum on Chavez Rule (Reuters) Reuters - Venezuelans turned out early and in large numbers on Sunday to vote in a historic referendum.",
    "Phelps, Thorpe Advance in 200 Freestyle (AP) AP - Michael Phelps took care of qualifying for the Olympic 200-meter freestyle semifinals Sunday.",
]


@pytest.mark.slow
def test_minilm_gate_on_real_rows(catalog):
    """Real MiniLM, real rows, three AG News examples: AG News passes the gate; TREC questions are not
    passed (at best the soft zone) and are rejected once the judge reads them as questions; code fails outright."""
    from datatune.embed import get_embedder

    require(catalog, "fancyzhx/ag_news", "CogComp/trec", "google/code_x_glue_cc_code_refinement")

    def inputs(ds, cfg, split, col, n=24):
        data = catalog.load(ds, cfg, split)
        idx = sorted(np.random.default_rng(1).choice(len(data), min(n, len(data)), replace=False).tolist())
        return [str(x) for x in data.select(idx)[col]]

    news = spec(examples=[Example(input=t, output="x") for t in AG_NEWS_EXAMPLES], description="Classify a news article by topic")
    emb = get_embedder()
    ag = relevance_gate(inputs("fancyzhx/ag_news", "default", "test", "text"), news, emb)
    trec = relevance_gate(inputs("CogComp/trec", "default", "train", "text"), news, emb)
    code = relevance_gate(inputs("google/code_x_glue_cc_code_refinement", "small", "validation", "buggy"), news, emb)
    # MiniLM's cosine follows topic: these three news items put TREC's questions about as near as AG News
    # itself (0.09 and 0.10 here), so neither fails outright; neither passes without the judge either
    assert ag.accepted and ag.level in ("soft", "pass"), ag.to_dict()
    assert trec.level in ("soft", "fail"), trec.to_dict()
    assert not combine(trec, Acceptance(["news article"] * 3, ["question"] * 4, "examples"))[0]
    assert combine(ag, Acceptance(["news article"] * 3, ["news article"] * 4, "examples"))[0]
    assert code.level == "fail" and not code.accepted and code.reason.startswith("its rows are far from the examples"), code.to_dict()
