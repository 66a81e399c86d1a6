"""build() called with only its required arguments runs every stage with its real dependency:
the LLM from the environment, the catalog's retrieval index, curation, top-up and the MiniLM embedder."""

from __future__ import annotations

import json

import pytest

from datatune.pipeline import BuildOptions, build

from .fake_openai import FakeOpenAI


@pytest.fixture
def tiny_catalog(hub_path, tmp_path):
    root = tmp_path / "catalog"
    (root / "datasets").mkdir(parents=True)
    for name in ("cornell-movie-review-data__rotten_tomatoes", "fancyzhx__ag_news"):
        (root / "datasets" / name).symlink_to(hub_path / "datasets" / name)
    return root


def test_build_with_only_required_arguments_runs_every_stage(tiny_catalog, tmp_path, monkeypatch):
    from datatune.catalog import open_catalog

    with FakeOpenAI(delay=0.0) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.url)
        monkeypatch.setenv("OPENAI_API_KEY", "x")
        monkeypatch.setenv("DATATUNE_CACHE", str(tmp_path / "cache"))
        res = build("Classify the sentiment of a movie review as positive or negative", catalog=open_catalog(str(tiny_catalog)),
                    options=BuildOptions(out=tmp_path / "out", size=80))
        assert server.calls > 0, "the LLM came from the environment"
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert sum(manifest["rows"].values()) == 80
    assert "rotten_tomatoes" in " ".join(p.dataset for p in res.plans if p.keep), "retrieval found the source"
    assert "curate" in manifest["timings_s"], "curation ran"
    assert manifest["quality"].get("remote_clique"), ("the embedder was used (remote-clique)", sorted(manifest["quality"]), manifest["quality"].get("remote_clique"))
    kept = [p for p in res.plans if p.keep]
    # the relevance gate measured each kept source with the embedder (no examples: recorded, no bar applied)
    assert kept and all(p.checks.get("relevance_gate", {}).get("score") is not None for p in kept), [p.checks.get("relevance_gate") for p in kept]
