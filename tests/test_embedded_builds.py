"""Builds with the real embedded model (Qwen2.5-Coder-1.5B) on ../shared/hub.

For six target tasks (one a Super-NaturalInstructions definition whose label words differ from the
source's) and the README example (sentiment, through the CLI), every mapped row must agree with its source row's gold answer (>= 98%, read from the
source row by tests/gold.py, independently of the plan and of which datasets the catalog holds).
The README example's second, identical build is served wholly from the cache.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import datasets
import pytest
from click.testing import CliRunner

from benchmarks.gold import gold_agreement

pytestmark = [pytest.mark.slow, pytest.mark.embedded]

# which source label names mean each task label (by meaning, for the tasks below; never per dataset)
SENTIMENT = {"positive": {"positive", "pos"}, "negative": {"negative", "neg"}}
TOPICS = {"World": {"world"}, "Sports": {"sports"}, "Business": {"business"}, "Sci/Tech": {"sci tech", "science", "technology"}}
IRONY = {"ironic": {"irony"}, "not": {"non irony"}}
TASKS = {  # the sentiment task is the README example's, built below through the CLI (500 rows, 100% gold)
    "math": ("Solve grade-school math word problems; the answer is a number", [], None),
    "multiple_choice": ("Answer multiple-choice science and math questions with the letter of the correct option", [], None),
    "extractive_qa": ("Answer a question about a passage by copying the shortest span of the passage that answers it.", [], None),
    "news_topic": ("Classify a news article into one of the topics World, Sports, Business or Sci/Tech.", [], TOPICS),
    "ner": ("Tag each token of a sentence with its named-entity tag (PER, ORG, LOC, MISC)", [], None),
    # a Super-NaturalInstructions definition whose label words differ from the source's (irony / non_irony)
    "irony": ("In this task, you are given a tweet. You must judge whether the tweet is ironic or not. We define two type of "
              "irony for this task ('polarity', 'situational'). Situational irony happens when a situation fails to meet some "
              "expectations. polarity irony happens when irony is achieved by inverting the intended sentence. Label the "
              "instances as 'ironic' or 'not' based on your judgment. Note that URLs in the text have been replaced with [Link].",
              [("I just love when my phone dies at 5% battery. Great design. #not", "ironic"),
               ("Going to the gym with my sister tonight", "not")], IRONY),
}


@pytest.fixture(scope="session")
def persistent_dir():
    from huggingface_hub import constants

    d = Path(os.environ.get("DATATUNE_TEST_CACHE", Path(constants.HF_HOME).expanduser() / "assets" / "datatune" / "test"))
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture(scope="session")
def real_llm(tmp_path_factory):
    from datatune.core.settings import Settings
    from datatune.llm import ResponseCache, open_llm

    llm = open_llm(Settings(use_cache=False))
    llm.cache = ResponseCache(tmp_path_factory.mktemp("llm-cache"))
    yield llm
    from datatune.llm.embedded import stop_all

    stop_all()


@pytest.fixture(scope="session")
def retriever(catalog, persistent_dir):
    from datatune.retrieve import make_retriever

    return make_retriever(catalog, index_root=persistent_dir / "index")


@pytest.mark.parametrize("task", list(TASKS))
def test_target_task_builds_agree_with_gold(task, catalog, real_llm, retriever, tmp_path):
    """Rows are judged, not sources: whichever datasets the catalog offers, every mapped row must
    agree with its source row's gold answer, use the task's label strings, and (for spans) be a span
    of the passage part of its input."""
    from datatune.curate import curate
    from datatune.pipeline import BuildOptions, build
    from datatune.task import Example

    description, examples, lexicon = TASKS[task]
    res = build(description, catalog=catalog, llm=real_llm, retriever=retriever, curate_fn=curate,
                options=BuildOptions(out=tmp_path / task, size=120, max_candidates=3, synthetic=False,
                                     examples=[Example(input=i, output=o) for i, o in examples]))
    rows = [r for rs in res.rows.values() for r in rs]
    mapped = [r for r in rows if r.method == "mapped"]
    spec = res.spec
    assert len(rows) == 120 and len(mapped) == 120, Counter(r.method for r in rows)
    agree, n = gold_agreement(catalog, mapped, spec.output_kind, lexicon=lexicon, lowercase=spec.lowercase_letters)
    assert agree / n >= 0.98, (task, agree, n, [p.key for p in res.plans if p.keep])
    if spec.output_kind == "label":
        assert {r.output for r in rows} <= set(spec.labels)
    if lexicon:
        assert set(spec.labels) == set(lexicon), spec.labels  # every label the definition names, spelled as written
    if task == "extractive_qa":
        assert spec.output_kind == "span"
        assert all(r.output in r.input for r in rows)
        assert sum(len(r.output) >= 2 for r in rows) >= 0.95 * len(rows)  # spans, not option letters (some answers are '5')
    if task == "math":
        assert spec.output_kind == "number"
        assert all(r.output.replace(".", "").lstrip("-").isdigit() for r in rows)
        # train first: gsm8k's test split (or any test split) is not used while train rows can fill the set
        assert {r.source_split for r in rows} == {"train"}


def test_readme_example_through_the_cli(hub_path, persistent_dir, tmp_path, monkeypatch):
    from datatune.cli import main

    # a fresh LLM response cache (every answer comes from the model), the index built once for the session
    cache = tmp_path / "cache"
    cache.mkdir()
    (persistent_dir / "index").mkdir(exist_ok=True)
    (cache / "index").symlink_to(persistent_dir / "index", target_is_directory=True)
    monkeypatch.setenv("DATATUNE_CACHE", str(cache))
    out = tmp_path / "sentiment"
    args = ["build", "Classify the sentiment of a movie review as positive or negative", "--catalog", str(hub_path),
            "--size", "500", "-q", "--no-embed"]
    result = CliRunner().invoke(main, args + ["--out", str(out)])
    assert result.exit_code == 0, result.output
    train = datasets.load_dataset(str(out))["train"]
    assert len(train) == 500 and set(train["output"]) <= {"positive", "negative"}
    from datatune.catalog.local import LocalCatalog
    from datatune.records import Row

    cat = LocalCatalog(hub_path)
    rows = [Row(**r) for r in train.to_list()]
    agree, n = gold_agreement(cat, [r for r in rows if r.method == "mapped"], "label", lexicon=SENTIMENT)
    assert agree == n  # 100% of mapped rows
    first = json.loads((out / "manifest.json").read_text())["llm"]["total"]
    assert first["calls"] > 0  # the model answered (a fresh cache: hits only for requests repeated within this build)
    # a second identical build is served wholly from the cache: zero LLM calls, the same rows
    again = tmp_path / "again"
    assert CliRunner().invoke(main, args + ["--out", str(again)]).exit_code == 0
    second = json.loads((again / "manifest.json").read_text())["llm"]["total"]
    assert second["calls"] == 0 and second["cache_hits"] >= first["calls"]
    assert datasets.load_dataset(str(again))["train"].to_list() == train.to_list()
