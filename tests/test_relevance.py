"""Relevance-aware allocation: a dataset's configs nearest first, far sources only fill gaps."""

from __future__ import annotations

from collections import Counter

import pytest

from datatune.embed import HashEmbedder
from datatune.pipeline import BuildOptions, allocate
from datatune.records import Row
from datatune.relevance import SourceRelevance, source_relevance
from datatune.task import Example, TaskSpec

MATH = TaskSpec(description="Answer elementary math word problems", output_kind="letter", labels=["A", "B", "C", "D"],
                examples=[Example(input="John has 5 apples and buys 3 more apples. How many apples does he have?", output="B"),
                          Example(input="A train travels 60 miles in 2 hours. What is its speed in miles per hour?", output="A")])


def rows(key: str, texts: list[str], output: str = "A") -> list[Row]:
    ds, cfg = key.split(":")
    return [Row(t, output, ds, cfg, "train", i) for i, t in enumerate(texts)]


def test_scores_order_configs_nearest_first_and_mark_far_sources_weak():
    pools = {
        "mmlu:abstract_algebra": rows("mmlu:abstract_algebra", [f"Find the order of the group element g{i} in Z_{i}" for i in range(10)]),
        "mmlu:elementary": rows("mmlu:elementary", [f"Mary has {i} apples and buys more apples. How many apples does she have?" for i in range(10)]),
        "aqua:raw": rows("aqua:raw", [f"A train travels {i} miles in 2 hours. What is its speed?" for i in range(10)]),
        "empty:x": [],
    }
    rel = source_relevance(pools, MATH, HashEmbedder())
    assert rel.reference == "examples" and set(rel.scores) == {"mmlu:abstract_algebra", "mmlu:elementary", "aqua:raw"}
    assert rel.scores["mmlu:elementary"] > rel.scores["mmlu:abstract_algebra"]
    assert rel.weak == ["mmlu:abstract_algebra"]
    # datasets keep their retrieval rank (mmlu first); within mmlu the nearer config first; weak last
    assert rel.order(["mmlu:abstract_algebra", "mmlu:elementary", "aqua:raw"]) == ["mmlu:elementary", "aqua:raw", "mmlu:abstract_algebra"]
    assert rel.to_dict()["weak"] == ["mmlu:abstract_algebra"]


def test_description_is_the_reference_without_examples():
    spec = TaskSpec(description="apples and trains", output_kind="text")
    rel = source_relevance({"a:x": rows("a:x", ["apples"]), "b:y": rows("b:y", ["groups"])}, spec, HashEmbedder())
    assert rel.reference == "description" and rel.weak == ["b:y"]


def test_weak_source_fills_only_what_the_others_leave():
    near = rows("copa:x", [f"near {i}" for i in range(400)])
    far = rows("mmlu:algebra", [f"far {i}" for i in range(400)])
    opts = BuildOptions(out=None, size=100)
    # without relevance, the per-source cap gives the far source half
    assert Counter(r.source_dataset for r in allocate(near + far, ["mmlu:algebra", "copa:x"], opts)) == {"mmlu": 50, "copa": 50}
    # weak: the near source fills the set on its own
    out = allocate(near + far, ["copa:x", "mmlu:algebra"], opts, weak={"mmlu:algebra"})
    assert Counter(r.source_dataset for r in out) == {"copa": 100}
    # ...and the far one still fills a gap the near one can't
    out = allocate(near[:30] + far, ["copa:x", "mmlu:algebra"], opts, weak={"mmlu:algebra"})
    assert Counter(r.source_dataset for r in out) == {"copa": 30, "mmlu": 70}


def test_two_near_sources_keep_the_cap():
    a, b = rows("a:x", [f"a {i}" for i in range(400)]), rows("b:y", [f"b {i}" for i in range(400)])
    rel = SourceRelevance(scores={"a:x": 0.40, "b:y": 0.35})
    assert rel.weak == []
    out = allocate(a + b, rel.order(["a:x", "b:y"]), BuildOptions(out=None, size=100), weak=set(rel.weak))
    assert Counter(r.source_dataset for r in out) == {"a": 50, "b": 50}


@pytest.mark.slow
def test_minilm_ranks_real_catalog_sources(catalog):
    """Real MiniLM, real rows: the elementary-math subject of MMLU comes before abstract algebra,
    and movie reviews are far from math questions."""
    from datatune.embed import get_embedder

    def pool(ds, cfg, split, col):
        data = catalog.load(ds, cfg, split).select(range(48))
        return rows(f"{ds}:{cfg}", [str(x) for x in data[col]])

    pools = {
        "cais/mmlu:abstract_algebra": pool("cais/mmlu", "abstract_algebra", "test", "question"),
        "cais/mmlu:elementary_mathematics": pool("cais/mmlu", "elementary_mathematics", "test", "question"),
        "deepmind/aqua_rat:raw": pool("deepmind/aqua_rat", "raw", "test", "question"),
        "cornell-movie-review-data/rotten_tomatoes:default": pool("cornell-movie-review-data/rotten_tomatoes", "default", "train", "text"),
    }
    rel = source_relevance(pools, MATH, get_embedder())
    assert rel.scores["cais/mmlu:elementary_mathematics"] > rel.scores["cais/mmlu:abstract_algebra"]
    assert "cornell-movie-review-data/rotten_tomatoes:default" in rel.weak
    assert "deepmind/aqua_rat:raw" not in rel.weak and "cais/mmlu:elementary_mathematics" not in rel.weak
    order = rel.order(list(pools))
    assert order.index("cais/mmlu:elementary_mathematics") < order.index("cais/mmlu:abstract_algebra")


def test_build_fills_from_the_near_source_and_records_relevance(catalog, fake_llm, tmp_path):
    """Wiring: build() scores each kept source with its embedder and a far one only fills gaps.
    The embedder puts rotten_tomatoes' texts (and the examples) on one axis and everything else at
    cosine 0.3 to it: sst2 is far by construction (0.3 < 2/3 of 1.0), though not so far that the
    relevance gate (gate.py, bar 0.03 at two examples) rejects it."""
    import json

    import numpy as np

    from datatune.pipeline import build

    from .test_pipeline import SENTIMENT, retriever_for, smart_fake

    near = {t for split in ("train", "validation", "test") for t in catalog.load("cornell-movie-review-data/rotten_tomatoes", "default", split)["text"]}
    examples = [Example(input="a gorgeous , witty , seductive movie .", output="positive"),
                Example(input="the plot is nothing but boilerplate clichés .", output="negative")]
    near |= {e.input for e in examples}

    class TwoAxes:
        def encode(self, texts):
            return np.asarray([[1.0, 0.0] if t in near else [0.3, 0.954] for t in texts], dtype=np.float32)

    llm, _ = fake_llm(smart_fake())
    keys = ["nyu-mll/glue:sst2", "cornell-movie-review-data/rotten_tomatoes:default"]
    options = BuildOptions(out=tmp_path / "out", size=200, examples=examples)
    res = build(SENTIMENT, curate_fn=None, topup_fn=None, catalog=catalog, llm=llm, retriever=retriever_for(catalog, keys), options=options, embedder=TwoAxes())
    rows = [r for split in res.rows.values() for r in split]
    assert len(rows) == 200 and {r.source_dataset for r in rows} == {"cornell-movie-review-data/rotten_tomatoes"}
    relevance = json.loads((tmp_path / "out" / "manifest.json").read_text())["source_relevance"]
    assert relevance["weak"] == ["nyu-mll/glue:sst2"] and relevance["scores"]["cornell-movie-review-data/rotten_tomatoes:default"] == 1.0
    card = (tmp_path / "out" / "README.md").read_text()
    assert "| relevance |" in card and "used only to fill gaps: nyu-mll/glue:sst2" in card
