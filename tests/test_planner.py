"""Planner + compiled executor on real rows from ../shared/hub, with a fake LLM choosing columns.

The gold checks derive the expected output from the source row independently of the plan, and
require 100% agreement for every mapped row.
"""

from __future__ import annotations

import json

import pytest

from datatune.execute import execute_plan
from datatune.planner import Candidate, column_choice_model, plan_candidate
from datatune.task import TaskSpec

SENTIMENT = TaskSpec(description="Classify the sentiment of a movie review as positive or negative", output_kind="label", labels=["positive", "negative"])
MATH = TaskSpec(description="Solve grade-school math word problems with a numeric answer", output_kind="number")
MC = TaskSpec(description="Answer multiple-choice science questions with the letter of the correct option", output_kind="letter")
QA = TaskSpec(description="Answer a question by copying a span of the passage", output_kind="span")
TOPIC = TaskSpec(description="Classify news articles by topic", output_kind="label", labels=["World", "Sports", "Business", "Technology"])
NER = TaskSpec(description="Tag each token of a sentence with its named-entity tag", output_kind="tags")


def chooser(choice: dict):
    return lambda body: json.dumps(choice)


def plan_and_run(catalog, fake_llm, spec, dataset, config, inputs, output):
    llm, ep = fake_llm(chooser({"input_columns": inputs, "output_column": output}))
    e = catalog.entry(dataset)
    c = Candidate(e, e.config(config))
    split = sorted(c.config.splits, key=lambda s: ({"train": 0, "validation": 1}.get(s, 2), -c.config.splits[s]))[0]
    plan = plan_candidate(spec, c, catalog.load(dataset, config, split), llm=llm)
    result = execute_plan(plan, lambda s: catalog.load(dataset, config, s)) if plan.keep else None
    return plan, result, ep


def source_row(catalog, row):
    return catalog.load(row.source_dataset, row.source_config, row.source_split)[row.source_row]


def assert_gold(catalog, result, gold, n=400):
    rows = result.rows[:: max(1, len(result.rows) // n)]
    cache = {}
    bad = []
    for r in rows:
        key = (r.source_dataset, r.source_config, r.source_split)
        if key not in cache:
            cache[key] = catalog.load(*key)
        src = cache[key][r.source_row]
        if gold(src) != r.output:
            bad.append((r.output, gold(src)))
    assert not bad, bad[:5]
    assert len(rows) >= min(100, len(result.rows))


def test_schema_enums_real_columns():
    Choice = column_choice_model(["text", "label"])
    schema = Choice.model_json_schema()
    assert schema["properties"]["output_column"]["enum"] == ["text", "label"]
    with pytest.raises(Exception):
        Choice.model_validate({"input_columns": ["review"], "output_column": "label"})


def test_sentiment_rotten_tomatoes(catalog, fake_llm):
    plan, res, _ = plan_and_run(catalog, fake_llm, SENTIMENT, "cornell-movie-review-data/rotten_tomatoes", "default", ["text"], "label")
    assert plan.keep and plan.output.label_map == {"neg": "negative", "pos": "positive"}
    assert len(res.rows) == 10662
    assert_gold(catalog, res, lambda s: ["negative", "positive"][s["label"]])


def test_sentiment_tweet_eval_drops_neutral(catalog, fake_llm):
    plan, res, _ = plan_and_run(catalog, fake_llm, SENTIMENT, "cardiffnlp/tweet_eval", "sentiment", ["text"], "label")
    assert plan.keep and "neutral" not in plan.output.label_map
    assert res.drops["label_unmapped"] > 0
    assert_gold(catalog, res, lambda s: {0: "negative", 2: "positive"}[s["label"]])


@pytest.mark.parametrize("dataset,config", [("fancyzhx/ag_news", "default"), ("cardiffnlp/tweet_eval", "hate"), ("cardiffnlp/tweet_eval", "emotion")])
def test_sentiment_rejects_wrong_label_sets(catalog, fake_llm, dataset, config):
    plan, _, ep = plan_and_run(catalog, fake_llm, SENTIMENT, dataset, config, ["text"], "label")
    assert not plan.keep and "don't match" in plan.reason
    assert ep.requests == []  # code rejected it without asking the model


def test_sentiment_rejects_gsm8k(catalog, fake_llm):
    plan, _, _ = plan_and_run(catalog, fake_llm, SENTIMENT, "openai/gsm8k", "main", ["question"], "answer")
    assert not plan.keep


def test_math_gsm8k_marker(catalog, fake_llm):
    plan, res, _ = plan_and_run(catalog, fake_llm, MATH, "openai/gsm8k", "main", ["question"], "answer")
    assert plan.keep and plan.output.extract == "marker" and plan.output.marker == "####"
    assert_gold(catalog, res, lambda s: s["answer"].split("####")[-1].strip().replace(",", ""))


def test_math_rejects_sentiment_source(catalog, fake_llm):
    plan, _, _ = plan_and_run(catalog, fake_llm, MATH, "cornell-movie-review-data/rotten_tomatoes", "default", ["text"], "label")
    assert not plan.keep


def test_multiple_choice_mmlu(catalog, fake_llm):
    plan, res, _ = plan_and_run(catalog, fake_llm, MC, "cais/mmlu", "astronomy", ["question", "choices"], "answer")
    assert plan.keep and plan.choices.options == ["choices"]
    assert "\nA. " in res.rows[0].input and "\nD. " in res.rows[0].input
    assert_gold(catalog, res, lambda s: "ABCD"[s["answer"]])


def test_multiple_choice_aqua_drops_leaking_rationale(catalog, fake_llm):
    plan, res, _ = plan_and_run(catalog, fake_llm, MC, "deepmind/aqua_rat", "raw", ["question", "options", "rationale"], "correct")
    assert plan.keep and plan.checks.get("leaked_columns_dropped") == ["rationale"]
    assert "A)" not in res.rows[0].input.splitlines()[1]  # options re-lettered without their old prefix
    assert_gold(catalog, res, lambda s: s["correct"])


def test_multiple_choice_piqa_two_columns(catalog, fake_llm):
    plan, res, _ = plan_and_run(catalog, fake_llm, MC, "ybisk/piqa", "plain_text", ["goal", "sol1", "sol2"], "label")
    assert plan.keep and plan.choices.options == ["sol1", "sol2"]
    assert res.drops["no_label"] == 3084  # the unlabelled test split
    assert_gold(catalog, res, lambda s: "AB"[s["label"]])


def test_extractive_qa_squad(catalog, fake_llm):
    plan, res, _ = plan_and_run(catalog, fake_llm, QA, "rajpurkar/squad", "plain_text", ["context", "question"], "answers")
    assert plan.keep and plan.output.column == "answers.text[0]"
    assert all(r.output in r.input for r in res.rows)
    assert_gold(catalog, res, lambda s: s["answers"]["text"][0])


def test_topic_ag_news(catalog, fake_llm):
    plan, res, _ = plan_and_run(catalog, fake_llm, TOPIC, "fancyzhx/ag_news", "default", ["text"], "label")
    assert plan.keep and plan.output.label_map["Sci/Tech"] == "Technology"
    assert_gold(catalog, res, lambda s: TOPIC.labels[s["label"]])


def test_ner_conll(catalog, fake_llm):
    names = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
    plan, res, _ = plan_and_run(catalog, fake_llm, NER, "eriktks/conll2003", "conll2003", ["tokens"], "ner_tags")
    assert plan.keep
    assert_gold(catalog, res, lambda s: " ".join(names[i] for i in s["ner_tags"]))
    assert all(len(r.input.split()) == len(r.output.split()) for r in res.rows[:200])


def test_reask_with_errors_then_reject(catalog, fake_llm):
    # the model insists on the text column as the answer: validation fails, it is re-asked once, then rejected
    plan, _, ep = plan_and_run(catalog, fake_llm, MATH, "openai/gsm8k", "main", ["answer"], "question")
    assert not plan.keep
    assert len(ep.requests) == 2
    assert "failed on real rows" in ep.requests[1]["messages"][-1]["content"]


def test_ner_ignores_parallel_tag_columns_and_rejects_non_sequences(catalog, fake_llm):
    plan, res, _ = plan_and_run(catalog, fake_llm, NER, "eriktks/conll2003", "conll2003", ["tokens", "pos_tags", "chunk_tags"], "ner_tags")
    assert plan.keep and plan.input_columns == ["tokens"]
    assert all(len(r.input.split()) == len(r.output.split()) for r in res.rows[:200])
    plan, _, _ = plan_and_run(catalog, fake_llm, NER, "aps/super_glue", "rte", ["premise", "hypothesis"], "label")
    assert not plan.keep


def test_multiple_choice_numbered_option_columns_in_any_order(catalog, fake_llm):
    # the model lists choice2 before choice1 (and between the question columns): options still come out in order
    plan, res, _ = plan_and_run(catalog, fake_llm, MC, "aps/super_glue", "copa", ["premise", "choice2", "question", "choice1"], "label")
    assert plan.keep and plan.choices.options == ["choice1", "choice2"] and plan.input_columns == ["premise", "question"]
    assert_gold(catalog, res, lambda s: "AB"[s["label"]])
    plan, res, _ = plan_and_run(catalog, fake_llm, MC, "ybisk/piqa", "plain_text", ["goal", "sol2", "sol1"], "label")
    assert plan.choices.options == ["sol1", "sol2"]
    assert_gold(catalog, res, lambda s: "AB"[s["label"]])


def test_a_task_asking_for_wrong_answers_gets_a_wrong_option(catalog, fake_llm):
    from datatune.expand import expand_task

    spec = expand_task("You will be asked how to do a certain task. You should describe a physical process that does not lead to "
                       "the asked outcome, yet it is closely related to it.", [], None)
    assert spec.output_kind == "text" and spec.wrong_answer
    plan, result, _ = plan_and_run(catalog, fake_llm, spec, "ybisk/piqa", "plain_text", ["goal"], "label")
    assert plan.keep and plan.output.kind == "choice_text" and plan.output.wrong
    for r in result.rows[:200]:
        src = source_row(catalog, r)
        assert r.output == [src["sol1"], src["sol2"]][1 - src["label"]].strip()


def test_reject_kinds_are_fields_and_older_files_still_read():
    from datatune.plan import Plan

    old = Plan.model_validate({"dataset": "a/b", "config": "c", "splits": [], "keep": False,
                               "reason": "card only: no rows in this catalog, so it can't be transformed offline"})
    assert old.card_only and old.reject_kind == "card_only"
    planned = Plan(dataset="a/b", config="c", splits=[], keep=False, reason="its labels don't match", reject_kind="planner")
    assert not planned.card_only


def test_class_labels_are_mapped_beside_a_free_text_label_column(catalog, fake_llm):
    """circa: the model names `judgements` ('Yes#Yes#Probably no#...', free text); the class label column
    `goldstandard1` beside it fills yes/no, so code plans with it instead of rejecting the source."""
    spec = TaskSpec(description="Predict whether Speaker 2's answer to Speaker 1 counts as a yes or as a no.",
                    output_kind="label", labels=["yes", "no"])
    plan, result, _ = plan_and_run(catalog, fake_llm, spec, "google-research-datasets/circa", "default",
                                   ["context", "question-X", "answer-Y"], "judgements")
    assert plan.keep, plan.reason
    assert plan.output.column.startswith("goldstandard") and set(plan.output.label_map.values()) == {"yes", "no"}
    features = catalog.load("google-research-datasets/circa", "default", result.rows[0].source_split).features

    def gold(src):
        name = features[plan.output.column].names[src[plan.output.column]]
        return {"Yes": "yes", "No": "no"}.get(name)

    assert {r.output for r in result.rows} == {"yes", "no"}
    assert_gold(catalog, result, gold)
