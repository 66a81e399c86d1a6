"""Label maps by meaning: code for what strings show, the LLM (checked on rows) for what they don't."""

from __future__ import annotations

import json

import pytest

from datatune.labels import check_label_map, match_labels
from datatune.planner import label_map_for
from datatune.task import Example, TaskSpec


@pytest.mark.parametrize("source,targets,meanings,expected", [
    (["non_irony", "irony"], ["ironic", "not"], {}, {"irony": "ironic", "non_irony": "not"}),
    (["World", "Sports", "Business", "Sci/Tech"], ["0", "1", "2", "3"],
     {"0": "World", "1": "Sports", "2": "Business", "3": "Science or Technical"}, {"World": "0", "Sports": "1", "Business": "2", "Sci/Tech": "3"}),
    (["negative", "positive"], ["POS", "NEG"], {}, {"negative": "NEG", "positive": "POS"}),
    (["entailment", "not_entailment"], ["0", "1"], {"1": "entails", "0": "not entails"}, {"entailment": "1", "not_entailment": "0"}),
    (["anger", "joy", "optimism", "sadness"], ["joy", "not"], {}, {"joy": "joy", "anger": "not", "optimism": "not", "sadness": "not"}),
    (["World", "Sports", "Business", "Sci/Tech"], ["positive", "negative"], {}, {}),
    (["hate speech", "offensive language", "neither"], ["Hate Speech", "Offensive", "Neither"], {},
     {"hate speech": "Hate Speech", "offensive language": "Offensive", "neither": "Neither"}),
])
def test_code_matches_by_stems_negation_and_meanings(source, targets, meanings, expected):
    assert match_labels(source, targets, meanings) == expected


TREC = TaskSpec(description="You are given a question. Detect which category better describes it: Description, Entity, "
                            "Abbreviation, Person, Quantity or Location.", output_kind="label",
                labels=["Description", "Entity", "Abbreviation", "Person", "Quantity", "Location"])


def test_a_proposal_stands_only_where_blind_labels_agree(fake_llm):
    def handler(body):
        user = body["messages"][-1]["content"]
        if "class names" in user:  # the proposal: HUM read wrongly as Description
            return json.dumps({"l0": "Description", "l1": "Quantity"})
        if "Which label?" in user:  # blind labels of the rows
            return json.dumps({"label": "Person" if "Who" in user.split("Input:")[-1] else "Quantity"})
        raise AssertionError(user)

    llm, _ = fake_llm(handler)
    check = check_label_map(llm, TREC, {"HUM": "Description", "NUM": "Quantity"},
                            {"HUM": ["Who wrote Hamlet ?", "Who invented the paper clip ?", "Who was the first president ?"],
                             "NUM": ["How many legs does a spider have ?", "How far is the moon ?"]})
    assert check.confirmed == {"HUM": "Person", "NUM": "Quantity"} and check.corrected == {"HUM": "Person"}
    assert check.calls <= 8


def test_names_that_differ_in_meaning_never_reach_the_llm(catalog, fake_llm):
    llm, ep = fake_llm(lambda body: (_ for _ in ()).throw(AssertionError("no call expected")))
    spec = TaskSpec(description="Classify the sentiment of a movie review", output_kind="label", labels=["positive", "negative"])
    ds = catalog.load("fancyzhx/ag_news", "default", "test")
    mapping, info = label_map_for(spec, "label", ds.features, ds.select(range(50)).to_list(), llm)
    assert mapping == {} and ep.requests == []


@pytest.mark.slow
@pytest.mark.embedded
def test_real_model_maps_trec_codes_to_the_task_labels(catalog, embedded_llm):
    ds = catalog.load("CogComp/trec", "default", "train")
    sample = ds.shuffle(seed=0).select(range(200)).to_list()
    spec = TREC.model_copy(update={"examples": [Example(input="Who invented the paper clip ?", output="Person"),
                                                Example(input="What does the term spaghetti western mean ?", output="Description")]})
    mapping, info = label_map_for(spec, "coarse_label", ds.features, sample, embedded_llm)
    assert mapping["HUM"] == "Person" and mapping["NUM"] == "Quantity" and mapping["LOC"] == "Location", (mapping, info)
    assert info["calls"] <= 8
