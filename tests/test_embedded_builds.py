"""Builds with the real embedded model (Qwen2.5-Coder-1.5B) on ../shared/hub.

For six target task kinds, every kept plan's mapped rows must agree with the source's gold answer
(>= 98%, checked through provenance with gold functions written here, independently of the plan).
Also: the README example through the CLI, and a second identical build served wholly from the cache.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import datasets
import pytest
from click.testing import CliRunner

pytestmark = [pytest.mark.slow, pytest.mark.embedded]

NER = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
GOLD = {
    "cornell-movie-review-data/rotten_tomatoes": lambda s, f: ["negative", "positive"][s["label"]],
    "nyu-mll/glue": lambda s, f: f["label"].names[s["label"]],
    "cardiffnlp/tweet_eval": lambda s, f: f["label"].names[s["label"]],
    "openai/gsm8k": lambda s, f: s["answer"].split("####")[-1].strip().replace(",", ""),
    "deepmind/aqua_rat": lambda s, f: s["correct"],
    "cais/mmlu": lambda s, f: "ABCD"[s["answer"]],
    "ybisk/piqa": lambda s, f: "AB"[s["label"]],
    "aps/super_glue": lambda s, f: "AB"[s["label"]],  # copa: choice1 / choice2
    "rajpurkar/squad": lambda s, f: s["answers"]["text"][0],
    "google/xquad": lambda s, f: s["answers"]["text"][0],
    "fancyzhx/ag_news": lambda s, f: f["label"].names[s["label"]],
    "eriktks/conll2003": lambda s, f: " ".join(NER[i] for i in s["ner_tags"]),
}
TASKS = {
    "sentiment": ("Classify the sentiment of a movie review as positive or negative", lambda o: o in ("positive", "negative")),
    "math": ("Solve grade-school math word problems; the answer is a number", lambda o: o.replace(".", "").lstrip("-").isdigit()),
    "multiple_choice": ("Answer multiple-choice science and math questions with the letter of the correct option", lambda o: o in "ABCDE"),
    "extractive_qa": ("Answer a question about a passage by extracting the answer span from the passage", None),
    "news_topic": ("Classify news articles by topic: World, Sports, Business or Sci/Tech", lambda o: o in ("World", "Sports", "Business", "Sci/Tech")),
    "ner": ("Tag each token of a sentence with its named-entity tag (PER, ORG, LOC, MISC)", None),
}


@pytest.fixture(scope="session")
def persistent_dir():
    from huggingface_hub import constants

    d = Path(os.environ.get("DATATUNE_TEST_CACHE", Path(constants.HF_HOME).expanduser() / "assets" / "datatune" / "test"))
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture(scope="session")
def real_llm(tmp_path_factory):
    from datatune.llm import ResponseCache, open_llm
    from datatune.settings import Settings

    llm = open_llm(Settings(use_cache=False))
    llm.cache = ResponseCache(tmp_path_factory.mktemp("llm-cache"))
    yield llm
    from datatune.llm.embedded import stop_all

    stop_all()


@pytest.fixture(scope="session")
def retriever(catalog, persistent_dir):
    from datatune.retrieve import make_retriever

    return make_retriever(catalog, index_root=persistent_dir / "index")


def gold_agreement(catalog, rows) -> tuple[int, int]:
    loaded, agree = {}, 0
    for r in rows:
        key = (r.source_dataset, r.source_config, r.source_split)
        if key not in loaded:
            loaded[key] = catalog.load(*key)
        ds = loaded[key]
        assert r.source_dataset in GOLD, f"no gold function for {r.source_dataset}"
        agree += GOLD[r.source_dataset](ds[r.source_row], ds.features) == r.output
    return agree, len(rows)


@pytest.mark.parametrize("task", list(TASKS))
def test_target_task_builds_agree_with_gold(task, catalog, real_llm, retriever, tmp_path):
    from datatune.curate import curate
    from datatune.pipeline import BuildOptions, build

    description, valid = TASKS[task]
    res = build(description, catalog=catalog, llm=real_llm, retriever=retriever, curate_fn=curate,
                options=BuildOptions(out=tmp_path / task, size=200, max_candidates=3, synthetic=False))
    rows = [r for rs in res.rows.values() for r in rs]
    mapped = [r for r in rows if r.method == "mapped"]
    assert len(rows) == 200 and len(mapped) == 200, Counter(r.method for r in rows)
    agree, n = gold_agreement(catalog, mapped)
    assert agree / n >= 0.98, (task, agree, n, [p.key for p in res.plans if p.keep])
    if valid:
        assert all(valid(r.output) for r in rows)
    if task == "extractive_qa":
        assert all(r.output in r.input for r in rows)


def test_readme_example_through_the_cli(hub_path, persistent_dir, tmp_path, monkeypatch):
    from datatune.cli import main
    from datatune.llm.embedded import stop_all

    monkeypatch.setenv("DATATUNE_CACHE", str(persistent_dir))  # the index built once for the session
    out = tmp_path / "sentiment"
    args = ["build", "Classify the sentiment of a movie review as positive or negative", "--catalog", str(hub_path),
            "--size", "500", "--out", str(out), "-q", "--no-embed"]
    result = CliRunner().invoke(main, args + ["--no-cache"])
    assert result.exit_code == 0, result.output
    train = datasets.load_dataset(str(out))["train"]
    assert len(train) == 500 and set(train["output"]) <= {"positive", "negative"}
    assert len(set(train["source_dataset"])) >= 2
    from datatune.catalog.local import LocalCatalog
    from datatune.records import Row

    cat = LocalCatalog(hub_path)
    rows = [Row(**r) for r in train.to_list()]
    agree, n = gold_agreement(cat, [r for r in rows if r.method == "mapped"])
    assert agree == n  # 100% of mapped rows
    # a second identical build is served wholly from the cache: zero LLM calls
    first = json.loads((out / "manifest.json").read_text())["llm"]["total"]
    out2 = tmp_path / "again"
    assert CliRunner().invoke(main, args[:-4] + ["--out", str(out2), "-q", "--no-embed"]).exit_code == 0  # fills the cache
    out3 = tmp_path / "third"
    assert CliRunner().invoke(main, args[:-4] + ["--out", str(out3), "-q", "--no-embed"]).exit_code == 0
    third = json.loads((out3 / "manifest.json").read_text())["llm"]["total"]
    assert third["calls"] == 0 and third["cache_hits"] >= first["calls"]
    assert datasets.load_dataset(str(out3))["train"].to_list() == datasets.load_dataset(str(out2))["train"].to_list()
    stop_all()
