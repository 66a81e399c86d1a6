"""Coverage of the user's examples' embedding neighbourhoods, and top-up for the uncovered ones."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from datatune.coverage import example_coverage
from datatune.embed import HashEmbedder
from datatune.pipeline import BuildOptions
from datatune.records import Row
from datatune.task import Example, TaskSpec
from datatune.topup import topup

from .conftest import fake_rows, last_user, schema_of

SPEC = TaskSpec(description="Classify the sentiment of a text as positive or negative", output_kind="label", labels=["positive", "negative"],
                examples=[Example(input="the movie plot was dull and the actors were wooden", output="negative"),
                          Example(input="my new phone battery lasts all day, love it", output="positive")])


def film_rows(n: int) -> list[Row]:
    return [Row(f"the movie plot was {'dull' if i % 2 else 'great'} and the actors were {'wooden' if i % 2 else 'superb'} take {i}",
                "negative" if i % 2 else "positive", "films", "default", "train", i) for i in range(n)]


def test_coverage_counts_neighbours_per_example():
    cov = example_coverage(film_rows(40), SPEC.examples, HashEmbedder(), threshold=0.5, min_neighbours=3)
    assert cov.neighbours[0] >= 3 and cov.neighbours[1] == 0
    assert cov.uncovered == [1] and cov.share == 0.5
    assert cov.to_dict()["covered"] == 1 and cov.nearest[0] > cov.nearest[1]


def test_no_examples_is_full_coverage():
    cov = example_coverage(film_rows(4), [], HashEmbedder())
    assert cov.share == 1.0 and cov.uncovered == []


def test_topup_writes_rows_near_uncovered_examples_and_keeps_the_size(fake_llm):
    prompts = []

    def handler(body):
        props = (schema_of(body) or {}).get("properties", {})
        if "attributes" in props:
            return json.dumps({"attributes": ["short"]})
        if "subject" in props:
            assert "phone battery" in last_user(body)  # the uncovered example, asked what it is about
            return json.dumps({"subject": "a phone review"})
        prompts.append(last_user(body))
        endings = ["the screen is bright", "charging takes minutes", "calls sound crisp", "the camera is sharp"]
        count = iter(range(1000))
        return fake_rows(body, lambda _: {"input": f"my new phone battery lasts all day, {endings[(len(prompts) + next(count)) % 4]}"})

    llm, _ = fake_llm(handler)
    rows = film_rows(40)
    done = topup(rows, SPEC, options=BuildOptions(out=None, size=40, synthetic_fraction=0.5), llm=llm, embedder=HashEmbedder())
    out, stats = done.rows, done.stats
    synthetic = [r for r in out if r.method == "synthetic"]
    assert len(out) == 40 and 1 <= len(synthetic) <= 3
    assert all(r.output == "positive" for r in synthetic)  # the uncovered example's label
    assert prompts and all("Attribute: a phone review" in p for p in prompts)  # each request names the example's subject
    assert Counter(r.output for r in out) == Counter(r.output for r in rows)  # swapped for sourced rows of the same label
    assert stats["example_coverage_before"]["neighbours"][1] == 0
    assert stats["example_coverage"]["neighbours"][1] == len(synthetic)


def test_covered_examples_cost_no_call(fake_llm):
    llm, ep = fake_llm(lambda body: pytest.fail("no call expected"))
    spec = SPEC.model_copy(update={"examples": SPEC.examples[:1]})
    rows = film_rows(40)
    done = topup(rows, spec, options=BuildOptions(out=None, size=40), llm=llm, embedder=HashEmbedder())
    out, stats = done.rows, done.stats
    assert out == rows and ep.requests == [] and stats["example_coverage"]["covered"] == 1

