"""Transformations the sources don't hold as such, compiled from plan data (no per-row LLM call):
question generation (a role swap), answer-verification pairs and multiple choice with distractors
drawn from other rows, and one label against the rest.

Real rows from ../shared/hub (QA sources with a question and a free-text answer and no label or
options column), a fake LLM choosing the columns. Rows are judged through provenance by
benchmarks/gold.py, which reads the source row's answers by schema, never the plan.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from benchmarks.gold import agrees, answer_norm, answers, gold_agreement, lettered_options
from datatune.compile import compile_plan
from datatune.execute import execute_plan, iter_mapped
from datatune.planner import Candidate, plan_candidate, verification_labels, writes_a_question
from datatune.task import Example, TaskSpec

SQUAD = ("rajpurkar/squad", "plain_text", ["context", "question"], "answers")
NQ = ("google-research-datasets/nq_open", "nq_open", ["question"], "answer")

VERIFY = "Given a question and a candidate answer, say {} if the answer is correct, otherwise {}."


def verify_spec(correct: str, incorrect: str, order=None, meanings=None) -> TaskSpec:
    labels = order or [correct, incorrect]
    return TaskSpec(description=VERIFY.format(correct, incorrect), output_kind="label", labels=labels, label_meanings=meanings or {})


def plan_on(catalog, fake_llm, spec, dataset, config, inputs, output, seed=0):
    llm, ep = fake_llm(lambda body: json.dumps({"input_columns": inputs, "output_column": output}))
    e = catalog.entry(dataset)
    c = Candidate(e, e.config(config))
    split = max(c.config.splits, key=lambda s: c.config.splits[s])
    plan = plan_candidate(spec, c, catalog.load(dataset, config, split), llm=llm, seed=seed)
    return plan, ep


def run(catalog, plan):
    return execute_plan(plan, lambda s: catalog.load(plan.dataset, plan.config, s))


def sources(catalog, rows):
    loaded = {}
    for r in rows:
        key = (r.source_dataset, r.source_config, r.source_split)
        if key not in loaded:
            loaded[key] = catalog.load(*key)
        yield r, loaded[key][r.source_row], loaded[key].features


# -- 1. role swap: passage + answer -> question ---------------------------------------------------
def test_question_generation_from_squad(catalog, fake_llm):
    spec = TaskSpec(description="Given a passage and an answer, write the question the passage answers with it", output_kind="text")
    plan, ep = plan_on(catalog, fake_llm, spec, "rajpurkar/squad", "plain_text", ["context", "answers"], "question")
    assert plan.keep, plan.reason
    assert plan.output.kind == "column" and plan.output.column == "question"
    assert plan.input_columns == ["context", "answers.text[0]"]  # the answer's text, not its answer_start offsets
    assert plan.roles["answers"] == "input" and plan.roles["question"] == "output"
    res = run(catalog, plan)
    assert len(res.rows) == 1190 and not res.drops
    agree, n = gold_agreement(catalog, res.rows, "question")
    assert agree == n
    for r, src, _ in sources(catalog, res.rows[::50]):
        context, answer = r.input.rsplit("\nAnswers: ", 1)
        assert src["context"] in context and answer == src["answers"]["text"][0]
        assert str(src["answers"]["answer_start"][0]) not in answer.split()
    assert len(ep.requests) == 1  # one column choice for the whole source; no call per row


def test_question_generation_swaps_the_roles_the_model_reads_as_qa(catalog, fake_llm):
    """Asked for the column that holds the answer, a model names squad's answers (the embedded one does):
    code makes the question the output and the answer an input when the task writes the question."""
    spec = TaskSpec(description="Given a passage and an answer, generate a question about the passage", output_kind="text")
    plan, _ = plan_on(catalog, fake_llm, spec, "rajpurkar/squad", "plain_text", ["context", "question"], "answers")
    assert plan.keep and plan.output.column == "question" and plan.input_columns == ["context", "answers.text[0]"]
    assert "writes the question" in plan.checks["role_swap"] and plan.checks["role_swap"] in plan.reason
    agree, n = gold_agreement(catalog, run(catalog, plan).rows, "question")
    assert agree == n == 1190
    # by its examples, whose outputs are questions, too
    shown = TaskSpec(description="Passage and answer to question", output_kind="text",
                     examples=[Example(input="Context: The tower was finished in 1889.\nAnswer: 1889", output="When was the tower finished?")])
    assert writes_a_question(shown)
    # answering a question is not writing one; its output is the answer's text, without answer_start
    qa = TaskSpec(description="Write an answer to the question about the passage", output_kind="text")
    assert not writes_a_question(qa)
    plan, _ = plan_on(catalog, fake_llm, qa, "rajpurkar/squad", "plain_text", ["context", "question"], "answers")
    assert plan.keep and plan.output.column == "answers.text[0]" and "role_swap" not in plan.checks


# -- 2. answer verification pairs ----------------------------------------------------------------
@pytest.mark.parametrize("source", [SQUAD, NQ], ids=["squad", "nq_open"])
@pytest.mark.parametrize("spec", [
    verify_spec("yes", "no"),
    verify_spec("True", "False", order=["False", "True"]),
    # labels the definition explains: which one means correct comes from the meanings, not the words
    verify_spec("1", "0", meanings={"1": "correct", "0": "not correct"}),
], ids=["yes-no", "True-False", "1-0"])
def test_verification_pairs(catalog, fake_llm, source, spec):
    dataset, config, inputs, output = source
    plan, ep = plan_on(catalog, fake_llm, spec, dataset, config, inputs, output)
    assert plan.keep, plan.reason
    out = plan.output
    assert out.kind == "verify_answer" and "verification pairs" in plan.checks["transform"] and plan.checks["transform"] in plan.reason
    verdicts = verification_labels(spec)
    assert out.label_map == verdicts and set(verdicts.values()) == set(spec.labels)
    res = run(catalog, plan)
    rows = res.rows
    total = sum(catalog.load(dataset, config, s).num_rows for s in plan.splits)
    # one row per source row (provenance stays a row index); nq_open's answer ')' can't be checked and is dropped
    assert len({(r.source_split, r.source_row) for r in rows}) == len(rows) == total - sum(res.drops.values()) >= 0.999 * total
    assert {r.output for r in rows} == set(spec.labels)
    share = Counter(r.output for r in rows)[verdicts["correct"]] / len(rows)
    assert 0.45 <= share <= 0.55, share
    agree, n = gold_agreement(catalog, rows, "verify", verdicts=verdicts)
    assert agree == n  # correct exactly when the candidate is one of the row's own answers
    for r, src, _ in sources(catalog, rows[::7]):
        shown = r.input.rsplit("\nAnswer: ", 1)[1]
        if r.output == verdicts["incorrect"]:
            assert answer_norm(shown) not in answers(src) and shown in out.pool  # another row's answer
        assert src["question"].strip() in r.input
    assert len(ep.requests) == 1


def test_verification_is_deterministic_and_batch_free(catalog, fake_llm):
    spec = verify_spec("yes", "no")
    plan, _ = plan_on(catalog, fake_llm, spec, *NQ)
    again, _ = plan_on(catalog, fake_llm, spec, *NQ)
    assert plan == again
    ds = catalog.load(plan.dataset, plan.config, "validation")
    whole = [(r.input, r.output, r.source_row) for rows, _ in iter_mapped(plan, "validation", ds) for r in rows]
    small = [(r.input, r.output, r.source_row) for rows, _ in iter_mapped(plan, "validation", ds, batch_size=97) for r in rows]
    assert whole == small
    mapper = compile_plan(plan, ds.features)
    assert [mapper.map_row(ds[i])[:2] for i in range(0, 300, 30)] == [(a, b) for a, b, i in whole[0:300:30]]
    other_seed, _ = plan_on(catalog, fake_llm, spec, *NQ, seed=1)
    reseeded = [r.output for rows, _ in iter_mapped(other_seed, "validation", ds) for r in rows]
    assert reseeded != [b for _, b, _ in whole]  # the seed chooses which rows are negatives


def test_verification_needs_a_question_and_short_answers(catalog, fake_llm):
    spec = verify_spec("yes", "no")
    # gsm8k's answers are worked solutions, not answers to draw other rows' from
    plan, _ = plan_on(catalog, fake_llm, spec, "openai/gsm8k", "main", ["question"], "answer")
    assert not plan.keep and "long texts" in plan.reason
    # no question among the inputs: a passage alone
    plan, _ = plan_on(catalog, fake_llm, spec, "rajpurkar/squad", "plain_text", ["context"], "answers")
    assert not plan.keep and "no question" in plan.reason
    # a yes/no task that is not about an answer is not a verification task
    assert verification_labels(TaskSpec(description="Is the review positive? Answer yes or no", output_kind="label", labels=["yes", "no"])) is None
    assert verification_labels(TaskSpec(description="Say whether the answer is correct", output_kind="label", labels=["good", "bad"])) is None


# -- 3. multiple choice with distractors from other rows -----------------------------------------
@pytest.mark.parametrize("source", [SQUAD, NQ], ids=["squad", "nq_open"])
@pytest.mark.parametrize("letters", ["ABCD", "abcde"])
def test_distractor_choices(catalog, fake_llm, source, letters):
    dataset, config, inputs, output = source
    spec = TaskSpec(description="Answer the multiple-choice question with the letter of the correct option", output_kind="letter",
                    letters=list(letters), lowercase_letters=letters.islower())
    plan, ep = plan_on(catalog, fake_llm, spec, dataset, config, inputs, output)
    assert plan.keep, plan.reason
    assert plan.output.kind == "distractor_letter" and plan.output.n_options == len(letters)
    assert "distractors" in plan.checks["transform"]
    rows = run(catalog, plan).rows
    assert {r.output for r in rows} == set(letters)
    counts = Counter(r.output for r in rows)
    assert max(counts.values()) / min(counts.values()) < 1.35, counts  # the answer's position is shuffled evenly
    agree, n = gold_agreement(catalog, rows, "choice_from_answers", lowercase=spec.lowercase_letters)
    assert agree == n
    for r, src, _ in sources(catalog, rows[::5]):
        opts = lettered_options(r.input)
        assert len(opts) == len(letters) and len({answer_norm(o) for o in opts}) == len(letters)  # distinct distractors
        assert src["question"].strip() in r.input
    again = run(catalog, plan_on(catalog, fake_llm, spec, dataset, config, inputs, output)[0]).rows
    assert [(r.input, r.output) for r in again] == [(r.input, r.output) for r in rows]
    assert len(ep.requests) == 1


def test_distractors_for_code_descriptions(catalog, fake_llm):
    """Code -> which description fits it (BIG-bench code_line_description) from mbpp's (code, text) pairs: no
    question among the inputs, but every row has a description of its own, so other rows' are wrong for it.
    Judged through provenance: the option at the output letter is the source row's own text, no other is."""
    spec = TaskSpec(description="Give an English language description of Python code. Answer with the letter of the correct option.",
                    output_kind="letter")
    plan, _ = plan_on(catalog, fake_llm, spec, "google-research-datasets/mbpp", "full", ["code"], "text")
    assert plan.keep, plan.reason
    assert plan.output.kind == "distractor_letter" and plan.output.n_options == 4
    rows = run(catalog, plan).rows
    assert len(rows) > 300 and {r.output for r in rows} == set("ABCD")
    for r, src, _ in sources(catalog, rows):
        opts = [answer_norm(o) for o in lettered_options(r.input)]
        own = answer_norm(" ".join(src["text"].split()))
        assert opts[ord(r.output) - ord("A")] == own and opts.count(own) == 1
        assert src["code"].split()[0] in r.input  # the code is the input


def test_columns_empty_in_most_rows_are_not_offered_to_the_planner():
    from datatune.planner import usable_columns

    sample = [{"code": f"def f{i}(): pass", "text": f"Write f{i}", "setup": "" if i else "import os"} for i in range(20)]
    assert usable_columns(["code", "text", "setup"], sample) == ["code", "text"]
    assert usable_columns(["setup", "code"], [{"setup": "", "code": ""}]) == ["setup", "code"]  # nothing better to offer


def test_distractors_are_not_drawn_where_options_exist(catalog, fake_llm):
    spec = TaskSpec(description="Answer multiple-choice science questions with the letter of the correct option", output_kind="letter")
    plan, _ = plan_on(catalog, fake_llm, spec, "cais/mmlu", "astronomy", ["question", "choices"], "answer")
    assert plan.keep and plan.output.kind == "choice_letter"
    plan, _ = plan_on(catalog, fake_llm, spec, "openai/gsm8k", "main", ["question"], "answer")
    assert not plan.keep and "no answer options" in plan.reason


# -- 4. one label against the rest ----------------------------------------------------------------
def test_one_emotion_against_the_rest(catalog, fake_llm):
    spec = TaskSpec(description="Does the tweet express joy? Label it joy or other", output_kind="label", labels=["joy", "other"])
    plan, _ = plan_on(catalog, fake_llm, spec, "cardiffnlp/tweet_eval", "emotion", ["text"], "label")
    assert plan.keep, plan.reason
    names = catalog.load("cardiffnlp/tweet_eval", "emotion", "train").features["label"].names
    assert set(plan.output.label_map) == set(names)  # every source label is mapped
    assert {k for k, v in plan.output.label_map.items() if v == "joy"} == {"joy"}
    res = run(catalog, plan)
    assert not res.drops.get("label_unmapped") and {r.output for r in res.rows} == {"joy", "other"}
    lexicon = {"joy": {"joy"}, "other": {n for n in names if n != "joy"}}
    agree, n = gold_agreement(catalog, res.rows, "label", lexicon=lexicon)
    assert agree == n == sum(catalog.load("cardiffnlp/tweet_eval", "emotion", s).num_rows for s in plan.splits)


def test_gold_judges_rewritten_rows_independently():
    row = {"question": "who wrote it", "answer": ["Bob Russell", "Bobby Scott"]}
    v = {"correct": "yes", "incorrect": "no"}
    assert agrees("verify", "yes", row, {}, input="who wrote it\nAnswer: bobby scott", verdicts=v)
    assert not agrees("verify", "yes", row, {}, input="who wrote it\nAnswer: 1972", verdicts=v)
    assert agrees("choice_from_answers", "B", row, {}, input="who wrote it\nA. 1972\nB. Bob Russell\nC. Paris")
    assert not agrees("choice_from_answers", "A", row, {}, input="who wrote it\nA. 1972\nB. Bob Russell\nC. Paris")
    assert not agrees("choice_from_answers", "B", row, {}, input="who wrote it\nA. Bobby Scott\nB. Bob Russell")  # two right options


# -- the real embedded model, end to end ----------------------------------------------------------
@pytest.mark.slow
@pytest.mark.embedded
def test_verification_pairs_build_with_the_embedded_model(catalog, embedded_llm, tmp_path):
    """The real model infers the spec and picks the columns; code makes the pairs. Every mapped row
    agrees with its source row through provenance, in the task's label strings."""
    from datatune.pipeline import BuildOptions, build

    def retriever(description, k, exclude, **_):
        e = catalog.entry(NQ[0])
        return [Candidate(e, e.config(NQ[1]), rank=1)]

    description = ("Given a question and a candidate answer, answer 'yes' if the candidate answer is correct, otherwise 'no'.")
    examples = [Example(input="who painted the mona lisa\nAnswer: Leonardo da Vinci", output="yes"),
                Example(input="what is the capital of australia\nAnswer: Sydney", output="no")]
    res = build(description, curate_fn=None, topup_fn=None, embedder=None, catalog=catalog, llm=embedded_llm, retriever=retriever,
                options=BuildOptions(out=tmp_path / "verify", size=30, max_candidates=1, synthetic=False, curate=False, examples=examples))
    spec = res.spec
    assert spec.output_kind == "label" and set(spec.labels) == {"yes", "no"}, spec
    kept = [p for p in res.plans if p.keep]
    assert kept and kept[0].output.kind == "verify_answer", [p.reason for p in res.plans]
    rows = [r for rs in res.rows.values() for r in rs]
    assert len(rows) == 30 and all(r.method == "mapped" for r in rows)
    agree, n = gold_agreement(catalog, rows, "verify", verdicts=verification_labels(spec))
    assert agree == n
    assert 0.25 <= Counter(r.output for r in rows)["yes"] / n <= 0.75


@pytest.mark.slow
@pytest.mark.embedded
def test_question_generation_build_with_the_embedded_model(catalog, embedded_llm, tmp_path):
    """The embedded model picks squad's answers as the output (the QA reading); the rows still have the
    row's question as output and its passage and answer as input."""
    from datatune.pipeline import BuildOptions, build

    def retriever(description, k, exclude, **_):
        e = catalog.entry(SQUAD[0])
        return [Candidate(e, e.config(SQUAD[1]), rank=1)]

    examples = [Example(input="Context: The Eiffel Tower was completed in 1889 for the World's Fair in Paris.\nAnswer: 1889",
                        output="When was the Eiffel Tower completed?")]
    res = build("Given a passage and an answer, write the question that the passage answers with that answer.", curate_fn=None, topup_fn=None, embedder=None, catalog=catalog,
                llm=embedded_llm, retriever=retriever,
                options=BuildOptions(out=tmp_path / "qg", size=30, max_candidates=1, synthetic=False, curate=False, examples=examples))
    kept = [p for p in res.plans if p.keep]
    assert kept and kept[0].output.column == "question", [p.reason for p in res.plans]
    rows = [r for rs in res.rows.values() for r in rs]
    assert len(rows) == 30 and all(r.method == "mapped" for r in rows)
    agree, n = gold_agreement(catalog, rows, "question")
    assert agree == n
    for r, src, _ in sources(catalog, rows):
        assert src["answers"]["text"][0] in r.input and src["question"].strip() not in r.input
