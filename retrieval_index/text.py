"""Tokenising for BM25: the same rules for cards and queries, so that names, tags and prose meet.

Card vocabulary is full of compound names (`yelp_polarity`, `CoarseLabel`, `part-of-speech`) and
inflections a query won't share ("reviews" / "review", "classify" / "classification"). Splitting
compounds and a small suffix stemmer fix most of it without a stemming dependency.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache

from bm25s.stopwords import STOPWORDS_EN

_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|(?<=[A-Za-z])(?=[0-9])|(?<=[0-9])(?=[A-Za-z])")
_WORD = re.compile(r"[a-z0-9]+")
# the clitic of a contraction ("won't", "I'm", "we've") split off as a token of its own: 't', 'm', 've'
# matched whatever card or row text holds contractions (circa's dialogue rows for a CoLA definition)
_CLITIC = re.compile(r"(?<=[A-Za-z])n?['’](?:s|t|m|d|ll|ve|re)\b", re.I)
_STOP = frozenset(STOPWORDS_EN) | frozenset(
    "whether each given its which from into than then also can may more most such their there these this those "
    "what when where who whom why how about over under one two using used use".split()
)
# longest first; (suffix, replacement). Crude, but applied to documents and queries alike.
_SUFFIXES = (
    ("ifications", "ify"), ("ification", "ify"), ("izations", "ize"), ("ization", "ize"),
    ("isations", "ize"), ("isation", "ize"), ("ational", "ate"), ("ations", "ate"), ("ation", "ate"),
    ("abilities", "able"), ("ability", "able"), ("ibility", "ible"), ("ities", ""), ("ity", ""), ("ally", "al"), ("ly", ""), ("ness", ""), ("ments", ""), ("ment", ""), ("ings", ""), ("ing", ""),
    ("ies", "y"), ("ied", "y"), ("ized", "ize"), ("izes", "ize"), ("ised", "ize"), ("ises", "ize"),
    ("ise", "ize"), ("iers", "y"), ("ier", "y"), ("ers", "er"), ("ed", ""), ("es", "e"), ("s", ""),
)
_FINAL = (("able", ""), ("ible", ""), ("ize", ""), ("ify", ""), ("ate", ""), ("er", ""), ("e", ""), ("y", ""), ("al", ""), ("ic", ""), ("ive", ""))


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """Strip common English suffixes so inflections and derivations share one token."""
    if len(word) <= 3 or word.isdigit():
        return word
    for suf, rep in _SUFFIXES:
        if word.endswith(suf) and len(word) - len(suf) >= 3:
            if suf == "s" and word.endswith(("ss", "us", "is")):
                break
            word = word[: len(word) - len(suf)] + rep
            break
    for suf, rep in _FINAL:
        if word.endswith(suf) and len(word) - len(suf) >= 3:
            return word[: len(word) - len(suf)] + rep
    return word


def words(text: str) -> list[str]:
    """Lower-cased word pieces, compounds split (snake_case, kebab-case, CamelCase)."""
    return _WORD.findall(_CAMEL.sub(" ", text).lower())


def tokenize(text: str) -> list[str]:
    """BM25 tokens: split, drop stopwords, contraction clitics and single letters (digits stay), stem.

    A single letter is an option marker ("(A)"), an initial or the rest of a contraction: it names no
    dataset. Measured on the 21 SNI definitions (benchmarks/tasks/NOTES.md): MRR@10 0.694 -> 0.700,
    the retrieval dev set unchanged.
    """
    return [stem(w) for w in words(_CLITIC.sub("", text)) if w not in _STOP and (len(w) > 1 or w.isdigit())]


def humanize(tag: str) -> str:
    """`text-classification-other-paraphrase-identification` -> `text classification paraphrase identification`."""
    return " ".join(w for w in re.split(r"[-_:/.\s]+", tag) if w and w != "other")


def text_hash(text: str) -> str:
    """Key of an embedded text: an unchanged text keeps its vector across builds."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:20]
