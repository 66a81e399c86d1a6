"""The whole build path with a fake LLM and a fixed retriever, on real rows from ../shared/hub."""

from __future__ import annotations

import itertools
import json
from collections import Counter

import datasets
import pytest

from datatune.errors import RunStateError
from datatune.pipeline import BuildOptions, allocate, build
from datatune.planner import Candidate
from datatune.records import Row

from .conftest import fake_rows, last_user, schema_of

SENTIMENT = "Classify the sentiment of a movie review as positive or negative"


def smart_fake(labels=("positive", "negative"), kind="label"):
    """Answers by schema: the task spec, a column choice (text -> label), attributes, synthetic inputs."""
    counter = itertools.count()

    def handler(body):
        schema = schema_of(body) or {}
        props = schema.get("properties", {})
        if "output_kind" in props:
            return json.dumps({"output_kind": kind, "labels": list(labels), "language": "en", "input_format": "a review", "output_format": "a label"})
        if "output_column" in props:
            cols = props["output_column"]["enum"]
            text = next(c for c in ("text", "sentence", "question") if c in cols)
            label = next((c for c in ("label", "answer") if c in cols), cols[-1])
            return json.dumps({"input_columns": [text], "output_column": label})
        if "kind" in props:  # semantic acceptance: which kind of text an input is
            return json.dumps({"kind": "review or opinion"})
        if "attributes" in props:
            return json.dumps({"attributes": ["short", "long", "sarcastic"]})
        if "rows" in props:
            return fake_rows(body, lambda _: {"input": f"synthetic review number {next(counter)} " + last_user(body)[-40:]})
        return "ok"

    return handler


def retriever_for(catalog, keys):
    def retrieve(query, k, exclude, **kw):
        out = []
        for key in keys:
            ds, cfg = key.split(":")
            e = catalog.entry(ds)
            out.append(Candidate(e, e.config(cfg)))
        return out

    return retrieve


def run(catalog, llm, tmp_path, keys, **opts):
    options = BuildOptions(out=tmp_path / "out", **{"size": 500, **opts})
    return build(SENTIMENT, curate_fn=None, topup_fn=None, embedder=None, catalog=catalog, llm=llm, retriever=retriever_for(catalog, keys), options=options)


KEYS = ["imdb:plain_text", "cornell-movie-review-data/rotten_tomatoes:default", "fancyzhx/ag_news:default", "nyu-mll/glue:sst2"]


def test_build_sentiment_end_to_end(catalog, fake_llm, tmp_path):
    llm, ep = fake_llm(smart_fake())
    run(catalog, llm, tmp_path, KEYS)
    ds = datasets.load_dataset(str(tmp_path / "out"))
    train = ds["train"]
    assert len(train) == 500
    assert set(train["output"]) == {"positive", "negative"}
    # rotten_tomatoes' train split fills the set: no validation rows of another source (GLUE's dev set) are taken
    assert set(train["source_split"]) == {"train"}
    assert set(train.column_names) == {"input", "output", "source_dataset", "source_config", "source_split", "source_row", "method", "check"}
    # every mapped row agrees with its source's gold label
    srcs = {}
    for r in train:
        assert r["method"] == "mapped"
        key = (r["source_dataset"], r["source_config"], r["source_split"])
        srcs.setdefault(key, catalog.load(*key))
        src = srcs[key][r["source_row"]]
        names = srcs[key].features["label"].names
        assert {"neg": "negative", "pos": "positive"}.get(names[src["label"]], names[src["label"]]) == r["output"]
    # the per-source cap applies among sources of the same split tier: here train has one source
    # card-only and wrong candidates are recorded with reasons
    plans = json.loads((tmp_path / "out" / "plans.json").read_text())["plans"]
    reasons = {p["dataset"]: p for p in plans}
    assert not reasons["imdb"]["keep"] and "card only" in reasons["imdb"]["reason"]
    assert not reasons["fancyzhx/ag_news"]["keep"]
    card = (tmp_path / "out" / "README.md").read_text()
    assert "dataset_info" in card and "rotten_tomatoes" in card and "Dropped rows" in card
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["llm"]["total"]["calls"] == len(ep.requests)


def test_same_seed_same_rows_and_cached_rerun(catalog, fake_llm, tmp_path):
    from datatune.llm import ResponseCache

    cache = ResponseCache(tmp_path / "llmcache")
    llm, ep = fake_llm(smart_fake(), cache=cache)
    run(catalog, llm, tmp_path / "a", KEYS)
    first = datasets.load_dataset(str(tmp_path / "a" / "out"))["train"].to_list()
    llm2, ep2 = fake_llm(smart_fake(), cache=ResponseCache(tmp_path / "llmcache"))
    run(catalog, llm2, tmp_path / "b", KEYS)
    second = datasets.load_dataset(str(tmp_path / "b" / "out"))["train"].to_list()
    assert first == second
    assert llm2.usage.calls == 0 and ep2.requests == []


def test_out_holding_another_run_is_refused(catalog, fake_llm, tmp_path):
    llm, _ = fake_llm(smart_fake())
    run(catalog, llm, tmp_path, KEYS, size=50)
    with pytest.raises(RunStateError, match="--overwrite"):
        run(catalog, llm, tmp_path, KEYS, size=60)
    run(catalog, llm, tmp_path, KEYS, size=60, overwrite=True)
    assert len(datasets.load_dataset(str(tmp_path / "out"))["train"]) == 60


def test_allocate_balances_labels_and_caps_sources():
    rows = [Row(f"a{i}", "positive" if i % 4 else "negative", "A", "c", "train", i) for i in range(400)]
    rows += [Row(f"b{i}", "negative", "B", "c", "train", i) for i in range(400)]
    opts = BuildOptions(out=None, size=200)
    out = allocate(rows, ["A:c", "B:c"], opts, ["positive", "negative"])
    c = Counter(r.output for r in out)
    assert c == {"positive": 100, "negative": 100}
    assert Counter(r.source_dataset for r in out)["A"] <= 150


def test_dry_run_writes_nothing_and_estimates(catalog, fake_llm, tmp_path):
    llm, _ = fake_llm(smart_fake())
    res = run(catalog, llm, tmp_path, KEYS, dry_run=True)
    assert res.dry_run and not (tmp_path / "out").exists()
    assert res.estimate["rows_total"] == 500
    assert set(res.estimate["rows_per_source"]) == {"cornell-movie-review-data/rotten_tomatoes:default", "nyu-mll/glue:sst2"}
    assert res.estimate["llm_calls_execute"] == 0  # compiled plans: no per-row calls


def test_saved_plans_reexecute_identically_without_planning(catalog, fake_llm, tmp_path):
    llm, _ = fake_llm(smart_fake())
    run(catalog, llm, tmp_path / "a", KEYS)
    llm2, ep2 = fake_llm(smart_fake())
    options = BuildOptions(out=tmp_path / "b", size=500, plans_file=tmp_path / "a" / "out" / "plans.json")
    build(SENTIMENT, curate_fn=None, topup_fn=None, embedder=None, catalog=catalog, llm=llm2, retriever=lambda *a, **k: pytest.fail("no retrieval with saved plans"), options=options)
    assert ep2.requests == []
    a = datasets.load_dataset(str(tmp_path / "a" / "out"))["train"].to_list()
    b = datasets.load_dataset(str(tmp_path / "b"))["train"].to_list()
    assert a == b


def test_dataset_failing_to_load_is_skipped(catalog, fake_llm, tmp_path):
    from datatune.errors import DatasetLoadError

    class Flaky:
        """The catalog, except that glue fails once planning is over (as a file going missing mid-run)."""

        location = catalog.location
        planning = True

        def entry(self, name):
            return catalog.entry(name)

        def load(self, ds, cfg, split):
            if ds == "nyu-mll/glue" and not self.planning:
                raise DatasetLoadError("could not load nyu-mll/glue [sst2/validation]: file vanished")
            return catalog.load(ds, cfg, split)

    flaky = Flaky()
    llm, _ = fake_llm(smart_fake())
    import datatune.pipeline as pl

    real_execute_all = pl.execute_sources

    def execute_all(*a, **k):
        flaky.planning = False
        return real_execute_all(*a, **k)

    pl.execute_sources = execute_all
    try:
        res = build(SENTIMENT, curate_fn=None, topup_fn=None, embedder=None, catalog=flaky, llm=llm, retriever=retriever_for(catalog, KEYS),
                    options=BuildOptions(out=tmp_path / "out", size=300, synthetic=False))
    finally:
        pl.execute_sources = real_execute_all
    assert res.drops["source_failed_to_load"] == 1
    train = datasets.load_dataset(str(tmp_path / "out"))["train"]
    assert set(train["source_dataset"]) == {"cornell-movie-review-data/rotten_tomatoes"}
    assert len(train) == 300


def test_validation_and_test_splits_only_fill_what_train_cannot(catalog, fake_llm, tmp_path):
    llm, _ = fake_llm(smart_fake())
    res = run(catalog, llm, tmp_path, KEYS, size=9000)
    rows = [r for rs in res.rows.values() for r in rs]
    splits = Counter(r.source_split for r in rows if r.method == "mapped")
    assert splits["train"] >= 8000  # every usable train row of rotten_tomatoes first
    assert splits["validation"] + splits["test"] > 0  # then the others, to fill 9,000
    card = (tmp_path / "out" / "README.md").read_text()
    assert "| split |" in card.replace("split | licence", "split |") and "validation" in card


def test_splits_flag_restricts_sources(catalog, fake_llm, tmp_path):
    llm, _ = fake_llm(smart_fake())
    res = run(catalog, llm, tmp_path, ["nyu-mll/glue:sst2", "cornell-movie-review-data/rotten_tomatoes:default"], size=300, splits=["train"])
    rows = [r for rs in res.rows.values() for r in rs]
    assert {r.source_split for r in rows if r.method == "mapped"} == {"train"}
    sst2 = next(p for p in res.plans if p.dataset == "nyu-mll/glue")
    assert not sst2.keep and "--splits" in sst2.reason


def test_a_spec_read_from_an_invalid_reply_is_not_kept(catalog, fake_llm, tmp_path):
    """Issue 15: after the endpoint is fixed, the same command must ask for the spec again."""
    good = smart_fake()

    def broken(body):
        if "output_kind" in json.dumps(body.get("response_format") or {}):
            return "not json"
        return good(body)

    llm, _ = fake_llm(broken)
    run(catalog, llm, tmp_path, KEYS[1:2], size=50)
    assert not (tmp_path / "out" / ".datatune" / "spec.json").exists()
    llm2, ep2 = fake_llm(good)
    run(catalog, llm2, tmp_path, KEYS[1:2], size=50, resume=True)
    assert any("output_kind" in json.dumps(b.get("response_format") or {}) for b in ep2.requests)
    assert (tmp_path / "out" / ".datatune" / "spec.json").exists()


def test_a_sibling_config_takes_its_own_splits():
    from datatune.core.types import ConfigInfo, DatasetEntry, Feature
    from datatune.plan import Plan
    from datatune.stages.plans import sibling_plans

    feats = (Feature("question", "string"), Feature("answer", "string"))
    main, socratic = ConfigInfo("main", feats, {"train": 7473, "test": 1319}), ConfigInfo("socratic", feats, {"test": 1319})
    e = DatasetEntry(id="openai/gsm8k", configs=(main, socratic), has_rows=True)
    plan = Plan(dataset=e.id, config="socratic", splits=["test"], keep=True, est_rows=1319)
    (sib,) = sibling_plans(plan, Candidate(e, socratic, siblings=("main",)))
    assert sib.config == "main" and sib.splits == ["train", "test"] and sib.est_rows_not_test == 7473 and sib.same_plan_as == "socratic"
    assert sibling_plans(plan, Candidate(e, socratic, siblings=("main",)), ["validation"]) == []


def test_no_fitting_source_names_the_nearest_reasons(catalog, fake_llm, tmp_path):
    """Issue 15: 'no candidate fits' now says why the nearest candidates were rejected."""
    llm, _ = fake_llm(smart_fake())
    with pytest.raises(Exception) as e:
        run(catalog, llm, tmp_path, ["fancyzhx/ag_news:default", "imdb:plain_text"], size=50, synthetic=False)
    msg = str(e.value)
    assert "fancyzhx/ag_news:default: its labels (World, Sports, Business, Sci/Tech) don't match" in msg and "\n" not in msg
