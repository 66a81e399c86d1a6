"""Task expansion: the model's answer, overridden by what the description and examples prove."""

from __future__ import annotations

import json

import pytest

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


SNI_SPECS = [
    # (definition, example outputs, expected kind, expected labels or None)
    ("In this task, you're given a short article. Your job is to classify the article based on its category. Use the following "
     "classification labels, 0. World, 1. Sports, 2. Business, 3. Science or Technical. Label the text \"0\" if it contains "
     "information related to world. Label the text \"1\" if it contains information related to sports. Label the text \"2\" if "
     "it contains information related business. Label the text \"3\" if it contains science or technical related information.",
     ["3", "2", "1"], "label", ["0", "1", "2", "3"]),
    ("In this task, you are given a news article. Your task is to classify the article to one out of the four topics 'World', "
     "'Sports', 'Business', 'Sci/Tech' if the article's main topic is relevant to the world, sports, business, and "
     "science/technology, correspondingly.", ["Sci/Tech", "Business", "World"], "label", ["World", "Sports", "Business", "Sci/Tech"]),
    ("In this task, you are given a passage and a question. Answer the question with a short span copied from the passage.",
     ["the Lord", "Sunset", "July 16, 1969"], "span", None),
    ("Craft one correct answer to the question given in input. Make sure your correct answer is reasonably long, consistent "
     "with the context, and requires common sense.", ["I will return the shoes and get back the money.", "I broke up with my friend."], "text", None),
]


@pytest.mark.slow
@pytest.mark.embedded
@pytest.mark.parametrize("definition,outputs,kind,labels", SNI_SPECS)
def test_real_model_spec_follows_the_definition(embedded_llm, definition, outputs, kind, labels):
    inputs = {"the Lord": "Passage: In the beginning the Lord made all. Question: Who made all?",
              "Sunset": "Passage: The band played Sunset last. Question: What did they play last?",
              "July 16, 1969": "Passage: Apollo 11 launched on July 16, 1969. Question: When did it launch?"}
    examples = [Example(input=inputs.get(o, f"Context: story {i} about a day at work. Question: what may happen next?"), output=o)
                for i, o in enumerate(outputs)]
    spec = expand_task(definition, examples, embedded_llm)
    assert spec.output_kind == kind
    if labels:
        assert sorted(spec.labels) == sorted(labels)


def test_definitions_name_labels_and_meanings_without_the_model():
    """Evidence alone (the model's answer invalid or absent): every label the definition names, outputs 0/1 as labels."""
    spec = expand_task("Check the sentence is grammatical. If the statement is grammatically correct then output '1', and '0' otherwise.",
                       [Example(input="Our friends won't buy this analysis.", output="1"), Example(input="Him saw she.", output="0")], None)
    assert spec.output_kind == "label" and spec.labels == ["0", "1"]
    assert spec.label_meanings == {"1": "grammatically correct", "0": "not grammatically correct"}
    spec = expand_task("Classify a news article into one of the topics World, Sports, Business or Sci/Tech.", [], None)
    assert spec.output_kind == "label" and spec.labels == ["World", "Sports", "Business", "Sci/Tech"]
    spec = expand_task("Answer the question about the passage.", [Example(input="P: the Lord made all. Q: who?", output="the Lord"),
                                                                 Example(input="P: they played Sunset. Q: what?", output="Sunset")], None)
    assert spec.output_kind == "span"  # two different short outputs are not a label set
    spec = expand_task("Pick the answer. Answer with one of a, b, c, d and e.", [Example(input="x a ) 1 , b ) 2", output="d"),
                                                                                Example(input="y a ) 1 , b ) 2", output="e")], None)
    assert spec.output_kind == "letter" and spec.lowercase_letters


def test_option_letters_are_the_run_the_examples_show_not_letters_in_code():
    # BIG-bench code_line_description: `print(set(x)-set(y))` holds '(x)' and '(y)'; the options are A-D
    ex = [Example(input="x = {5,6,7,8}\ny = {5,6,10,11}\nprint(set(x)-set(y))\nA. initializes x\nB. computes x - y\n"
                        "C. prints the elements of x not in y\nD. prints the difference", output="C")]
    spec = expand_task("Give an English language description of Python code. Answer with the letter of the correct option.", ex, None)
    assert spec.output_kind == "letter" and spec.letters == ["A", "B", "C", "D"]
    spec = expand_task("Pick the answer", [Example(input="Which? (A) one (B) two (C) three", output="b")], None)
    assert spec.letters == ["a", "b", "c"] and spec.lowercase_letters
