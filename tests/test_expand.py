"""Task expansion: the model's answer, overridden by what the description and examples prove."""

from __future__ import annotations

import json

from datatune.expand import expand_task
from datatune.task import Example


def model_says(**answer):
    base = {"output_kind": "text", "labels": [], "language": "en", "input_format": "", "output_format": ""}
    return lambda body: json.dumps({**base, **answer})


def test_label_casing_follows_the_description(fake_llm):
    llm, _ = fake_llm(model_says(output_kind="label", labels=["Positive", "Negative"]))
    spec = expand_task("Classify reviews as positive or negative", [], llm)
    assert spec.labels == ["positive", "negative"]


def test_examples_prove_numbers_and_letters(fake_llm):
    llm, _ = fake_llm(model_says(output_kind="text"))
    assert expand_task("math", [Example(input="1+1", output="2"), Example(input="2+3", output="5")], llm).output_kind == "number"
    assert expand_task("mc", [Example(input="q", output="A"), Example(input="r", output="C")], llm).output_kind == "letter"


def test_token_tagging_is_tags_not_labels(fake_llm):
    llm, _ = fake_llm(model_says(output_kind="label", labels=["PER", "ORG", "LOC", "MISC"]))
    spec = expand_task("Tag each token of a sentence with its named-entity tag (PER, ORG, LOC, MISC)", [], llm)
    assert spec.output_kind == "tags" and not spec.is_classification


def test_language_named_in_description(fake_llm):
    llm, _ = fake_llm(model_says(output_kind="text", language="en"))
    assert expand_task("Answer medical questions in Russian", [], llm).language == "ru"


def test_single_label_is_not_a_label_task(fake_llm):
    llm, _ = fake_llm(model_says(output_kind="label", labels=["spam"]))
    assert expand_task("Detect spam", [], llm).output_kind == "text"
