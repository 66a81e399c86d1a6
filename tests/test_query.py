from datatune.query import condense, retrieval_query
from datatune.task import Example, TaskSpec


def test_condense_drops_lead_ins_and_caveats():
    d = ("In this task, you are given a science question. Your task is to find the correct answer.\n"
         "Things to avoid: 1. Do not generate anything else.")
    assert condense(d) == "a science question. find the correct answer."


def test_coded_labels_give_their_meanings_not_the_codes():
    spec = TaskSpec(description='Answer "Yes" if the sentences are a paraphrase, otherwise "No".', output_kind="label",
                    labels=["Yes", "No"], label_meanings={"Yes": "the sentences are a paraphrase", "No": "not the sentences are a paraphrase"},
                    examples=[Example(input="Sentence1: a. Sentence2: b.", output="Yes")])
    q = retrieval_query(spec)
    assert q.labels == ()
    assert "labels mean: the sentences are a paraphrase" in q.text and "Sentence1: a." in q.text


def test_word_labels_stay_labels():
    spec = TaskSpec(description="Classify news by topic", output_kind="label", labels=["World", "Sports"])
    assert retrieval_query(spec).labels == ("World", "Sports")


def test_label_matching_reads_the_definition_not_the_examples():
    spec = TaskSpec(description="In this task, you are given a tweet. Label it as 'ironic' or 'not'.", output_kind="label",
                    labels=["ironic", "not"], examples=[Example(input="Yes, another Monday, great news for authorities", output="ironic")])
    q = retrieval_query(spec)
    assert "Monday" in q.text and "Monday" not in q.label_text
    assert q.label_text.startswith("a tweet.")
