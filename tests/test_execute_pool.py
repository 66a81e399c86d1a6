"""A source's pool (execute.sample_pool) is exactly what shuffling every mapped row gave, at any source size."""

from __future__ import annotations

import random

import pyarrow as pa
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


@pytest.mark.parametrize("plan", [PLANS[0], PLANS[2]], ids=lambda p: p.key)
def test_a_pool_of_positions_writes_its_rows_in_chunks(catalog, plan):
    """A pool that is most of its source holds positions and outputs (MappedRows): written a chunk at a time
    through the Buckets, or gathered, or read as codes, it gives the rows the shuffle gave."""
    from datatune.execute import MappedRows
    from datatune.records import CODED, concat, gathered_chunks

    want, _, _ = reference(plan, catalog, 3, 10**9)
    pool = sample_pool(plan, lambda s: catalog.load(plan.dataset, plan.config, s), seed=3, keep=10**9, split_rank=RANK, batch_size=500)
    assert isinstance(pool.store, MappedRows)
    rows = [r.to_dict() for r in want]
    written = concat(list(gathered_chunks(pool.store, pool.order, 97)))
    assert written.num_rows == len(rows) and written.to_pylist() == rows
    codes = pool.store.codes(pool.order, CODED)
    assert {n: codes.column(n).cast(written.schema.field(n).type).to_pylist() for n in CODED} == {n: written.column(n).to_pylist() for n in CODED}
    some = pool.order[::-7]
    assert pool.store.gather(some).to_pylist() == [rows[i] for i in range(len(rows))[::-7]]


def test_split_rows_read_the_rows_datasets_reads(catalog):
    """SplitRows maps a split's files itself where they are the split's rows, and reads through `datasets`
    where they are not (an indices mapping): batches and takes give the same rows either way."""
    import numpy as np

    from datatune.engines.source import SplitRows

    ds = catalog.load("cornell-movie-review-data/rotten_tomatoes", "default", "train")
    picked = ds.select(range(1, len(ds), 3))  # an indices mapping
    for d, own in ((ds, True), (picked, False)):
        rows = SplitRows(d, ["label", "text"])
        assert rows.own_mapping is own and rows.num_rows == len(d)
        arrow = d.select_columns(["label", "text"]).with_format("arrow")
        assert pa.concat_tables(rows.batches(999)).equals(arrow[:])
        at = np.sort(np.random.default_rng(0).choice(len(d), 500, replace=False))
        assert rows.take(at).equals(arrow[at.tolist()])
        assert rows.slice(10, 7).equals(arrow[10:17])
