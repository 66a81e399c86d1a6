"""Fusion of the card ranking with the configs whose rows look like the examples (retrieval_index/by_rows.py)."""

from types import SimpleNamespace

from retrieval_index.by_rows import fuse


class Matcher:
    def __init__(self, scores):
        self._scores = scores

    def scores(self, examples):
        return self._scores


def hit(ds, config="default"):
    return SimpleNamespace(dataset_id=ds, config=config, configs=(config,))


def test_rows_that_stand_out_join_the_ranking():
    far = {(f"far{i}", "default"): 0.20 + 0.001 * i for i in range(40)}
    scores = {**far, ("near", "default"): 0.6}
    out = fuse([hit("a"), hit("b"), hit("c")], ["ex"], Matcher(scores), lookup=lambda d, c: hit(d, c))
    assert [h.dataset_id for h in out] == ["a", "b", "c", "near"]  # the far ones stay out


def test_first_among_rows_that_are_all_far_does_not_join():
    # every config's rows are about as far from the examples: the first of them is chance
    scores = {(f"far{i}", "default"): 0.20 + 0.001 * i for i in range(40)}
    out = fuse([hit("a"), hit("b")], ["ex"], Matcher(scores), lookup=lambda d, c: hit(d, c))
    assert [h.dataset_id for h in out] == ["a", "b"]
