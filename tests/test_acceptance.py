"""Semantic acceptance: a source whose inputs are another kind of text than the task's is rejected."""

from __future__ import annotations

import json

import pytest

from datatune.acceptance import Acceptance, judge_inputs
from datatune.task import Example, TaskSpec

NEWS = TaskSpec(description="Classify a news article into one of the topics World, Sports, Business or Sci/Tech.",
                output_kind="label", labels=["World", "Sports", "Business", "Sci/Tech"])
TREC_INPUTS = ["What measures did Clinton take to avoid the draft ?", "What sport does Tiger Woods play ?",
               "How do you make a paintball ?", "Which sport uses a puck ?"]
NEWS_INPUTS = ["Wall St. Bears Claw Back Into the Black (Reuters) Reuters - Short-sellers, Wall Street's dwindling band of ultra-cynics, are seeing green again.",
               "Oil prices soar to all-time record, posing new menace to US economy (AFP) AFP - Tearaway world oil prices, toppling records and straining wallets, present a new economic menace barely three months before the US presidential elections.",
               "Venezuelans Vote Early in Referendum on Chavez Rule (Reuters) Reuters - Venezuelans turned out early and in large numbers on Sunday to vote in a historic referendum.",
               "Phelps, Thorpe Advance in 200 Freestyle (AP) AP - Michael Phelps took care of qualifying for the Olympic 200-meter freestyle semifinals Sunday."]


def test_rules():
    assert not Acceptance(["news article"], ["question"] * 4, "examples").accepted
    assert Acceptance(["review or opinion"], ["news article", "review or opinion", "social media post"], "examples").accepted
    assert Acceptance(["question"], ["math word problem", "question"], "examples").accepted  # one family
    assert Acceptance(["news article"], ["question", "news article", "question"], "description").accepted
    assert not Acceptance(["news article"], ["question"] * 3, "description").accepted
    assert Acceptance([], ["question"], "examples").accepted  # nothing to compare: structural checks decide
    assert Acceptance(["other"], ["question"], "examples").accepted


def test_kinds_come_from_the_llm(fake_llm):
    def handler(body):
        text = body["messages"][-1]["content"]
        return json.dumps({"kind": "question" if "?" in text.split("\n\n")[0] else "news article"})

    llm, ep = fake_llm(handler)
    spec = NEWS.model_copy(update={"examples": [Example(input=NEWS_INPUTS[0], output="Business")]})
    v = judge_inputs(llm, spec, TREC_INPUTS, rows=3)
    assert v.task_kinds == ["news article"] and v.row_kinds == ["question"] * 3 and not v.accepted
    assert judge_inputs(llm, spec, NEWS_INPUTS[1:], rows=3).accepted


@pytest.mark.slow
@pytest.mark.embedded
def test_real_model_tells_questions_from_news(embedded_llm):
    assert not judge_inputs(embedded_llm, NEWS, TREC_INPUTS).accepted
    assert judge_inputs(embedded_llm, NEWS, NEWS_INPUTS).accepted
