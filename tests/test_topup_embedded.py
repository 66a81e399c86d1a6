"""Top-up with the real embedded model: label-conditioned rows for a short class, and rows near an uncovered example."""

from __future__ import annotations

import pytest

from datatune.embed import get_embedder
from datatune.pipeline import BuildOptions
from datatune.records import Row
from datatune.task import Example, TaskSpec
from datatune.topup import topup

pytestmark = [pytest.mark.slow, pytest.mark.embedded]

SPEC = TaskSpec(description="Classify the sentiment of a product or movie review as positive, negative or neutral", output_kind="label",
                labels=["positive", "negative", "neutral"],
                examples=[Example(input="The blender is loud but it crushes ice in seconds.", output="positive")])


def movie_rows() -> list[Row]:
    good = ["A moving, beautifully shot film.", "The cast is superb and the script sparkles.", "Funny, warm and wise.",
            "One of the best thrillers of the year."]
    bad = ["A tedious mess with no plot.", "The acting is wooden and the jokes fall flat.", "Two hours I will never get back.",
           "Dull, overlong and predictable."]
    return [Row(t, "positive", "films", "default", "train", i) for i, t in enumerate(good)] + \
           [Row(t, "negative", "films", "default", "train", 10 + i) for i, t in enumerate(bad)]


def test_real_model_tops_up_the_short_class_and_the_uncovered_example(embedded_llm):
    rows = movie_rows()
    done = topup(rows, SPEC, options=BuildOptions(out=None, size=12, synthetic_fraction=0.5), llm=embedded_llm, embedder=get_embedder())
    out, stats = done.rows, done.stats
    synthetic = [r for r in out if r.method == "synthetic"]
    print(stats, *[(r.output, r.input) for r in synthetic], sep="\n")  # shown when the test fails
    assert len(out) == 12 and synthetic
    neutral = [r for r in synthetic if r.output == "neutral"]
    assert len(neutral) >= 3, [(r.input, r.output) for r in synthetic]  # the short class, 4 wanted, one may be a duplicate
    assert all(r.input.strip() and r.input not in {x.input for x in rows} for r in synthetic)
    # the blender example had no movie review near it; rows written after it now are
    assert stats["example_coverage_before"]["neighbours"] == [0]
    assert stats["example_coverage"]["neighbours"][0] >= 1, (stats, [r.input for r in synthetic])
