"""How the words of a long task definition reach BM25 (retrieval_index/text.py)."""

from __future__ import annotations

from retrieval_index.lexical import Lexical
from retrieval_index.text import tokenize


def test_contraction_clitics_and_single_letters_are_not_tokens():
    toks = tokenize("Our friends won't buy this; I'm sure we've (A) rainbow (B) meager")
    assert not {"t", "m", "ve", "i", "a", "b"} & set(toks)
    assert set(tokenize("friends buy rainbow meager")) <= set(toks)


def test_digits_stay_tokens():
    # scales and numbered labels ('0-5', "output '1'") are matched against cards that list them
    assert {"0", "5", "1"} <= set(tokenize("classify them into classes from 0-5, output '1'"))


def test_a_clitic_no_longer_matches_a_card_full_of_contractions():
    # a dialogue card ("I don't think so", "I'm not sure") matched a definition's example sentence
    # through the bare 't' and 'm' of its contractions; a card about the task itself did not
    lex = Lexical.build(["I don't think so. I'm not sure. It isn't. We're done.", "grammatical acceptability of a sentence"])
    scores = lex.scores("They won't buy it, I'm told.")
    assert scores[0] == 0
    assert lex.scores("Is the sentence grammatical? It won't parse.")[1] > 0


def test_label_text_leaves_out_yes_and_no():
    from datatune.retrieve import without_generic_labels

    text = without_generic_labels('Answer "Yes" if these sentences are a paraphrase of one another, otherwise answer "No".')
    assert "Yes" not in text and '"No".' not in text and "paraphrase" in text


def test_long_label_words_are_not_prefixes_of_query_words():
    from retrieval_index.labels import LabelMatch

    m = LabelMatch([["other", "count"], ["LOC", "NUM"]])
    found = m.matches("otherwise the country names a location and a number")
    assert "otherwise" not in found and "country" not in found  # 'other', 'count' start other words
    assert list(found["location"]) == [1] and list(found["number"]) == [1]  # abbreviations still match
    assert list(m.matches("no other label")["other"]) == [0]  # a whole word still matches
