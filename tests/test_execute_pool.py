"""A source's pool (execute.sample_pool) is exactly what shuffling every mapped row gave, at any source size."""

from __future__ import annotations

import random

import pytest

from datatune.execute import execute_plan, sample_pool
from datatune.plan import Choices, OutputRule, Plan

RANK = ["train", "validation", "test"]

PLANS = [
    # the one-text-column label map (pyarrow compute path), two splits
    Plan(dataset="cornell-movie-review-data/rotten_tomatoes", config="default", splits=["validation", "train"], keep=True,
         input_columns=["text"], output=OutputRule(kind="label_map", column="label", label_map={"neg": "negative", "pos": "positive"})),
    # a label map that leaves a label unmapped (rows dropped as label_unmapped)
    Plan(dataset="fancyzhx/ag_news", config="default", splits=["test"], keep=True,
         input_columns=["text"], output=OutputRule(kind="label_map", column="label", label_map={"World": "World", "Sports": "Sports"})),
    # options and a letter (Python per row), test listed first
    Plan(dataset="allenai/ai2_arc", config="ARC-Easy", splits=["test", "validation"], keep=True,
         input_columns=["question"], choices=Choices(options=["choices.text"]),
         output=OutputRule(kind="choice_letter", column="answerKey", option_keys="choices.label")),
]


def reference(plan: Plan, catalog, seed: int, keep: int):
    """What the build did before pools: every row mapped, shuffled, train first, cut."""
    res = execute_plan(plan, lambda s: catalog.load(plan.dataset, plan.config, s))
    rows = res.rows
    random.Random(f"{seed}:{plan.key}").shuffle(rows)
    rank = {s: i for i, s in enumerate(RANK)}
    rows.sort(key=lambda r: rank.get(r.source_split, len(rank)))
    return rows[:keep], res.drops, res.seen


@pytest.mark.parametrize("plan", PLANS, ids=lambda p: p.key)
@pytest.mark.parametrize("keep", [50, 10**9])
def test_pool_is_the_shuffled_rows(catalog, plan, keep):
    want, drops, seen = reference(plan, catalog, 7, keep)
    got = sample_pool(plan, lambda s: catalog.load(plan.dataset, plan.config, s), seed=7, keep=keep, split_rank=RANK, batch_size=997)
    assert [r.to_dict() for r in got.rows] == [r.to_dict() for r in want]
    assert got.drops == drops and got.seen == seen
    assert want, "the plan maps no rows: the comparison would be vacuous"
