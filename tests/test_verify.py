"""Label verification by self-consistency: policies, budget, votes, with a fake LLM; planted errors with the real one."""

from __future__ import annotations

import json
import re
import time
from collections import Counter

import pyarrow as pa
import pytest

from datatune.errors import ConfigError
from datatune.records import FIELDS, SCHEMA, Row, rows_to_table, table_to_rows
from datatune.task import TaskSpec
from datatune.verify import verify_rows

from .conftest import schema_of

SPEC = TaskSpec(description="Classify the sentiment of a movie review as positive or negative", output_kind="label",
                labels=["positive", "negative"])
TRUTH = {f"review {i}": ("positive" if i % 2 else "negative") for i in range(10)}
WRONG = {"review 2", "review 5"}  # planted: their label is flipped


def the_input(body) -> str:
    first_user = [m["content"] for m in body["messages"] if m["role"] == "user"][0]  # re-asks come after it
    return re.search(r"Input:\n(.*?)\n\nAnswer with", first_user, re.S).group(1)


def flip(label: str) -> str:
    return "negative" if label == "positive" else "positive"


def rows_with_planted_errors(method="mapped") -> list[Row]:
    return [Row(text, flip(lb) if text in WRONG else lb, "src/ds", "default", "train", i, method=method)
            for i, (text, lb) in enumerate(TRUTH.items())]


def oracle(answer_at=None):
    """Answers each row with its true label; answer_at(input, temperature) may override."""

    def handler(body):
        props = (schema_of(body) or {}).get("properties", {})
        assert "answer" in props, body
        text = the_input(body)
        got = answer_at(text, body.get("temperature", 0)) if answer_at else None
        answer = got or TRUTH[text]
        assert answer in props["answer"]["enum"] or answer == "maybe"
        return json.dumps({"answer": answer})

    return handler


def by_input(rows):
    return {r.input: r for r in rows}


def test_flag_keeps_rows_and_records_the_disagreements(fake_llm):
    llm, ep = fake_llm(oracle())
    res = verify_rows(rows_with_planted_errors(), SPEC, llm, policy="flag")
    assert len(res.rows) == 10 and not res.dropped
    got = by_input(res.rows)
    assert {t for t, r in got.items() if r.check == "disagree:flagged"} == WRONG
    assert all(r.check == "agree" for t, r in got.items() if t not in WRONG)
    assert [r.input for r in res.rows] == list(TRUTH)  # input order kept
    assert all(r.output == (flip(TRUTH[r.input]) if r.input in WRONG else TRUTH[r.input]) for r in res.rows)  # outputs untouched
    assert res.counts["agree"] == 8 and res.counts["disagree"] == 2 and res.counts["checked"] == 10
    assert res.calls == len(ep.requests) == 10
    # the enum of allowed answers is what the server must follow; the row's label is never shown
    body = ep.requests[0]
    assert schema_of(body)["properties"]["answer"]["enum"] == ["positive", "negative"]
    assert body["temperature"] == 0


def test_relabel_sets_the_majority_answer_and_records_the_old_label(fake_llm):
    llm, _ = fake_llm(oracle())
    res = verify_rows(rows_with_planted_errors(), SPEC, llm, policy="relabel")
    got = by_input(res.rows)
    for t in WRONG:
        assert got[t].output == TRUTH[t] and got[t].check == f"relabelled:{flip(TRUTH[t])}"
    assert all(r.output == TRUTH[r.input] for r in res.rows)
    assert res.counts["relabelled"] == 2 and len(res.rows) == 10


def test_drop_removes_disagreeing_rows_counted_by_reason(fake_llm):
    llm, _ = fake_llm(oracle())
    res = verify_rows(rows_with_planted_errors(), SPEC, llm, policy="drop")
    assert {r.input for r in res.rows} == set(TRUTH) - WRONG
    assert res.dropped == Counter({"label_disagrees": 2}) and res.counts["dropped"] == 2
    assert all(r.check == "agree" for r in res.rows)


def test_budget_leaves_the_rest_unchecked(fake_llm):
    llm, ep = fake_llm(oracle())
    res = verify_rows(rows_with_planted_errors(), SPEC, llm, policy="drop", max_calls=3)
    assert len(ep.requests) == 3 and res.calls == 3
    checked = [r for r in res.rows if r.check]
    assert len(checked) == 3 and res.counts["unchecked"] == 7
    assert len(res.rows) == 10 - sum(res.dropped.values())  # only checked rows can be dropped
    assert sum(r.check == "" for r in res.rows) == 7


def test_the_llms_own_budget_ends_the_stage_without_crashing(fake_llm):
    llm, ep = fake_llm(oracle(), max_calls=4)
    res = verify_rows(rows_with_planted_errors(), SPEC, llm, policy="flag")
    assert len(res.rows) == 10
    assert len(ep.requests) <= 4
    assert res.counts["checked"] == len(ep.requests) and res.counts["unchecked"] == 10 - len(ep.requests)
    # a later pass with budget left goes on with the rows still unchecked; checked rows are left alone
    llm.max_calls = None
    again = verify_rows(res.rows, SPEC, llm, policy="flag")
    assert all(r.check for r in again.rows) and again.counts["skipped"] == res.counts["checked"]
    assert {r.input for r in again.rows if r.check == "disagree:flagged"} == WRONG


def test_votes_confirm_disagreements_only_and_take_the_majority(fake_llm):
    # review 4 (right label): wrong at temperature 0 only; review 2 (planted): one sampled vote sides with its label
    def answer_at(text, temperature):
        if text == "review 4" and temperature == 0:
            return flip(TRUTH[text])
        if text == "review 2" and temperature == 0.7:
            return flip(TRUTH[text])
        return None

    llm, ep = fake_llm(oracle(answer_at))
    rows = rows_with_planted_errors()
    res = verify_rows(rows, SPEC, llm, policy="relabel", votes=3)
    got = by_input(res.rows)
    # review 4: the first vote disagreed, the two sampled votes agree with the row: it agrees
    assert got["review 4"].check == "agree" and got["review 4"].output == TRUTH["review 4"]
    # review 5: three votes against its planted label: unanimous, relabelled
    assert got["review 5"].output == TRUTH["review 5"] and got["review 5"].check == f"relabelled:{flip(TRUTH['review 5'])}"
    # review 2: 2 of 3 votes against its label: a disagreement, but not strong enough to relabel
    assert got["review 2"].check == "disagree:flagged" and got["review 2"].output == flip(TRUTH["review 2"])
    # extra votes only for rows whose first vote disagreed, at rising temperatures
    per_input = Counter(the_input(b) for b in ep.requests)
    assert per_input["review 2"] == per_input["review 4"] == per_input["review 5"] == 3
    assert all(per_input[t] == 1 for t in TRUTH if t not in ("review 2", "review 4", "review 5"))
    assert sorted({b["temperature"] for b in ep.requests}) == [0, 0.7, 0.8]
    assert res.counts["relabelled"] == 1 and res.counts["disagree"] == 2
    # a weaker bar relabels review 2 on its 2-of-3 majority
    res = verify_rows(rows, SPEC, llm, policy="relabel", votes=3, min_agreement=0.6)
    assert by_input(res.rows)["review 2"].output == TRUTH["review 2"]


def test_votes_without_adaptive_ask_every_row(fake_llm):
    llm, ep = fake_llm(oracle())
    verify_rows(rows_with_planted_errors(), SPEC, llm, votes=2, adaptive=False)
    assert len(ep.requests) == 20


def test_synthetic_rows_are_skipped_unless_asked(fake_llm):
    llm, ep = fake_llm(oracle())
    rows = rows_with_planted_errors("synthetic")
    res = verify_rows(rows, SPEC, llm)
    assert not ep.requests and all(r.check == "" for r in res.rows) and res.counts["skipped"] == 10
    res = verify_rows(rows, SPEC, llm, methods=("mapped", "llm", "synthetic"))
    assert {r.input for r in res.rows if r.check == "disagree:flagged"} == WRONG


def test_invalid_answers_are_errors_and_never_dropped(fake_llm):
    llm, _ = fake_llm(oracle(lambda text, t: "maybe" if text == "review 3" else None))
    res = verify_rows(rows_with_planted_errors(), SPEC, llm, policy="drop")
    assert by_input(res.rows)["review 3"].check == "error" and res.counts["error"] == 1
    assert res.dropped == Counter({"label_disagrees": 2})
    res = verify_rows(rows_with_planted_errors(), SPEC, llm, policy="drop", drop_errors=True)
    assert "review 3" not in by_input(res.rows) and res.dropped["answer_unverified"] == 1


def test_multiple_choice_letters(fake_llm):
    spec = TaskSpec(description="Answer multiple-choice questions with the letter of the correct option", output_kind="letter")
    truth = {"2+2? A) 3 B) 4 C) 5": "B", "Capital of France? A) Paris B) Rome C) Oslo": "A", "3*3? A) 6 B) 8 C) 9": "C"}

    def handler(body):
        enum = schema_of(body)["properties"]["answer"]["enum"]
        assert enum == ["A", "B", "C"]
        return json.dumps({"answer": truth[the_input(body)]})

    llm, _ = fake_llm(handler)
    rows = [Row(q, "A" if i == 2 else a, "s", "c", "test", i) for i, (q, a) in enumerate(truth.items())]
    res = verify_rows(rows, spec, llm, policy="relabel")
    assert [r.check for r in res.rows] == ["agree", "agree", "relabelled:A"] and res.rows[2].output == "C"


def test_unsupported_kinds_and_bad_options(fake_llm):
    llm, ep = fake_llm(oracle())
    rows = [Row("a text", "a summary")]
    res = verify_rows(rows, TaskSpec(description="Summarise", output_kind="text"), llm)
    assert res.rows == rows and res.counts["skipped"] == 1 and not ep.requests
    with pytest.raises(ConfigError):
        verify_rows(rows, SPEC, llm, policy="fix")
    with pytest.raises(ConfigError):
        verify_rows(rows, SPEC, llm, votes=0)


def test_a_second_identical_pass_is_served_from_the_cache(fake_llm, tmp_path):
    from datatune.llm import ResponseCache

    llm, ep = fake_llm(oracle(), cache=ResponseCache(tmp_path / "cache"))
    first = verify_rows(rows_with_planted_errors(), SPEC, llm, votes=2)
    n = len(ep.requests)
    second = verify_rows(rows_with_planted_errors(), SPEC, llm, votes=2)
    assert len(ep.requests) == n and second.calls == 0 and second.rows == first.rows


def test_check_column_round_trips_and_older_shards_load():
    rows = [Row("x", "positive", "s", "c", "train", 3, "mapped", "agree")]
    assert "check" in FIELDS and SCHEMA.field("check").type == pa.string()
    assert table_to_rows(rows_to_table(rows)) == rows
    old = rows_to_table(rows).drop_columns(["check"])
    assert table_to_rows(old) == [Row("x", "positive", "s", "c", "train", 3, "mapped", "")]


# -- the real embedded model ---------------------------------------------------------------------
REVIEWS = [
    ("An absolute masterpiece: moving, funny and beautifully acted. I loved every minute.", "positive"),
    ("One of the best films of the year, with a brilliant script and a stunning performance.", "positive"),
    ("A delightful, heartwarming movie that I would happily watch again.", "positive"),
    ("Wonderful from start to finish; the whole cast is superb.", "positive"),
    ("A boring, badly written mess. I wanted to walk out after twenty minutes.", "negative"),
    ("Terrible acting, a stupid plot and awful dialogue. A complete waste of money.", "negative"),
    ("Dull, lifeless and far too long; easily the worst film I have seen this year.", "negative"),
    ("The jokes fall flat and the story makes no sense. I hated it.", "negative"),
]
PLANTED = {0, 3, 5}  # labels flipped


@pytest.fixture(scope="module")
def real_llm(tmp_path_factory):
    from datatune.core.settings import Settings
    from datatune.llm import ResponseCache, open_llm

    llm = open_llm(Settings(use_cache=False))
    llm.cache = ResponseCache(tmp_path_factory.mktemp("llm-cache"))
    return llm  # the embedded server is shared by the session and stopped at exit


@pytest.mark.slow
@pytest.mark.embedded
def test_real_model_flags_planted_wrong_sentiment_labels(real_llm):
    rows = [Row(text, flip(lb) if i in PLANTED else lb, "s", "c", "train", i) for i, (text, lb) in enumerate(REVIEWS)]
    t = time.perf_counter()
    res = verify_rows(rows, SPEC, real_llm, policy="flag")
    took = time.perf_counter() - t
    flagged = {r.source_row for r in res.rows if r.check == "disagree:flagged"}
    assert PLANTED <= flagged, (flagged, [r.check for r in res.rows])
    assert len(flagged - PLANTED) <= 1, flagged
    assert res.counts["checked"] == len(rows)
    print(f"verify: {len(rows)} rows in {took:.1f} s, flagged {sorted(flagged)}")
