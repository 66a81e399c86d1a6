"""Top-up: synthetic rows only for labels short of their share, deduplicated, capped."""

from __future__ import annotations

import itertools
import json
from collections import Counter

import datasets

from datatune.pipeline import BuildOptions, build
from datatune.planner import Candidate
from datatune.records import Row
from datatune.task import TaskSpec
from datatune.topup import label_gaps, topup

from .conftest import last_user, schema_of

THREE = "Classify the sentiment of a movie review as positive, negative or neutral"


def fake(labels):
    n = itertools.count()

    def handler(body):
        props = (schema_of(body) or {}).get("properties", {})
        if "output_kind" in props:
            return json.dumps({"output_kind": "label", "labels": labels, "language": "en", "input_format": "", "output_format": ""})
        if "output_column" in props:
            cols = props["output_column"]["enum"]
            return json.dumps({"input_columns": [c for c in ("text", "sentence") if c in cols][:1], "output_column": "label"})
        if "attributes" in props:
            return json.dumps({"attributes": ["a cinema visit", "a streaming show", "a documentary"]})
        if "input" in props:
            i = next(n)
            if i % 5 == 0:  # every fifth is a duplicate the dedup must drop
                return json.dumps({"input": "the same neutral review again"})
            return json.dumps({"input": f"review {i}: the film had its moments, scene {i * 7919 % 1000} was ordinary, cast {i} unremarkable"})
        return "ok"

    return handler


def test_label_gaps_with_tolerance():
    spec = TaskSpec(description="x", output_kind="label", labels=["a", "b"])
    rows = [Row("x", "a")] * 48 + [Row("y", "b")] * 52
    assert label_gaps(rows, spec, 100) == {}
    assert label_gaps([Row("x", "a")] * 30, spec, 100) == {"a": 20, "b": 50}


def test_unbalanced_sources_come_out_balanced_with_synthetic_only_in_short_class(catalog, fake_llm, tmp_path):
    llm, _ = fake_llm(fake(["positive", "negative", "neutral"]))

    def retrieve(query, k, exclude, **kw):
        e1, e2 = catalog.entry("cornell-movie-review-data/rotten_tomatoes"), catalog.entry("nyu-mll/glue")
        return [Candidate(e1, e1.config("default")), Candidate(e2, e2.config("sst2"))]

    res = build(THREE, catalog=catalog, llm=llm, retriever=retrieve, topup_fn=topup,
                options=BuildOptions(out=tmp_path / "out", size=150, synthetic_fraction=0.5))
    train = datasets.load_dataset(str(tmp_path / "out"))["train"]
    counts = Counter(train["output"])
    assert len(train) == 150
    for label in ("positive", "negative", "neutral"):
        assert abs(counts[label] - 50) <= 5, counts  # within 10% of a balanced share
    synthetic = [r for r in train if r["method"] == "synthetic"]
    assert synthetic and {r["output"] for r in synthetic} == {"neutral"}
    assert all(r["source_dataset"] == "" and r["source_row"] == -1 for r in synthetic)
    assert len({r["input"] for r in synthetic}) == len(synthetic)  # duplicates were dropped
    assert res.drops.get("synthetic_rejected", 0) >= 1


def test_synthetic_fraction_caps_the_share(fake_llm):
    llm, ep = fake_llm(fake(["a", "b"]))
    spec = TaskSpec(description="label things", output_kind="label", labels=["a", "b"])
    rows = [Row(f"a{i}", "a", "S", "c", "train", i) for i in range(50)]
    out = topup(rows, spec, options=BuildOptions(out=None, size=100, synthetic_fraction=0.2), llm=llm, drops=Counter())
    assert sum(r.method == "synthetic" for r in out) <= 20
