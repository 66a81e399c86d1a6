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


class Encoder:
    """Texts to fixed unit vectors: each text's first word names its direction."""

    AXES = {"poem": [1, 0, 0, 0], "news": [0, 1, 0, 0], "sport": [0, 0, 1, 0], "misc": [0, 0, 0, 1]}

    def encode(self, texts):
        import numpy as np

        out = []
        for t in texts:
            word = t.split()[0]
            v = np.asarray(self.AXES.get(word, [0.5, 0.5, 0.5, 0.5]), dtype=np.float32)
            out.append(v / np.linalg.norm(v))
        return np.stack(out)


def test_a_config_near_everything_is_discounted_against_one_near_the_examples(monkeypatch):
    import retrieval_index.by_rows as by_rows
    from retrieval_index.by_rows import RowMatcher

    # "hub" holds a value near every direction (a config of many short varied answers); "verse" is poems only
    samples = {
        "hub": {"default": {"text": " | ".join(["poem answer number one", "news answer number two", "sport answer number three",
                                                 "misc value over here"])}},
        "verse": {"default": {"text": " | ".join(["poem line about the quiet roots", "poem line about the mount"])}},
        "press": {"default": {"text": "news story about the markets | news story about an election"}},
        "games": {"default": {"text": "sport report of the final match | sport report of the derby"}},
    }
    m = RowMatcher(SimpleNamespace(samples=samples, encoder=Encoder()))
    assert m.hubness[m.keys.index(("hub", "default"))] > m.hubness[m.keys.index(("verse", "default"))]
    poem = ["poem tormented by the quickened blood of roots"]
    s = m.scores(poem)
    assert s[("verse", "default")] > s[("hub", "default")], s
    monkeypatch.setattr(by_rows, "HUBNESS_WEIGHT", 0.0)
    raw = m.scores(poem)
    assert raw[("verse", "default")] == raw[("hub", "default")], "without the correction both have a value as near as can be"
