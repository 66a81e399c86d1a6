"""Quality measures on small hand-computed cases, the report's shape, and the plots."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest

from datatune.embed import HashEmbedder
from datatune.quality import (
    _closest_other_lengths,
    label_distribution,
    max_rouge_l,
    near_duplicate_rate,
    pca_2d,
    plot_embedding_projection,
    plot_label_distribution,
    quality_report,
    remote_clique,
    rouge_l_f,
    rouge_threshold_for,
    rows_by_method,
    rows_by_source,
    self_bleu,
    tokens_per_example,
    unique_bigrams_per_example,
)
from datatune.records import Row
from datatune.task import TaskSpec

SENTENCES = [
    "the cat sat on the mat near the door",
    "a dog barked loudly at the passing mail carrier",
    "stock prices rose sharply after the earnings report",
    "she planted tomatoes and basil in the spring garden",
    "the committee postponed its vote until next week",
    "heavy rain flooded several streets in the old town",
]


# ---------------------------------------------------------------------------- ROUGE-L near-duplicates


def test_rouge_l_hand_computed():
    # LCS("a b c d", "a c d e") = "a c d" = 3 -> F = 2*3 / (4+4)
    assert rouge_l_f("a b c d", "a c d e") == pytest.approx(0.75)
    assert rouge_l_f("A, b!", "a b") == 1.0
    assert rouge_l_f("x y", "") == 0.0
    # LCS 2 of lengths 2 and 6 -> 4/8
    assert rouge_l_f("a b", "a x x x x b") == pytest.approx(0.5)


def test_rouge_l_equals_rouge_score_package_on_ascii():
    rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer")
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    rng = random.Random(0)
    words = "the a cat dog sat ran on under mat rug and".split()
    for _ in range(200):
        a = " ".join(rng.choice(words) for _ in range(rng.randint(1, 15)))
        b = " ".join(rng.choice(words) for _ in range(rng.randint(1, 15)))
        assert rouge_l_f(a, b) == pytest.approx(scorer.score(a, b)["rougeL"].fmeasure, abs=1e-12)


def test_near_duplicate_rate_identical_and_distinct_rows():
    same = ["the same sentence every time"] * 5
    out = near_duplicate_rate(same)
    assert out["rate"] == 1.0 and out["rows"] == 5 and out["sampled"] == 5 and out["threshold"] == 0.7
    assert near_duplicate_rate(SENTENCES)["rate"] == 0.0
    # 2 of 6 rows have a twin with F = 2*9/(9+10) = 0.947 >= 0.7
    texts = SENTENCES[:4] + [SENTENCES[0] + " again", "unrelated words entirely here"]
    assert near_duplicate_rate(texts)["rate"] == pytest.approx(2 / 6, abs=1e-4)
    assert near_duplicate_rate(texts, threshold=0.95)["rate"] == 0.0
    assert near_duplicate_rate(["only one"])["rate"] is None


def test_near_duplicate_rate_sampling_is_recorded_and_exact_per_query():
    texts = [f"row {i} " + SENTENCES[i % 6] for i in range(60)]
    out = near_duplicate_rate(texts, sample=10, seed=1)
    assert out["sampled"] == 10 and out["references"] == 60 and out["rows"] == 60
    best = max_rouge_l(texts, range(60))
    # every row shares all but its number with 9 others: F = 2*(n+1)/(2n+2+...) > 0.7
    assert (best >= 0.7).all()
    assert out["rate"] == 1.0
    capped = near_duplicate_rate(texts, sample=10, max_pairs=100)
    assert capped["references"] == 10


def test_max_rouge_l_excludes_self_only():
    texts = ["a b c", "a b c", "x y z"]
    assert max_rouge_l(texts, [0, 1, 2]).tolist() == [1.0, 1.0, 0.0]


# ---------------------------------------------------------------------------- lexical diversity


def test_unique_bigrams_and_tokens_per_example():
    texts = ["a b c", "a b d"]  # bigrams: ab, bc, bd
    assert unique_bigrams_per_example(texts) == 1.5
    assert tokens_per_example(texts) == 3.0
    assert unique_bigrams_per_example(["x"]) == 0.0
    assert tokens_per_example(["one two", "Three, four, five!", ""]) == pytest.approx(5 / 3)


def test_self_bleu_identical_rows_is_one():
    out = self_bleu(["the cat sat on the warm mat"] * 4)
    assert [out[f"bleu{k}"] for k in range(1, 6)] == [1.0] * 5
    assert out["mean"] == 1.0 and out["hypotheses"] == 4


def test_self_bleu_hand_computed():
    # "a b" vs reference "a c": p1 = 1/2, p2 = 0 -> smoothed 0.1/1, brevity penalty 1
    out = self_bleu(["a b", "a c"], max_n=2)
    assert out["bleu1"] == 0.5
    assert out["bleu2"] == round(math.sqrt(0.5 * 0.1), 4)
    # no shared word at all: BLEU 0
    assert self_bleu(["a b", "c d"], max_n=2)["bleu1"] == 0.0


def test_self_bleu_matches_nltk():
    bleu = pytest.importorskip("nltk.translate.bleu_score")
    from datatune.curate import tokenize

    rng = random.Random(5)
    words = "the a cat dog sat ran on under mat rug and big small".split()
    texts = [" ".join(rng.choice(words) for _ in range(rng.randint(0, 12))) for _ in range(40)]
    toks = [tokenize(t) for t in texts]
    out = self_bleu(texts)
    smooth = bleu.SmoothingFunction().method1
    for n in range(1, 6):
        ref = np.mean(
            [
                bleu.sentence_bleu(toks[:i] + toks[i + 1 :], toks[i], weights=(1 / n,) * n, smoothing_function=smooth)
                for i in range(len(toks))
            ]
        )
        assert out[f"bleu{n}"] == pytest.approx(float(ref), abs=5.1e-5)  # the report rounds to 4 places


def test_closest_other_lengths_prefers_shorter_on_ties():
    assert _closest_other_lengths(np.array([3, 5, 7, 5])).tolist() == [5, 5, 5, 5]
    assert _closest_other_lengths(np.array([4, 2, 6])).tolist() == [2, 4, 4]


# ---------------------------------------------------------------------------- embeddings


def test_remote_clique_known_vectors():
    assert remote_clique(np.array([[0.0, 0.0], [3.0, 4.0]])) == pytest.approx(2.5)  # (0+5+5+0)/4
    e = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    assert remote_clique(e) == pytest.approx((4 + 4 * math.sqrt(2)) / 9)
    assert remote_clique(np.ones((5, 3))) == 0.0
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 8))
    brute = np.mean([[np.linalg.norm(a - b) for b in x] for a in x])
    assert remote_clique(x, block=64) == pytest.approx(brute, rel=1e-9)


def test_pca_2d_finds_the_main_axis():
    x = np.zeros((4, 3))
    x[:, 1] = [-2, -1, 1, 2]
    coords, share = pca_2d(x)
    assert np.abs(coords[:, 0]).tolist() == pytest.approx([2, 1, 1, 2])
    assert share[0] == pytest.approx(1.0)


# ---------------------------------------------------------------------------- distributions, thresholds


def rows_fixture() -> list[Row]:
    rows = []
    for i, s in enumerate(SENTENCES):
        rows.append(Row(s, "positive" if i % 2 else "negative", "org/a", "default", "train", i))
    rows.append(Row("one more mapped sentence about weather", "neutral", "org/b", "x", "test", 0, method="llm"))
    rows.append(Row("I really loved it, it was great!", "positive", method="synthetic"))
    rows.append(Row("I really loved it, it was great!!", "positive", method="synthetic"))
    rows.append(Row("what", "unknown label", "org/a", "default", "train", 99))
    return rows


def test_label_distribution_and_counts():
    rows = rows_fixture()
    spec = TaskSpec(description="sentiment", output_kind="label", labels=["negative", "neutral", "positive", "mixed"])
    d = label_distribution(rows, spec)
    assert d["counts"] == {"negative": 3, "neutral": 1, "positive": 5, "mixed": 0}
    assert d["other"] == 1
    assert d["missing"] == ["mixed"]
    assert d["shares"]["positive"] == 0.5
    assert d["max_share_deviation"] == 0.25
    assert d["min_max_ratio"] == 0.0
    assert label_distribution(rows)["kind"] == "outputs"
    assert label_distribution(rows)["top"]["positive"] == 5
    assert rows_by_method(rows) == {"mapped": 7, "synthetic": 2, "llm": 1}
    assert rows_by_source(rows) == {"org/a": 7, "synthetic": 2, "org/b": 1}


def test_rouge_threshold_for_task():
    assert rouge_threshold_for(TaskSpec(description="classify tweets")) == 0.7
    assert rouge_threshold_for(TaskSpec(description="describe what a line of Python code does")) == 0.8
    assert rouge_threshold_for(TaskSpec(description="write it", output_kind="code")) == 0.8
    assert rouge_threshold_for(TaskSpec(description="answer temporal sequence questions")) == 0.9
    assert rouge_threshold_for(None) == 0.7


# ---------------------------------------------------------------------------- report and plots


def _png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_quality_report_is_json_and_complete(tmp_path):
    rows = rows_fixture()
    spec = TaskSpec(description="sentiment", output_kind="label", labels=["negative", "neutral", "positive"])
    rep = quality_report(rows, spec, embedder=HashEmbedder(), drops={"near_duplicate": 3}, plots_dir=tmp_path)
    json.dumps(rep)  # serialisable as is
    assert rep["rows"] == 10
    assert rep["drops"] == {"near_duplicate": 3}
    assert rep["near_duplicates"]["threshold"] == 0.7
    assert rep["near_duplicates"]["rate"] == 0.2  # the two synthetic rows are each other's twins
    assert rep["methods"]["synthetic"]["near_duplicate_rate"] == 1.0
    assert rep["methods"]["synthetic"]["self_bleu"] == 1.0
    assert rep["remote_clique"]["rows"] == 10 and rep["remote_clique"]["value"] > 0
    assert rep["label_distribution"]["counts"]["positive"] == 5
    assert set(rep["plots"]) == {"label_distribution", "embedding_projection"}
    for name in rep["plots"].values():
        w, h = _png_size(tmp_path / name)
        assert w > 300 and h > 300
    no_emb = quality_report(rows, spec)
    assert no_emb["remote_clique"] is None and "plots" not in no_emb


def test_plots_written(tmp_path):
    rows = rows_fixture()
    p = plot_label_distribution(rows, tmp_path / "sub" / "labels.png", labels=["negative", "neutral", "positive"])
    assert p.exists() and p.stat().st_size > 5000
    emb = HashEmbedder().encode([r.input for r in rows])
    p2 = plot_embedding_projection(rows, emb, tmp_path / "proj.png")
    assert p2.exists() and p2.stat().st_size > 5000
    with pytest.raises(ValueError):
        plot_embedding_projection(rows, emb[:3], tmp_path / "bad.png")
    # a task without a label set: the most common outputs
    p3 = plot_label_distribution([Row(str(i), str(i % 3)) for i in range(30)], tmp_path / "outputs.png")
    assert _png_size(p3)[0] > 300


@pytest.mark.slow
def test_minilm_embeddings_and_remote_clique():
    from datatune.embed import encode

    e = encode(["The movie was absolutely wonderful.", "The film was absolutely wonderful.", "Stock markets fell sharply on Monday."])
    assert e.shape == (3, 384) and e.dtype == np.float32
    assert np.linalg.norm(e, axis=1) == pytest.approx([1, 1, 1], abs=1e-5)
    sims = e @ e.T
    assert sims[0, 1] > 0.9 and sims[0, 2] < 0.3
    assert remote_clique(e[:2]) < remote_clique(e[[0, 2]])
    assert encode([]).shape == (0, 384)
