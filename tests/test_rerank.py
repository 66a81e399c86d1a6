"""The LLM rerank wired into retrieval: votes through the LLM layer, enum answers, reordered candidates."""

from __future__ import annotations

import json

import pytest

from datatune import retrieve
from datatune.retrieve import llm_voter, make_retriever

from .conftest import last_user, schema_of
from .test_retrieval import FakeCatalog, HashEncoder, make_entries


@pytest.fixture
def fake_index(monkeypatch, tmp_path):
    from retrieval_index.index import RetrievalIndex

    catalog = FakeCatalog(make_entries())
    index = RetrievalIndex.load_or_build(catalog, root=tmp_path, encoder=HashEncoder())
    monkeypatch.setattr(retrieve, "open_index", lambda *a, **k: index)
    return catalog, index


def test_voter_answers_from_an_enum_of_the_candidates(fake_index, fake_llm):
    _, index = fake_index
    hits = index.search("reviews positive or negative", k=4)
    asked = []

    def handler(body):
        enum = schema_of(body)["properties"]["dataset"]["enum"]
        asked.append((enum, last_user(body)))
        return json.dumps({"dataset": enum[-2]})

    llm, _ = fake_llm(handler)
    answer = llm_voter(llm)("sentiment of reviews", hits)
    enum, prompt = asked[0]
    assert enum == [f"{h.dataset_id}::{h.config}" for h in hits] + ["none"]
    assert answer == enum[-2] and "Columns: text, label (negative/positive)" in prompt
    assert llm.usage.stages["rerank"].calls == 1


def test_retriever_puts_the_voted_candidate_first(fake_index, fake_llm):
    catalog, index = fake_index
    fused = [c.key for c in make_retriever(catalog)("tweets stance or sentiment", 5, [])]
    target = fused[2].replace(":", "::", 1)

    def handler(body):
        assert target in schema_of(body)["properties"]["dataset"]["enum"]
        return json.dumps({"dataset": target})

    llm, ep = fake_llm(handler)
    reranked = [c.key for c in make_retriever(catalog, vote=llm_voter(llm), votes=3)("tweets stance or sentiment", 5, [])]
    assert reranked[0] == fused[2] and sorted(reranked) == sorted(fused)
    assert len(ep.requests) == 3  # one call per vote, candidates shuffled so the prompts differ


def test_none_votes_keep_the_fused_order(fake_index, fake_llm):
    catalog, _ = fake_index
    fused = [c.key for c in make_retriever(catalog)("movie reviews sentiment", 5, [])]
    llm, _ = fake_llm(lambda body: json.dumps({"dataset": "none"}))
    assert [c.key for c in make_retriever(catalog, vote=llm_voter(llm))("movie reviews sentiment", 5, [])] == fused


def test_invalid_votes_are_abstentions(fake_index, fake_llm):
    catalog, _ = fake_index
    fused = [c.key for c in make_retriever(catalog)("movie reviews sentiment", 5, [])]
    llm, _ = fake_llm(lambda body: json.dumps({"dataset": "made/up"}), max_reasks=0)
    assert [c.key for c in make_retriever(catalog, vote=llm_voter(llm))("movie reviews sentiment", 5, [])] == fused


@pytest.mark.slow
@pytest.mark.embedded
def test_real_model_votes_for_the_fitting_dataset(fake_index, embedded_llm):
    _, index = fake_index
    hits = index.search("grade school math word problems", k=4)
    assert "math_word_problems" in [h.dataset_id for h in hits]
    from retrieval_index.rerank import rerank

    r = rerank("Solve grade-school math word problems with a numeric answer", hits, llm_voter(embedded_llm), votes=3)
    assert r.chosen is not None and r.chosen.dataset_id == "math_word_problems", r.votes
