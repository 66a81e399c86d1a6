"""The `full` planner mode: the model writes the derivation too, and code still validates it on real rows."""

from __future__ import annotations

import json

import pytest

from datatune.execute import execute_plan
from datatune.model_derive import derivation_model
from datatune.planner import Candidate, plan_candidate
from datatune.task import TaskSpec

from .conftest import schema_of
from .test_planner import MATH, MC, SENTIMENT, assert_gold

SUMMARY = TaskSpec(description="Explain in one sentence why the answer to a math word problem is right", output_kind="text")


def answering(choice: dict, derivation: dict | list[dict]):
    """A fake model: column choice for the column schema, then the derivation(s) in turn."""
    derivations = iter(derivation if isinstance(derivation, list) else [derivation] * 5)

    def handler(body):
        props = (schema_of(body) or {}).get("properties", {})
        if "output_column" in props:
            return json.dumps(choice)
        assert "fits" in props, props
        return json.dumps(next(derivations))

    return handler


def plan_full(catalog, fake_llm, spec, dataset, config, choice, derivation):
    llm, ep = fake_llm(answering(choice, derivation))
    e = catalog.entry(dataset)
    c = Candidate(e, e.config(config))
    split = "train" if "train" in c.config.splits else next(iter(c.config.splits))
    plan = plan_candidate(spec, c, catalog.load(dataset, config, split), llm=llm, mode="full")
    result = execute_plan(plan, lambda s: catalog.load(dataset, config, s)) if plan.keep and not plan.needs_llm else None
    return plan, result, ep


def base(**kw):
    return {"input_template": "", **kw, "fits": True, "reason": "fits"}


def test_label_map_is_required_per_source_class():
    Model = derivation_model(SENTIMENT, ["text", "label"], ["neg", "pos"])
    schema = Model.model_json_schema()
    lm = schema["$defs"]["LabelMap"]
    assert sorted(lm["required"]) == ["neg", "pos"]
    assert lm["properties"]["neg"]["enum"] == ["positive", "negative", "(none of these)"]


def test_model_written_label_map_agrees_with_gold(catalog, fake_llm):
    plan, res, ep = plan_full(catalog, fake_llm, SENTIMENT, "cornell-movie-review-data/rotten_tomatoes", "default",
                              {"input_columns": ["text"], "output_column": "label"},
                              base(label_map={"neg": "negative", "pos": "positive"}))
    assert plan.keep and plan.checks["planner_mode"] == "full" and len(ep.requests) == 2
    assert plan.output.label_map == {"neg": "negative", "pos": "positive"}
    assert_gold(catalog, res, lambda s: ["negative", "positive"][s["label"]])


def test_model_reject_is_final(catalog, fake_llm):
    plan, _, ep = plan_full(catalog, fake_llm, SENTIMENT, "cornell-movie-review-data/rotten_tomatoes", "default",
                            {"input_columns": ["text"], "output_column": "label"},
                            {**base(label_map={"neg": "negative", "pos": "positive"}), "fits": False, "reason": "film reviews only"})
    assert not plan.keep and "film reviews only" in plan.reason and len(ep.requests) == 2


def test_a_wrong_label_map_fails_validation_and_is_reasked(catalog, fake_llm):
    wrong = base(label_map={"neg": "positive", "pos": "positive"})
    right = base(label_map={"neg": "negative", "pos": "positive"})
    plan, _, ep = plan_full(catalog, fake_llm, SENTIMENT, "cornell-movie-review-data/rotten_tomatoes", "default",
                            {"input_columns": ["text"], "output_column": "label"}, [wrong, right])
    assert plan.keep and plan.output.label_map == {"neg": "negative", "pos": "positive"}
    assert len(ep.requests) == 4 and "previous" in ep.requests[2]["messages"][-1]["content"]


def test_model_chosen_marker_extraction(catalog, fake_llm):
    plan, res, _ = plan_full(catalog, fake_llm, MATH, "openai/gsm8k", "main", {"input_columns": ["question"], "output_column": "answer"},
                             base(extract="after a marker", marker="####"))
    assert plan.keep and plan.output.extract == "marker"
    assert_gold(catalog, res, lambda s: s["answer"].split("####")[-1].strip().replace(",", ""))


def test_a_wrong_extraction_is_rejected_on_real_rows(catalog, fake_llm):
    plan, _, _ = plan_full(catalog, fake_llm, MATH, "openai/gsm8k", "main", {"input_columns": ["question"], "output_column": "answer"},
                           base(extract="whole value", marker=""))
    assert not plan.keep and "numbers" in plan.reason


def test_model_chosen_option_columns(catalog, fake_llm):
    plan, res, _ = plan_full(catalog, fake_llm, MC, "ybisk/piqa", "plain_text", {"input_columns": ["goal", "sol1", "sol2"], "output_column": "label"},
                             base(option_columns=["sol1", "sol2"], input_template="{goal}"))
    assert plan.keep and plan.choices.options == ["sol1", "sol2"]
    assert_gold(catalog, res, lambda s: "AB"[s["label"]])


def test_template_with_unknown_columns_is_ignored(catalog, fake_llm):
    plan, _, _ = plan_full(catalog, fake_llm, MATH, "openai/gsm8k", "main", {"input_columns": ["question"], "output_column": "answer"},
                           base(extract="after a marker", marker="####", input_template="Problem: {problem}"))
    assert plan.keep and plan.input_template == ""
    plan, res, _ = plan_full(catalog, fake_llm, MATH, "openai/gsm8k", "main", {"input_columns": ["question"], "output_column": "answer"},
                             base(extract="after a marker", marker="####", input_template="Problem: {question}"))
    assert plan.input_template == "Problem: {question}" and res.rows[0].input.startswith("Problem: ")


def test_model_can_ask_for_a_written_output(catalog, fake_llm):
    plan, _, _ = plan_full(catalog, fake_llm, SUMMARY, "openai/gsm8k", "main", {"input_columns": ["question"], "output_column": "answer"},
                           base(write_output=True, instruction="Explain in one sentence why the final answer is right."))
    assert plan.keep and plan.needs_llm and plan.output.kind == "llm"


def test_unknown_mode_is_refused(catalog, fake_llm):
    llm, _ = fake_llm(lambda body: "{}")
    e = catalog.entry("openai/gsm8k")
    with pytest.raises(ValueError, match="planner mode"):
        plan_candidate(MATH, Candidate(e, e.config("main")), catalog.load("openai/gsm8k", "main", "train"), llm=llm, mode="everything")
