"""The compiled loops of a large index (retrieval_index/kernels.py) give numpy's results."""

from __future__ import annotations

import numpy as np
import pytest

from retrieval_index import kernels
from retrieval_index.lexical import Lexical


@pytest.fixture
def compiled(monkeypatch):
    pytest.importorskip("numba")
    monkeypatch.setattr(kernels, "COMPILED_FROM", 1)
    assert kernels._numba_kernels()  # numba is installed: the compiled loops run


def test_compiled_bm25_sums_equal_numpy_sums(compiled, monkeypatch):
    rng = np.random.default_rng(0)
    words = ["sentiment", "review", "movie", "news", "topic", "question", "answer", "passage", "tweet", "irony"]
    texts = [" ".join(rng.choice(words, size=rng.integers(1, 12))) for _ in range(3000)]
    lex = Lexical.build(texts)
    queries = ["movie review sentiment", "answer a question about a passage", "irony in a tweet", "nothing matches zzz"]
    got = [lex.scores(q) for q in queries]
    monkeypatch.setattr(kernels, "COMPILED_FROM", 10**9)
    plain = [lex.scores(q) for q in queries]
    for a, b in zip(got, plain):
        assert a.dtype == np.float32 and a.shape == (3000,)
        np.testing.assert_allclose(a, b, rtol=1e-6)
    assert plain[0].max() > 0 and not plain[3].any()


def test_compiled_group_max_equals_reduceat(compiled):
    rng = np.random.default_rng(1)
    values = rng.standard_normal(10_000).astype(np.float32)
    values[rng.integers(0, 10_000, 500)] = -np.inf  # absent rows, as dense similarities have them
    starts = np.concatenate([[0], np.sort(rng.choice(np.arange(1, 10_000), 2_999, replace=False))]).astype(np.int64)
    np.testing.assert_array_equal(kernels.segment_max(values, starts), np.maximum.reduceat(values, starts))
    one = np.array([0], dtype=np.int64)
    np.testing.assert_array_equal(kernels.segment_max(values, one), [values.max()])


def test_compiled_gathered_group_max_and_reach_equal_numpy(compiled):
    rng = np.random.default_rng(2)
    values = rng.standard_normal(400).astype(np.float32)
    values[rng.integers(0, 400, 300)] = -np.inf
    take = rng.integers(0, 400, 5_000)
    starts = np.concatenate([[0], np.sort(rng.choice(np.arange(1, 5_000), 999, replace=False))]).astype(np.int64)
    np.testing.assert_array_equal(kernels.segment_max(values, starts, take=take), np.maximum.reduceat(values[take], starts))
    expected = int(np.count_nonzero(np.logical_or.reduceat(np.isfinite(values[take]), starts)))
    assert 0 < kernels.segments_reached(values, take, starts) == expected < 1000
