"""Top-up: synthetic rows only for labels short of their share, deduplicated, capped."""

from __future__ import annotations

import itertools
import json
from collections import Counter

import datasets
import pytest

from datatune.pipeline import BuildOptions, build
from datatune.planner import Candidate
from datatune.records import Row
from datatune.task import TaskSpec
from datatune.topup import label_gaps, topup

from .conftest import fake_rows, rows_request, schema_of

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
        if "rows" in props:
            def one(_):
                i = next(n)
                if i % 5 == 0:  # every fifth is a duplicate the dedup must drop
                    return {"input": "the same neutral review again"}
                return {"input": f"review {i}: the film had its moments, scene {i * 7919 % 1000} was ordinary, cast {i} unremarkable"}

            return fake_rows(body, one)
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

    res = build(THREE, curate_fn=None, embedder=None, catalog=catalog, llm=llm, retriever=retrieve, topup_fn=topup,
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
    out = topup(rows, spec, options=BuildOptions(out=None, size=100, synthetic_fraction=0.2), llm=llm).rows
    assert sum(r.method == "synthetic" for r in out) <= 20


def test_rows_are_asked_for_in_batches_of_the_given_size(fake_llm):
    calls = []

    def handler(body):
        props = (schema_of(body) or {}).get("properties", {})
        if "attributes" in props:
            return json.dumps({"attributes": ["short", "long"]})
        calls.append(rows_request(body)[0])
        return fake_rows(body, lambda _: {"input": f"text number {len(calls)}-{next(counter)} about film scene {next(counter) * 31}"})

    counter = itertools.count()
    llm, _ = fake_llm(handler)
    spec = TaskSpec(description="label things", output_kind="label", labels=["a", "b"])
    rows = [Row(f"a{i}", "a", "S", "c", "train", i) for i in range(20)]
    out = topup(rows, spec, options=BuildOptions(out=None, size=40, synthetic_batch=5), llm=llm).rows
    assert sorted(calls) == [5, 5, 5, 5]  # the 20 missing "b" rows in four calls, not twenty
    assert Counter(r.output for r in out) == {"a": 20, "b": 20}


def test_multiple_choice_rows_put_the_correct_option_at_the_wanted_letter(fake_llm):
    from datatune import rules
    from datatune.task import Example
    from datatune.topup import generate, option_count

    def handler(body):
        n = itertools.count()

        def one(item):
            k = next(n)
            wrong = [f"wrong {j} of {k}" for j in range(item["wrong"]["maxItems"])]
            if k == 2:
                wrong[0] = f"right {k}"  # a repeated option makes the item ambiguous: dropped
            if k == 6:
                return {"question": "which?", "correct": "A", "wrong": ["B", "C"]}  # letters for options: dropped
            return {"question": f"question {k}?", "correct": f"right {k}", "wrong": wrong}

        return fake_rows(body, one)

    llm, _ = fake_llm(handler)
    ex = [Example(input="Which is red?\nA. sky\nB. blood\nC. grass", output="B")]
    spec = TaskSpec(description="answer questions", output_kind="letter", labels=["A", "B", "C", "D"], examples=ex)
    assert option_count(spec) == 3  # from the example, not from the label list
    out = generate(spec, [None] * 7, llm, seed=0, attributes=["x"], pool=[], batch=7)
    assert len(out) == 5 and Counter(r.output for r in out) == {"A": 2, "B": 2, "C": 1}  # the third (C) was dropped
    for r in out:
        assert rules.choice_count(r.input) == 3
        line = next(x for x in r.input.splitlines() if x.startswith(r.output + ". "))
        assert line.split(". ", 1)[1].startswith("right ")


def test_with_no_fitting_source_a_fully_synthetic_set_needs_fraction_one(catalog, fake_llm, tmp_path):
    from datatune.errors import ConfigError

    llm, _ = fake_llm(fake(["positive", "negative", "neutral"]))
    with pytest.raises(ConfigError, match="--synthetic-fraction 1"):
        build(THREE, curate_fn=None, embedder=None, catalog=catalog, llm=llm, retriever=lambda *a, **k: [], topup_fn=topup,
              options=BuildOptions(out=tmp_path / "half", size=30))
    res = build(THREE, curate_fn=None, embedder=None, catalog=catalog, llm=llm, retriever=lambda *a, **k: [], topup_fn=topup,
                options=BuildOptions(out=tmp_path / "all", size=30, synthetic_fraction=1.0))
    train = datasets.load_dataset(str(tmp_path / "all"))["train"]
    assert len(train) >= 27 and set(train["method"]) == {"synthetic"}  # a few fake duplicates may be dropped
    assert Counter(train["output"]).keys() == {"positive", "negative", "neutral"} and res.manifest["executed_rows"] == 0


def test_items_that_are_their_options_alone_stay_so_and_option_prefixes_are_stripped(fake_llm):
    from datatune.task import Example
    from datatune.topup import generate

    def handler(body):
        return fake_rows(body, lambda item: {"question": "A. It rained.", "correct": "A. It rained.", "wrong": ["B. The picnic was cancelled."]})

    llm, _ = fake_llm(handler)
    ex = [Example(input="A. The picnic was cancelled.\nB. It rained.", output="B")]
    spec = TaskSpec(description="which event caused the other", output_kind="letter", labels=["A", "B"], examples=ex)
    out = generate(spec, ["B"], llm, seed=0, attributes=["x"], pool=[], batch=1)
    assert [(r.input, r.output) for r in out] == [("A. The picnic was cancelled.\nB. It rained.", "B")]
