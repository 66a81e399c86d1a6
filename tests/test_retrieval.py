"""Retrieval index, unit level: a small in-memory catalog and a hashing encoder (no model, no files).

The real catalog and the real model are exercised in test_retrieval_quality.py.
"""

from __future__ import annotations

import hashlib

import datasets
import numpy as np
import pytest

from datatune.catalog.listing import HubListing
from datatune.core.types import ConfigInfo, DatasetEntry, Feature
from datatune.errors import DatasetLoadError, LLMError, OfflineError
from retrieval_index import Filters, RetrievalIndex, Weights, is_copy_of, rerank
from retrieval_index.dense import Encoder, QueryModel, ScoringMatrix, cosine_scores
from retrieval_index.evaluate import first_relevant_rank, score_ranks
from retrieval_index.fusion import demote_repeats, rrf, top
from retrieval_index.labels import LabelMatch
from retrieval_index.languages import config_languages, query_languages
from retrieval_index.samples import categorical_columns
from retrieval_index.tags import TagMatch, tag_texts
from retrieval_index.text import stem, tokenize


# -- fixtures ------------------------------------------------------------------------------------
class HashEncoder:
    """Bag of stemmed words hashed into 384 dims: similar texts get similar vectors, instantly."""

    model_id = "test/hash-encoder"
    max_seq_length = 128

    def __init__(self):
        self.encoded: list[str] = []

    def encode(self, texts, *, progress=None):
        self.encoded.extend(texts)
        out = np.zeros((len(texts), 384), dtype=np.float32)
        for i, t in enumerate(texts):
            for tok in tokenize(t):
                out[i, int(hashlib.md5(tok.encode()).hexdigest(), 16) % 384] += 1.0
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)
        if progress:
            progress(len(texts))
        return out

    def encode_query(self, query):
        return self.encode([query])[0]


def _cfg(name, *features, rows=1000):
    return ConfigInfo(name, tuple(Feature(*f) if isinstance(f, tuple) else Feature(f, "string") for f in features), {"train": rows})


SENTIMENT = ("label", "class_label", ("negative", "positive"))


def make_entries() -> list[DatasetEntry]:
    return [
        DatasetEntry("acme/movie_reviews", aliases=("movie_reviews",), pretty_name="Movie Reviews",
                     task_categories=("text-classification",), task_ids=("sentiment-classification",),
                     languages=("en",), licenses=("mit",), summary="Movie reviews labelled positive or negative.",
                     configs=(_cfg("default", "text", SENTIMENT, rows=50_000),), has_rows=True),
        DatasetEntry("resto_fr", pretty_name="Avis de restaurants", task_categories=("text-classification",),
                     task_ids=("sentiment-classification",), languages=("fr",), licenses=("cc-by-4.0",),
                     summary="French restaurant reviews with a positive or negative label.",
                     configs=(_cfg("default", "review", SENTIMENT, rows=2_000),)),
        DatasetEntry("tweets", pretty_name="Tweet tasks", task_categories=("text-classification",),
                     task_ids=("sentiment-classification", "text-classification-other-stance-detection"),
                     languages=("en",), licenses=("unknown",), summary="Tweets for several classification tasks.",
                     configs=(
                         _cfg("stance_abortion", "text", ("label", "class_label", ("none", "against", "favor"))),
                         _cfg("stance_climate", "text", ("label", "class_label", ("none", "against", "favor"))),
                         _cfg("emotion", "text", ("label", "class_label", ("anger", "joy", "sadness"))),
                     )),
        DatasetEntry("math_word_problems", pretty_name="Math word problems", task_categories=("text2text-generation",),
                     languages=("en",), licenses=("mit",), summary="Grade school math word problems with solutions.",
                     configs=(_cfg("main", "question", "answer"),)),
        DatasetEntry("bigbench", pretty_name="BIG-bench", task_categories=("multiple-choice",), languages=("en",),
                     licenses=("apache-2.0",), summary="Beyond the Imitation Game benchmark: math, sentiment, reviews.",
                     configs=(_cfg("sentiment_reviews", "inputs", "targets"), _cfg("arithmetic", "inputs", "targets"))),
        DatasetEntry("tasksource/bigbench_lite", pretty_name="bigbench lite", languages=("en",),
                     summary="A copy of BIG-bench tasks: sentiment of movie reviews.", configs=(_cfg("default", "inputs", "targets"),)),
    ]


class FakeCatalog:
    location = "memory://test"

    def __init__(self, entries):
        self._entries = entries
        self.loads = 0

    def entries(self):
        return self._entries

    def entry(self, dataset_id):
        return next(e for e in self._entries if dataset_id in e.names)

    def fingerprint(self):
        return hashlib.sha256(repr([(e.id, e.summary, e.configs) for e in self._entries]).encode()).hexdigest()[:16]

    def load(self, dataset_id, config, split):
        self.loads += 1
        if dataset_id != "acme/movie_reviews":
            raise DatasetLoadError(f"no rows for {dataset_id}")
        return datasets.Dataset.from_dict({
            "text": [f"review {i}: {'great' if i % 2 else 'awful'} film" for i in range(30)],
            "label": [i % 2 for i in range(30)],
        })


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DATATUNE_CACHE", str(tmp_path))
    return tmp_path


@pytest.fixture
def encoder():
    return HashEncoder()


@pytest.fixture
def index(cache, encoder):
    return RetrievalIndex.load_or_build(FakeCatalog(make_entries()), encoder=encoder, samples=True)


def ids(hits):
    return [h.dataset_id for h in hits]


# -- search --------------------------------------------------------------------------------------
def test_search_returns_hits_with_reasons(index):
    hits = index.search("Determine whether a movie review is positive or negative.", k=3)
    assert hits[0].dataset_id == "acme/movie_reviews"
    h = hits[0]
    assert h.config == "default" and h.score > 0 and h.entry.id == h.dataset_id
    assert any(w.startswith("labels:") and "positive" in w for w in h.why)
    assert "language: English" in h.why
    d = h.to_dict()
    assert d["dataset_id"] == "acme/movie_reviews" and d["license"] == "mit" and isinstance(d["why"], list)


def test_configs_of_one_kind_are_one_result_and_other_kinds_are_separate(index):
    hits = index.search("Classify the stance of a tweet as favor, against or none.", k=10)
    tweets = [h for h in hits if h.dataset_id == "tweets"]
    assert tweets[0].config.startswith("stance_")
    assert set(tweets[0].configs) == {"stance_abortion", "stance_climate"}
    assert len(tweets) <= 2 and all(len(set(h.configs)) == len(h.configs) for h in hits)
    if len(tweets) == 2:
        assert tweets[1].configs == ("emotion",)
        assert hits.index(tweets[1]) > hits.index(tweets[0])


def test_language_prior_prefers_the_task_language(index):
    hits = index.search("Classify restaurant reviews as positive or negative.", k=5)
    assert ids(hits).index("acme/movie_reviews") < ids(hits).index("resto_fr")
    french = index.search("Classify French restaurant reviews as positive or negative.", k=5)
    assert french[0].dataset_id == "resto_fr"
    assert index.search("restaurant reviews positive negative", k=5, languages=["fr"])[0].dataset_id == "resto_fr"


def test_task_labels_can_be_passed_explicitly(index):
    hits = index.search("Label tweets.", k=3, labels=["favor", "against", "none"])
    assert hits[0].dataset_id == "tweets" and hits[0].config.startswith("stance_")


# -- filters and exclusions ------------------------------------------------------------------------
def test_filters(index):
    q = "reviews positive or negative"
    assert set(ids(index.search(q, filters=Filters.make(licenses="mit")))) <= {"acme/movie_reviews", "math_word_problems"}
    assert ids(index.search(q, filters=Filters.make(languages="French"))) == ["resto_fr"]
    assert ids(index.search(q, filters=Filters.make(languages=["fr"]))) == ["resto_fr"]
    only_tc = index.search(q, filters=Filters.make(task_categories="sentiment-classification"))
    assert set(ids(only_tc)) == {"acme/movie_reviews", "resto_fr", "tweets"}
    assert ids(index.search(q, filters=Filters(min_rows=10_000))) == ["acme/movie_reviews"]
    assert "acme/movie_reviews" not in ids(index.search(q, filters=Filters(max_rows=10_000)))
    assert ids(index.search(q, filters=Filters(has_rows=True))) == ["acme/movie_reviews"]
    assert index.search(q, filters=Filters.make(licenses="gpl-3.0")) == []


def test_exclude_by_any_name(index):
    q = "movie reviews positive or negative"
    for name in ("acme/movie_reviews", "movie_reviews", "MOVIE_REVIEWS"):
        assert "acme/movie_reviews" not in ids(index.search(q, filters=Filters.make(exclude=[name])))


def test_benchmark_guard_removes_copies_of_the_benchmark(index):
    q = "sentiment of movie reviews from the BIG-bench benchmark"
    assert {"bigbench", "tasksource/bigbench_lite"} & set(ids(index.search(q)))
    guarded = ids(index.search(q, filters=Filters(benchmark="bigbench")))
    assert guarded and not {"bigbench", "tasksource/bigbench_lite"} & set(guarded)
    assert ids(index.search(q, filters=Filters(benchmark="BIG-bench"))) == guarded
    entry = DatasetEntry("someone/BIG_Bench_hard")
    assert is_copy_of(entry, "bigbench") and not is_copy_of(DatasetEntry("glue"), "bigbench")


# -- persistence and incremental builds ------------------------------------------------------------
def test_saved_index_is_reloaded_when_inputs_are_unchanged(cache, encoder):
    catalog = FakeCatalog(make_entries())
    first = RetrievalIndex.load_or_build(catalog, encoder=encoder, samples=True)
    assert not first.stats.loaded and first.stats.embedded == first.stats.vectors > 0
    loads = catalog.loads
    assert loads == 1  # the one config with rows
    encoder.encoded.clear()
    again = RetrievalIndex.load_or_build(catalog, encoder=encoder, samples=True)
    assert again.stats.loaded and encoder.encoded == [] and catalog.loads == loads
    assert (cache / "index").is_dir() and again.fingerprint == first.fingerprint
    q = "stance of tweets: favor or against"
    assert [(h.dataset_id, h.config) for h in again.search(q)] == [(h.dataset_id, h.config) for h in first.search(q)]
    assert again.samples == first.samples and again.samples["acme/movie_reviews"]["default"]["labels"] == {}


def test_rebuild_is_incremental(cache, encoder):
    entries = make_entries()
    RetrievalIndex.load_or_build(FakeCatalog(entries), encoder=encoder, samples=True)
    entries[3] = DatasetEntry(**{**entries[3].__dict__, "summary": "Competition mathematics problems in LaTeX."})
    catalog = FakeCatalog(entries)
    encoder.encoded.clear()
    rebuilt = RetrievalIndex.load_or_build(catalog, encoder=encoder, samples=True)
    assert not rebuilt.stats.loaded
    assert rebuilt.stats.embedded == 1 and rebuilt.stats.reused == rebuilt.stats.vectors - 1
    assert "LaTeX" in encoder.encoded[0]
    assert catalog.loads == 0  # samples of the unchanged dataset with rows were reused
    assert rebuilt.search("competition mathematics in LaTeX", k=1)[0].dataset_id == "math_word_problems"


def test_rows_are_only_sampled_from_local_catalogs_by_default(cache, encoder, tmp_path):
    remote = FakeCatalog(make_entries())
    RetrievalIndex.load_or_build(remote, encoder=encoder)
    assert remote.loads == 0  # "memory://" is not a folder: no downloads while indexing
    local = FakeCatalog(make_entries())
    local.location = str(tmp_path)
    assert RetrievalIndex.load_or_build(local, encoder=encoder).samples and local.loads == 1


def test_changed_model_or_code_invalidates(cache, encoder, monkeypatch):
    catalog = FakeCatalog(make_entries())
    RetrievalIndex.load_or_build(catalog, encoder=encoder)
    other = HashEncoder()
    other.model_id = "test/another-model"
    assert not RetrievalIndex.load_or_build(catalog, encoder=other).stats.loaded
    assert other.encoded  # vectors of another model are never reused
    monkeypatch.setattr("retrieval_index.store.code_version", lambda: "edited")
    assert not RetrievalIndex.load_or_build(catalog, encoder=other).stats.loaded


def test_a_corrupt_index_is_rebuilt(cache, encoder):
    catalog = FakeCatalog(make_entries())
    first = RetrievalIndex.load_or_build(catalog, encoder=encoder)
    folder = RetrievalIndex.folder_for(catalog)
    (folder / "dense.npy").write_bytes(b"not numpy")
    again = RetrievalIndex.load_or_build(catalog, encoder=encoder)
    assert not again.stats.loaded and len(again) == len(first)


def test_samples_saved_in_the_old_string_format_are_read_again(cache, encoder, monkeypatch):
    import json

    catalog = FakeCatalog(make_entries())
    RetrievalIndex.load_or_build(catalog, encoder=encoder, samples=True)
    meta_file = RetrievalIndex.folder_for(catalog) / "meta.json"
    meta = json.loads(meta_file.read_text())
    meta["samples"] = {h: {c: "a | b" for c in s} for h, s in meta["samples"].items()}  # as an older version wrote them
    meta_file.write_text(json.dumps(meta))
    monkeypatch.setattr("retrieval_index.store.code_version", lambda: "edited")  # the upgrade changes the fingerprint
    loads = catalog.loads
    again = RetrievalIndex.load_or_build(catalog, encoder=encoder, samples=True)
    assert not again.stats.loaded and catalog.loads == loads + 1
    assert again.samples["acme/movie_reviews"]["default"]["labels"] == {}


# -- rerank by votes -----------------------------------------------------------------------------
def test_rerank_counts_votes_and_accepts_none(index):
    hits = index.search("reviews positive or negative", k=5)
    seen = []

    def voter(answers):
        it = iter(answers)

        def vote(query, candidates):
            seen.append([h.dataset_id for h in candidates])
            a = next(it)
            if isinstance(a, Exception):
                raise a
            return a
        return vote

    second = hits[1].dataset_id
    r = rerank("q", hits, voter([second, second, "movie_reviews", "made_up/dataset", second]))
    assert r.chosen.dataset_id == second and r.hits[0].dataset_id == second
    assert r.hits[1].dataset_id == "acme/movie_reviews" and len(r.hits) == len(hits)
    assert r.votes["none"] == 1 and sum(r.votes.values()) == 5
    assert len(seen) == 5 and any(s != seen[0] for s in seen)  # candidate order is shuffled per vote

    r = rerank("q", hits, voter(["none", "none fits", None, hits[0].dataset_id, LLMError("bad json")]))
    assert r.chosen is None and r.votes["none"] == 4
    assert r.hits[0].dataset_id == hits[0].dataset_id
    r = rerank("q", hits, voter([second, second, None, "", "movie_reviews"]))
    assert r.chosen is None and r.hits[0].dataset_id == second  # a tie with "none fits" chooses nothing
    r = rerank("q", hits, voter([f"{hits[0].dataset_id} [{hits[0].config}]"] * 3), votes=3)
    assert r.chosen is hits[0] and sum(r.votes.values()) == 3


# -- Hub listing seam ------------------------------------------------------------------------------
class FakeHfApi:
    def __init__(self, infos):
        self.infos = infos
        self.read = 0
        self.calls = []

    def list_datasets(self, **kw):
        self.calls.append(kw)
        for info in sorted(self.infos, key=lambda i: i.last_modified, reverse=True):
            self.read += 1
            yield info


def _info(repo, day, **card):
    """What `list_datasets(full=True)` yields: huggingface_hub's own DatasetInfo, built from API JSON."""
    from huggingface_hub.hf_api import DatasetInfo

    card.setdefault("task_categories", ["text-classification"])
    card.setdefault("dataset_info", {"features": [{"name": "text", "dtype": "string"},
                                                  {"name": "label", "dtype": {"class_label": {"names": {"0": "neg", "1": "pos"}}}}],
                                     "splits": [{"name": "train", "num_examples": 10}]})
    return DatasetInfo(id=repo, lastModified=f"2024-01-{day:02d}T00:00:00.000Z", cardData=card,
                       tags=["language:en", "license:mit"], description=f"{repo} card text", siblings=None)


def test_hub_listing_builds_entries_and_refreshes_incrementally(cache):
    api = FakeHfApi([_info("a/one", 1), _info("b/two", 2, pretty_name="Two")])
    listing = HubListing(cache / "hub.json", api=api)
    stats = listing.refresh()
    assert stats.full and stats.added == 2 and api.calls[0]["full"] is True and api.calls[0]["sort"] == "last_modified"
    two = listing.entries["b/two"]
    assert two.pretty_name == "Two" and two.languages == ("en",) and two.licenses == ("mit",)
    assert two.configs[0].features[1].labels == ("neg", "pos") and two.configs[0].splits == {"train": 10}

    api.infos = [_info("a/one", 1), _info("b/two", 5, pretty_name="Two v2"), _info("c/three", 4)]
    api.read = 0
    listing = HubListing(cache / "hub.json", api=api)  # state persisted across runs
    stats = listing.refresh()
    assert not stats.full and (stats.added, stats.updated) == (1, 1)
    assert api.read == 3  # stopped at the first unchanged dataset
    assert listing.entries["b/two"].pretty_name == "Two v2" and len(listing.entries) == 3

    catalog = listing.catalog()
    assert catalog.entry("three").id == "c/three" and len(catalog.fingerprint()) == 16
    index = RetrievalIndex.load_or_build(catalog, encoder=HashEncoder(), samples=False)
    assert index.search("three", k=1)[0].dataset_id == "c/three"


def test_hub_listing_offline(cache):
    class Offline:
        def list_datasets(self, **kw):
            raise ConnectionError("no route to host")

    with pytest.raises(OfflineError, match="--catalog"):
        HubListing(cache / "hub.json", api=Offline()).refresh()


# -- building blocks ---------------------------------------------------------------------------------
def test_text_and_languages():
    assert stem("classification") == stem("classify") and stem("reviews") == stem("review")
    assert stem("acceptability") == stem("acceptable") and stem("summarization") == stem("summarize")
    assert tokenize("pos_tags CoarseLabel sentence1") == ["pos", "tag", "coars", "label", "sentenc", "1"]
    assert query_languages("Translate French sentences into English.") == ("French", "English")
    assert query_languages("Classify tweets.") == ("English",) and query_languages("x", default="de") == ("German",)
    assert config_languages("fr-en") == ["French", "English"] and config_languages("plain_text") == []


def test_label_match_needs_two_words():
    m = LabelMatch([["ABBR", "DESC", "HUM", "LOC", "NUM"], ["negative", "positive"], ["DET", "NOUN"], ["yes", "no"]])
    s = m.scores("What type of answer: person, location, number or description?")
    assert s[0] > 0 and s[1] == s[2] == s[3] == 0
    assert m.scores("determine the noun")[2] > 0 and m.scores("determine it")[2] == 0
    assert m.scores("Answer yes or no")[3] > 0 and m.scores("say yes")[3] == 0
    assert m.scores("x", extra_labels=["yes", "no"])[3] > 0


def test_categorical_columns():
    cols = {"decision": ["yes", "no", "maybe"] * 10, "text": [f"row {i}" for i in range(30)], "n": list(range(30))}
    assert categorical_columns(cols) == {"decision": ["maybe", "no", "yes"]}


def test_fusion_helpers():
    ids_, ranks = top(np.array([0.0, 3.0, 1.0, 3.0, 2.0]), depth=10)
    assert list(ids_) == [1, 3, 4, 2] and list(ranks) == [1, 1, 3, 4]
    ids_, _ = top(np.array([5.0, 1.0, 1.0, 1.0]), depth=2)
    assert list(ids_) == [0]  # a tie straddling the cut is left out whole
    cand, fused = rrf([(np.array([1, 2]), np.array([1.0, 2.0]), 1.0), (np.array([2]), np.array([1.0]), 0.5)], k=10)
    assert list(cand) == [1, 2] and fused[1] > fused[0]
    order, scores = demote_repeats(np.array([0.9, 0.8, 0.7]), np.array([7, 7, 8]), 0.5)
    assert list(order) == [0, 2, 1] and scores[-1] == pytest.approx(0.4)


def test_metrics():
    entries = [DatasetEntry("x/a"), DatasetEntry("b", aliases=("bee",))]
    assert first_relevant_rank(entries, ["bee"]) == 2 and first_relevant_rank(entries, ["z"]) is None
    s = score_ranks([1, 2, None, 11])
    assert s.mrr10 == pytest.approx(1.5 / 4) and s.hit1 == 0.25 and s.hit5 == 0.5 and s.hit10 == 0.5


def test_weights_are_the_tuned_defaults():
    w = Weights()
    assert w.lexical > 0 and w.task > 0 and w.k > 0 and 0 < w.repeat <= 1


# -- the search's fast paths -----------------------------------------------------------------------
def test_group_max_is_the_best_document_of_each_group(index):
    rng = np.random.default_rng(0)
    for density in (0.0, 0.05, 0.5, 1.0):
        scores = (rng.random(len(index)) * (rng.random(len(index)) < density)).astype(np.float32)
        assert np.array_equal(index._group_max(scores), np.maximum.reduceat(scores, index.group_start))


def test_tag_match_scores_each_entry_by_its_best_tag_near_the_top():
    entries = [DatasetEntry(f"d{i}", task_categories=cats) for i, cats in enumerate(
        [("text-classification",), ("text-classification", "question-answering"), (), ("summarization",),
         ("question-answering", "summarization")])]
    texts = list(dict.fromkeys(t for e in entries for t in tag_texts(e)))
    row_of = {t: 10 + 2 * i for i, t in enumerate(texts)}  # rows in a bigger matrix
    match = TagMatch(entries, row_of)
    rng = np.random.default_rng(1)
    for margin in (0.0, 0.05, 0.3, 2.0):
        for _ in range(20):
            sims = rng.uniform(-0.5, 1, 20).astype(np.float32)
            near = {t: sims[r] for t, r in row_of.items() if sims[r] >= max(sims[list(row_of.values())]) - margin}
            want = [max([near[t] for t in tag_texts(e) if t in near] + [0.0]) for e in entries]
            assert match.scores(sims, margin).tolist() == pytest.approx(want)


def test_query_vectors_are_cached_read_only_and_evicted_oldest_first(monkeypatch):
    enc = Encoder(query_cache=2)
    calls = []

    def fake(query):
        calls.append(query)
        return np.full(384, len(calls), dtype=np.float32)

    monkeypatch.setattr(enc, "encode_query_uncached", fake)
    a = enc.encode_query("a")
    assert enc.encode_query("a") is a and calls == ["a"] and not a.flags.writeable
    enc.encode_query("b"), enc.encode_query("a"), enc.encode_query("c")  # "b" is now the oldest
    enc.encode_query("a")
    enc.encode_query("b")
    assert calls == ["a", "b", "c", "b"]
    enc.clear_query_cache()
    enc.encode_query("a")
    assert calls[-1] == "a"


@pytest.mark.parametrize("kind, tolerance", [("int8", 4e-3), ("bfloat16", 5e-3), ("float32", 1e-6), (None, 4e-3)])
def test_cosine_scores_match_float32(kind, tolerance):
    if kind == "int8" and not ScoringMatrix(np.eye(2, 384, dtype=np.float32)).kind == "int8":
        pytest.skip("no AMX / AVX512-BF16 here: the int8 product is not used")
    rng = np.random.default_rng(2)
    vectors = rng.normal(size=(1000, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors[7] = 0  # a text that embeds to nothing
    q = vectors[3].copy()
    q.flags.writeable = False  # cached query vectors are read-only
    m = ScoringMatrix(vectors, kind)
    got = cosine_scores(m, q)
    assert got.dtype == np.float32 and np.abs(got - vectors @ q).max() < tolerance and int(np.argmax(got)) == 3
    halves = np.full(1000, np.nan, dtype=np.float32)
    m.score(q, halves, 0, 400)
    m.score(q, halves, 400, 1000)  # what the two threads of a search do
    assert np.array_equal(halves, got)


@pytest.mark.slow
@pytest.mark.parametrize("dtype, tolerance", [("float32", 1e-5), ("bfloat16", 1e-4)])
def test_query_fast_path_gives_sentence_transformers_vectors(dtype, tolerance):
    """QueryModel (plain torch, one text) against sentence-transformers' encode of the same model:
    float32 to within rounding, bfloat16 products (the default on CPUs with AMX) to 1 - 1e-4 cosine."""
    enc = Encoder(query_dtype=dtype)
    texts = ["Classify the sentiment of English movie reviews as positive or negative.", "",
             "Réponses aux questions en français: qui, quoi, où ?", "stance " * 300]  # the last is truncated
    want = enc.model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    got = np.stack([enc.encode_query_uncached(t) for t in texts])
    assert isinstance(enc._query_model, QueryModel)  # the fast path ran, not the fallback
    assert got.dtype == np.float32 and np.allclose(np.linalg.norm(got, axis=1), 1, atol=1e-5)
    assert (1 - (got * want).sum(axis=1)).max() < tolerance
    tok = enc.model[0].tokenizer
    for t in texts:
        assert enc._query_model.ids(t) == tok(t, truncation=True, max_length=enc.max_seq_length)["input_ids"]
    assert len(enc._query_model.ids(texts[-1])) == enc.max_seq_length
    if dtype == "float32":
        enc._query_model = False  # a model QueryModel doesn't know: sentence-transformers' own forward pass
        assert (1 - (np.stack([enc.encode_query_uncached(t) for t in texts]) * want).sum(axis=1)).max() < 1e-5
