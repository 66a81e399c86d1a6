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
