"""Curation filters: each drop counted by reason, first occurrence kept, a second pass removes nothing."""

from __future__ import annotations

import random
import time

import numpy as np
import pytest

from datatune.curate import (
    REASONS,
    CurateConfig,
    curate,
    detect_language,
    filter_contaminated,
    filter_embedding_duplicates,
    filter_empty,
    filter_exact_duplicates,
    filter_labels,
    filter_language,
    filter_near_duplicates,
    filter_too_long,
    greedy_embedding_keep,
    language_matches,
    lsh_params,
    needs_language_check,
    task_languages,
    tokenize,
)
from datatune.embed import HashEmbedder
from datatune.records import Row
from datatune.task import Example, TaskSpec

WORDS = (
    "apple river stone cloud music garden window silver forest engine yellow market doctor winter "
    "planet bottle candle mirror pocket rabbit saddle ticket violin wagon anchor basket carpet dragon "
    "feather glacier harbor island jacket kettle ladder meadow needle orchard pepper quartz ribbon "
    "shadow tunnel umbrella valley walnut yogurt zebra bridge castle desert falcon"
).split()


def make_rows(n: int, seed: int = 0, length: int = 20) -> list[Row]:
    """Distinct random word sequences (no shared 3-word shingles in practice)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        text = " ".join(rng.choice(WORDS) for _ in range(length)) + f" item{i}"
        rows.append(Row(input=text, output=rng.choice(["yes", "no"]), source_dataset="org/ds", source_row=i))
    return rows


def spec(**kw) -> TaskSpec:
    return TaskSpec(description=kw.pop("description", "answer yes or no"), **kw)


# ---------------------------------------------------------------------------- cheap filters


def test_empty_and_too_long():
    rows = [Row("a", "b"), Row("  ", "b"), Row("a", ""), Row("x" * 11, "y"), Row("x", "y" * 6)]
    kept, c = filter_empty(rows)
    assert [r.input for r in kept] == ["a", "x" * 11, "x"]
    assert c["empty"] == 2
    kept2, c2 = filter_too_long(kept, max_input_chars=10, max_output_chars=5)
    assert kept2 == [Row("a", "b")]
    assert c2["too_long"] == 2


def test_labels_outside_set_dropped_and_spelling_canonicalised():
    rows = [Row("t1", "Positive"), Row("t2", " negative "), Row("t3", "maybe"), Row("t4", "positive."), Row("t5", "neutral")]
    kept, c = filter_labels(rows, ["positive", "negative"])
    assert [(r.input, r.output) for r in kept] == [("t1", "positive"), ("t2", "negative"), ("t4", "positive")]
    assert c["label_outside_set"] == 2
    kept, _ = filter_labels([Row("q", "(b)"), Row("q2", "E")], ["A", "B", "C", "D"])
    assert [(r.input, r.output) for r in kept] == [("q", "B")]
    kept, _ = filter_labels(rows, ["positive", "negative"], canonicalize=False)
    assert [r.output for r in kept] == ["Positive", " negative ", "positive."]


def test_exact_duplicates_keep_first_and_ignore_case_and_spacing():
    rows = [
        Row("Hello  World", "yes", source_row=0),
        Row("hello world", "YES", source_row=1),
        Row("hello world", "no", source_row=2),  # other output: not an exact duplicate
        Row("ﬁne", "yes", source_row=3),
        Row("fine", "yes", source_row=4),  # NFKC folds the ligature
    ]
    kept, c = filter_exact_duplicates(rows)
    assert [r.source_row for r in kept] == [0, 2, 3]
    assert c["exact_duplicate"] == 2


# ---------------------------------------------------------------------------- near-duplicates


def test_planted_near_duplicates_removed_then_second_pass_removes_nothing():
    base = make_rows(300, seed=1)
    rng = random.Random(7)
    planted = []
    for k in range(60):
        r = base[rng.randrange(len(base))]
        variant = r.input.upper() + " !!" if k % 2 else r.input + " indeed"  # Jaccard 1.0 and 21/22
        planted.append(Row(variant, r.output, source_row=1000 + k))
    rows = base + planted
    rng.shuffle(rows)
    kept, c = filter_near_duplicates(rows)
    # exactly one of each (original, variant...) group survives: the first in order
    assert c["near_duplicate"] == 60
    assert len(kept) == 300
    first_of_group: dict[str, int] = {}
    for i, r in enumerate(rows):
        key = r.input.lower().removesuffix(" !!").removesuffix(" indeed")
        first_of_group.setdefault(key, i)
    where = {id(r): i for i, r in enumerate(rows)}
    assert [where[id(r)] for r in kept] == sorted(first_of_group.values())
    kept2, c2 = filter_near_duplicates(kept)
    assert c2["near_duplicate"] == 0
    assert kept2 == kept


@pytest.mark.parametrize("threshold", [0.7, 0.8])
def test_near_duplicates_match_brute_force_jaccard(threshold):
    rng = random.Random(3)
    rows = make_rows(400, seed=2, length=12)  # 13 words: 11 shingles
    # variants at several Jaccard distances from their original
    extra = []
    for k in range(160):
        r = rows[rng.randrange(400)]
        words = r.input.split()
        if k % 4 == 0:
            words = words + ["tail"]  # 11/12 = 0.917
        elif k % 4 == 1:
            words = words + ["tail", "end", "stop"]  # 11/14 = 0.786: a duplicate at 0.7, not at 0.8
        elif k % 4 == 2:
            words[5] = "CHANGED"  # 8/14 = 0.571
        else:
            words[2], words[9] = "x1", "x2"
        extra.append(Row(" ".join(words), "yes"))
    rows = rows + extra
    rng.shuffle(rows)

    def shingles(text):
        t = tokenize(text)
        return {tuple(t[i : i + 3]) for i in range(len(t) - 2)} if len(t) >= 3 else {tuple(t)}

    sets = [shingles(r.input) for r in rows]
    brute = []
    for i, s in enumerate(sets):
        if all(len(s & sets[j]) < threshold * len(s | sets[j]) for j in brute):
            brute.append(i)
    kept, c = filter_near_duplicates(rows, threshold=threshold)
    where = {id(r): i for i, r in enumerate(rows)}
    assert [where[id(r)] for r in kept] == brute
    assert c["near_duplicate"] == len(rows) - len(brute)
    assert len(rows) - len(brute) >= (80 if threshold == 0.7 else 40)


def test_near_duplicate_inputs_shorter_than_a_shingle():
    rows = [Row("good", "a"), Row("Good!", "b"), Row("bad", "c"), Row("", "d"), Row("!!", "e")]
    kept, c = filter_near_duplicates(rows)
    assert [r.output for r in kept] == ["a", "c", "d", "e"]
    assert c["near_duplicate"] == 1


def test_lsh_params_reach_recall_at_threshold():
    for t in (0.7, 0.8, 0.9):
        b, r = lsh_params(t, 64, 0.95)
        assert b * r <= 64
        assert 1 - (1 - t**r) ** b >= 0.95
    assert lsh_params(0.8, 64, 0.95) == (10, 6)


# ---------------------------------------------------------------------------- contamination


LONG_EVAL = (
    "the quick brown fox jumps over the lazy dog while the farmer watches from the old red barn "
    "near the river bend"
)  # 23 words


def test_planted_contaminated_rows_removed():
    clean = make_rows(50, seed=4)
    planted = [
        # a 13-word span of the eval text inside a longer row
        Row("Intro words here. " + " ".join(LONG_EVAL.split()[2:15]) + " and more words after it", "yes", source_row=900),
        # the same eval text, different case and punctuation
        Row(LONG_EVAL.upper().replace(" ", ", ", 3), "no", source_row=901),
        # a 9-word row that occurs inside the eval text (n = 9 for this pair)
        Row("jumps over the lazy dog while the farmer watches", "no", source_row=902),
        # the user's 10-word example inside a row
        Row("prefix " + "my very own example sentence that the user gave us today" + " suffix", "yes", source_row=903),
    ]
    rows = clean[:20] + planted[:2] + clean[20:] + planted[2:]
    refs = [LONG_EVAL, "my very own example sentence that the user gave us today"]
    kept, c = filter_contaminated(rows, refs)
    assert c["contaminated"] == 4
    assert kept == clean


def test_contamination_needs_a_full_n_gram():
    rows = [
        Row("zz " + " ".join(LONG_EVAL.split()[0:12]) + " zz zz zz", "a"),  # 12 shared words < 13
        Row("my very own example sentence that the user gave us", "b"),  # 10 of the example's 11 words...
        Row("said: good movie really", "c"),  # contains the 3-word reference, which is shorter than min_n
        Row("Good movie, really!", "d"),  # equals a short reference word for word: contaminated
    ]
    refs = [LONG_EVAL, "my very own example sentence that the user gave us today", "good movie really"]
    kept, c = filter_contaminated(rows, refs)
    # the 10-word row lies inside the 11-word reference, so n = 10 for that pair: contaminated
    assert [r.output for r in kept] == ["a", "c"]
    assert c["contaminated"] == 2
    kept, c = filter_contaminated(rows, refs, n=13, min_n=3)
    assert [r.output for r in kept] == ["a"]  # now the 3-word reference counts inside a row
    assert c["contaminated"] == 3


def test_contamination_with_tiny_texts():
    rows = [Row("a b", "x"), Row("c", "y"), Row("!!", "z")]
    kept, c = filter_contaminated(rows, ["a b c d e f g h i j k l m n o", "C."])
    assert [r.output for r in kept] == ["x", "z"]
    assert c["contaminated"] == 1
    assert filter_contaminated(rows, [])[1]["contaminated"] == 0


def test_curate_contamination_from_examples_and_eval_texts():
    rows = make_rows(30, seed=5)
    eval_text = rows[3].input
    example = rows[10].input
    s = spec(examples=[Example(input=example, output="yes")])
    res = curate(rows, s, eval_texts=[eval_text])
    assert res.drops["contaminated"] == 2
    assert rows[3] not in res.rows and rows[10] not in res.rows
    assert len(res.rows) == 28


# ---------------------------------------------------------------------------- language

RU = "Способность сенсорной системы к адаптации заключается в понижении абсолютной чувствительности."
UK = "Здатність сенсорної системи до адаптації полягає в зниженні її абсолютної чутливості, і це відомо."
EN = "The ability of a sensory system to adapt is mostly a lowering of its absolute sensitivity."
DE = "Die Fähigkeit des sensorischen Systems zur Anpassung besteht in der Senkung der Empfindlichkeit und ist nicht neu."
ZH = "感觉系统适应持续刺激的能力主要在于降低绝对敏感性和提高差别敏感性。"
JA = "感覚系が持続的な刺激に適応する能力は、主に絶対感度の低下にあります。"


def test_detect_language():
    assert detect_language(RU) == "ru"
    assert detect_language(UK) == "uk"
    assert detect_language(EN) == "en"
    assert detect_language(DE) == "de"
    assert detect_language(ZH) == "zh"
    assert detect_language(JA) == "ja"
    assert detect_language("ok") is None  # too short to judge
    assert detect_language("def f(x): return x + 1  # 2 3 4 5 6 7 8 9 10 11") is None


def test_language_matches():
    assert language_matches(RU, ["ru"]) is True
    assert language_matches(EN, ["ru"]) is False
    assert language_matches(UK, ["ru"]) is False
    assert language_matches(DE, ["en"]) is False
    assert language_matches(EN, ["en", "de"]) is True
    assert language_matches(ZH, ["ja"]) is True  # Han without kana could be Japanese
    assert language_matches(JA, ["zh"]) is False
    assert language_matches(EN, ["sv"]) is None  # can't recognise Swedish: no verdict
    assert language_matches("да", ["en"]) is None


def test_language_filter_drops_wrong_language_rows():
    rows = [Row(RU, "да"), Row(EN, "yes"), Row(UK, "так"), Row("Короткий?", "нет"), Row(RU + " Ещё.", "нет")]
    kept, c = filter_language(rows, {"ru"})
    assert [r.input for r in kept] == [RU, "Короткий?", RU + " Ещё."]
    assert c["wrong_language"] == 2
    kept, c = filter_language([Row(RU, EN)], {"ru"}, check_output=True)
    assert kept == [] and c["wrong_language"] == 1


def test_language_check_policy():
    assert not needs_language_check(spec(description="classify the sentiment of tweets"))
    assert needs_language_check(spec(description="answer medical questions", language="ru"))
    assert needs_language_check(spec(description="translate English sentences into German"))
    assert task_languages(spec(description="translate English sentences into German")) == {"en", "de"}
    rows = [Row(EN, "yes"), Row(DE, "ja")]
    assert "wrong_language" not in curate(rows, spec(description="answer yes or no")).drops
    res = curate(rows, spec(description="answer yes or no"), config=CurateConfig(language_check="always"))
    assert res.drops["wrong_language"] == 1 and res.rows == [Row(EN, "yes")]
    res = curate([Row(RU, "да"), Row(EN, "да")], spec(description="медицинские вопросы", language="ru"))
    assert res.drops["wrong_language"] == 1 and [r.input for r in res.rows] == [RU]


# ---------------------------------------------------------------------------- embeddings


def test_embedding_group_checking_keeps_first_of_each_group():
    # same words in another order: shingles differ, a bag-of-words embedding is identical
    rows = [
        Row("red apples grow on tall old trees", "a"),
        Row("cars need fuel to drive far", "b"),
        Row("on tall old trees red apples grow", "c"),
        Row("to drive far cars need fuel", "d"),
        Row("the ocean is deep and blue", "e"),
    ]
    kept, c = filter_near_duplicates(rows)
    assert c["near_duplicate"] == 0
    kept, c = filter_embedding_duplicates(rows, HashEmbedder())
    assert [r.output for r in kept] == ["a", "b", "e"]
    assert c["embedding_duplicate"] == 2
    kept2, c2 = filter_embedding_duplicates(kept, HashEmbedder())
    assert c2["embedding_duplicate"] == 0


def test_greedy_embedding_keep_matches_sequential_definition():
    rng = np.random.default_rng(0)
    e = rng.standard_normal((700, 16)).astype(np.float32)
    dup = rng.choice(700, 200, replace=False)
    e[dup] = e[rng.choice(700, 200)] + 0.05 * rng.standard_normal((200, 16)).astype(np.float32)
    u = e / np.linalg.norm(e, axis=1, keepdims=True)
    expected = []
    for i in range(len(u)):
        if not expected or (u[expected] @ u[i]).max() < 0.9:
            expected.append(i)
    for batch in (1, 64, 1000):
        keep = greedy_embedding_keep(e, max_distance=0.1, batch_size=batch)
        assert np.nonzero(keep)[0].tolist() == expected
    assert 0 < len(expected) < 700


@pytest.mark.slow
def test_embedding_duplicates_with_minilm():
    from datatune.embed import get_embedder

    rows = [
        Row("The movie was absolutely wonderful.", "positive"),
        Row("Stock markets fell sharply on Monday.", "neutral"),
        Row("The film was absolutely wonderful.", "positive"),  # cosine ~0.98 with the first
        Row("I hated every minute of this boring film.", "negative"),
    ]
    res = curate(rows, spec(description="sentiment", output_kind="label", labels=["positive", "negative", "neutral"]), embedder=get_embedder())
    assert res.drops["embedding_duplicate"] == 1
    assert [r.input for r in res.rows] == [rows[0].input, rows[1].input, rows[3].input]
    assert res.embeddings.shape == (3, 384)


# ---------------------------------------------------------------------------- curate


def test_curate_counts_every_reason_and_is_idempotent():
    base = make_rows(40, seed=9)
    s = spec(output_kind="label", labels=["yes", "no"], examples=[Example(input=base[0].input, output="yes")])
    rows = (
        base
        + [Row("", "yes"), Row("x" * 20_000, "no")]  # empty, too_long
        + [Row(base[1].input, "maybe")]  # label_outside_set
        + [Row(base[2].input.upper(), base[2].output.upper())]  # exact_duplicate (output canonicalised first)
        + [Row(base[3].input + " extra", "yes"), Row(base[4].input + "!!", "no")]  # near_duplicate
    )
    res = curate(rows, s, embedder=HashEmbedder())
    assert list(res.drops) == [
        "empty", "too_long", "label_outside_set", "exact_duplicate", "contaminated", "near_duplicate", "embedding_duplicate"
    ]
    assert res.drops == {
        "empty": 1,
        "too_long": 1,
        "label_outside_set": 1,
        "exact_duplicate": 1,
        "contaminated": 1,
        "near_duplicate": 2,
        "embedding_duplicate": 0,
    }
    assert res.rows == base[1:]
    assert res.dropped == 7
    assert set(res.drops) <= set(REASONS)
    assert res.embeddings.shape == (39, 256)
    again = curate(res.rows, s, embedder=HashEmbedder())
    assert again.rows == res.rows and again.dropped == 0


def test_curate_kept_rows_then_new_rows_only_drops_new_ones():
    kept = curate(make_rows(50, seed=11), spec()).rows
    new = [Row(kept[5].input + " again", "yes", method="synthetic"), Row("a brand new synthetic row about zebras and quartz", "no", method="synthetic")]
    res = curate(kept + new, spec())
    assert res.rows == kept + [new[1]]
    assert res.drops["near_duplicate"] == 1


def test_curate_fast_on_50k_rows():
    rng = random.Random(0)
    vocab = [f"w{i}" for i in range(5000)]
    rows = [Row(" ".join(rng.choice(vocab) for _ in range(rng.randint(8, 40))), rng.choice(["a", "b"])) for _ in range(50_000)]
    rows += [Row(rows[i].input + " dup", rows[i].output) for i in range(0, 50_000, 50)]  # 1000 planted
    s = spec(output_kind="label", labels=["a", "b"])
    t0 = time.perf_counter()
    res = curate(rows, s, eval_texts=[rows[50].input], config=CurateConfig(language_check="always"))
    elapsed = time.perf_counter() - t0
    assert res.drops["contaminated"] == 2  # row 50 and its planted twin, which contains it
    assert res.drops["near_duplicate"] == 999  # the other planted twins
    assert res.drops["wrong_language"] == 0
    assert len(res.rows) == 49_999
    assert elapsed < 60  # a few seconds on 2 cores; generous for busy CI machines


def test_curate_knows_which_input_rows_survived_by_position_not_identity():
    """A canonicalized label is a new Row; the result still says which given rows it came from, so
    top-up finds its fresh rows among the survivors (it used to compare id()s and lose them)."""
    import numpy as np

    from datatune.curate import curate
    from datatune.records import Row
    from datatune.task import TaskSpec

    spec = TaskSpec(description="pick the letter", output_kind="label", labels=["A", "B"])
    kept = [Row("first question about rivers and their sources", "A"), Row("second question about deserts and heat", "B")]
    fresh = [Row("third question about mountains and snow", "(B)"),  # canonicalized to "B"
             Row("second question about deserts and heat", "B"),  # a duplicate of a kept row: dropped
             Row("fourth question about forests and rain", "C"),  # outside the labels: dropped
             Row("fifth question about oceans and tides", " a ")]
    res = curate(kept + fresh, spec)
    assert res.kept.tolist() == [0, 1, 2, 5] and isinstance(res.kept, np.ndarray)
    new = res.survivors_from(len(kept))
    assert [(r.input, r.output) for r in new] == [("third question about mountains and snow", "B"), ("fifth question about oceans and tides", "A")]
    assert res.drops["label_outside_set"] == 1 and res.drops["exact_duplicate"] == 1
