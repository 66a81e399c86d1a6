"""The approximate (faiss IVF) dense search: recall against exact, incremental add, save/load, and the
exact path kept for small indexes."""

from __future__ import annotations

import random
from dataclasses import replace

import numpy as np
import pytest

from datatune.core.types import DatasetEntry
from retrieval_index import Filters, RetrievalIndex
from retrieval_index import ann as ann_module
from retrieval_index.ann import AnnRole, AnnSet
from retrieval_index.text import text_hash
from tests.test_retrieval import SENTIMENT, FakeCatalog, HashEncoder, _cfg, make_entries


def clustered(n: int, seed: int = 0, centres: int = 50) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centres, 384)).astype(np.float32)
    x = c[rng.integers(0, centres, n)] + 0.6 * rng.standard_normal((n, 384)).astype(np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def hashes(n: int, salt: str = "") -> list[str]:
    return [text_hash(f"text {salt}{i}") for i in range(n)]


def test_graph_candidates_recall_exact_top(tmp_path):
    x = clustered(4000)
    role = AnnRole.build(x, np.arange(len(x)), hashes(len(x)))
    rng = np.random.default_rng(1)
    q = x[rng.integers(0, len(x), 30)] + 0.05 * rng.standard_normal((30, 384)).astype(np.float32)  # queries near the data
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    got = []
    for v in q:
        exact = np.argsort(-(x @ v))[:50]
        cand = set(role.candidates(v, 200).tolist())
        got.append(len(cand & set(exact.tolist())) / 50)
    assert np.mean(got) >= 0.98
    # candidates are matrix rows, not graph keys: a vector's nearest candidate is its own row
    assert role.candidates(x[1234], 5)[0] == 1234


def test_incremental_build_keeps_reused_keys_and_adds_new_ones(tmp_path):
    x = clustered(3000)
    h = hashes(3000)
    first = AnnSet.build(x, {"dense": np.arange(2000)}, h)
    first.save(tmp_path / "ann")
    # rows 0-199 leave the catalog, rows 2000-2499 arrive; rows may also move in the matrix
    rows = np.arange(200, 2500)
    second = AnnSet.build(x, {"dense": rows}, h, previous=tmp_path / "ann")
    r = second["dense"]
    assert (r.added, r.removed, r.reused) == (500, 200, 1800)
    assert len(r) == r.index.ntotal == len(rows)
    assert r.candidates(x[2400], 3)[0] == 2400  # an added vector is found
    assert 5 not in set(r.candidates(x[5], 50).tolist())  # a removed one is not
    # a previous index that lost too much is rebuilt, not patched
    third = AnnSet.build(x, {"dense": np.arange(2000, 3000)}, h, previous=tmp_path / "ann")
    assert (third["dense"].added, third["dense"].reused) == (1000, 0)


def test_save_load_round_trip(tmp_path):
    x = clustered(1500)
    h = hashes(1500)
    rows = {"dense": np.arange(0, 1500, 2), "task": np.arange(1, 1500, 2)}
    built = AnnSet.build(x, rows, h)
    built.save(tmp_path / "ann")
    loaded = AnnSet.load(tmp_path / "ann", rows, h)
    assert loaded is not None
    for role in rows:
        for v in x[:20]:
            assert loaded[role].candidates(v, 30).tolist() == built[role].candidates(v, 30).tolist()
    # graphs that don't hold exactly these rows' texts are not used
    assert AnnSet.load(tmp_path / "ann", {"dense": np.arange(0, 1500, 3), "task": rows["task"]}, h) is None
    assert AnnSet.load(tmp_path / "ann", rows, hashes(1500, salt="other")) is None
    assert AnnSet.load(tmp_path / "missing", rows, h) is None


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DATATUNE_CACHE", str(tmp_path))
    return tmp_path


def test_small_index_searches_exactly_and_ann_with_every_candidate_is_identical(cache):
    index = RetrievalIndex.load_or_build(FakeCatalog(make_entries()), encoder=HashEncoder(), samples=False)
    assert index.dense_mode == "exact" and index.ann is None and len(index.vectors) < ann_module.EXACT_BELOW
    queries = ["Determine whether a movie review is positive or negative.", "stance of tweets", "math word problems"]
    exact = [index.rankings(q).lists for q in queries]
    hits = [[(h.dataset_id, h.config, h.score) for h in index.search(q)] for q in queries]
    index.build_ann()
    index.ann_candidates = 10**6  # every row is a candidate: the ANN path must then be the exact path
    assert index.dense_mode == "ann"
    for q, lists in zip(queries, exact):
        got = index.rankings(q).lists
        assert got.keys() == lists.keys()
        for name in lists:
            assert np.array_equal(got[name][0], lists[name][0]) and np.array_equal(got[name][1], lists[name][1]), name
    assert [[(h.dataset_id, h.config, h.score) for h in index.search(q)] for q in queries] == hits
    index.use_ann(False)
    assert index.dense_mode == "exact"


WORDS = ("sentiment review movie tweet stance emotion news topic question answer math sport politics legal medical "
         "product restaurant hotel dialogue summary translation code python law finance science biology").split()


def many_entries(n: int, seed: int = 0) -> list[DatasetEntry]:
    rng = random.Random(seed)
    out = list(make_entries())
    for i in range(n):
        words = rng.sample(WORDS, 6)
        out.append(DatasetEntry(
            f"org{i % 7}/set_{i}", pretty_name=f"Set {i} {words[0]}", task_categories=("text-classification",),
            task_ids=(f"{words[1]}-classification",), languages=(rng.choice(["en", "fr", "de"]),),
            licenses=(rng.choice(["mit", "apache-2.0", "unknown"]),),
            summary=" ".join(rng.choice(WORDS) for _ in range(20)),
            configs=(_cfg("default", "text", SENTIMENT, rows=100 + i), _cfg(f"{words[2]}_sub", words[3], "answer")),
        ))
    return out


def test_large_index_builds_saves_loads_and_updates_its_graphs(cache, monkeypatch):
    monkeypatch.setattr(ann_module, "EXACT_BELOW", 100)
    monkeypatch.setattr(ann_module, "NPROBE", 1000)  # every list: this tests the plumbing (recall is tested above)
    entries = many_entries(400)
    index = RetrievalIndex.load_or_build(FakeCatalog(entries), encoder=HashEncoder(), samples=False)
    assert index.dense_mode == "ann" and len(index.vectors) >= 100
    assert index.stats.ann["dense"]["added"] == index.stats.ann["dense"]["vectors"] > 400
    folder = RetrievalIndex.folder_for(FakeCatalog(entries))
    assert (folder / "ann" / "dense.faiss").is_file() and (folder / "ann" / "task.faiss").is_file()

    loaded = RetrievalIndex.load_or_build(FakeCatalog(entries), encoder=HashEncoder(), samples=False)
    assert loaded.stats.loaded and loaded.dense_mode == "ann"
    queries = ["Determine whether a movie review is positive or negative.", "classify the stance of tweets",
               "legal question answering in French", "python code summary", "sport news topic"]
    filt = Filters.make(licenses="mit")
    for q in queries:
        for f in (None, filt):
            loaded.use_ann(True)
            a = [(h.dataset_id, h.config) for h in loaded.search(q, k=10, filters=f)]
            loaded.use_ann(False)
            b = [(h.dataset_id, h.config) for h in loaded.search(q, k=10, filters=f)]
            assert a and a == b, (q, f)

    # a catalog change: one card edited, one added; only their texts are embedded, the graphs patched
    changed = list(entries)
    changed[10] = replace(changed[10], summary="An entirely new description of hotel reviews in German.")
    changed.append(replace(entries[20], id="org1/brand_new", pretty_name="Brand new"))
    enc = HashEncoder()
    rebuilt = RetrievalIndex.load_or_build(FakeCatalog(changed), encoder=enc, samples=False)
    s = rebuilt.stats
    assert not s.loaded and 0 < s.embedded <= 6 and s.reused > 400
    assert s.ann["dense"]["added"] == 2 and s.ann["dense"]["removed"] == 1 and s.ann["dense"]["reused"] > 400
    new_row = rebuilt.row_keys.index(text_hash(next(d for d in enc.encoded if "Brand new" in d)))
    assert new_row in rebuilt.ann["dense"].candidates(rebuilt.vectors[new_row], 5).tolist()
