"""Label match: how many words of a description are class names of a config.

"favor, against or none", "yes, no or maybe", "person, location, number": a task that lists its
labels is best answered by a config with those ClassLabel names, and cards abbreviate them (`LOC`,
`NUM`, `neg`), so a label word also matches a query word it is the start of. BM25 alone drowns these
short words in the prose.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from .text import stem, words

# words that are never labels in a description, though card labels may spell them ("or" is Odia)
FUNCTION_WORDS = frozenset(
    "a an and are as at be by do does each for from given has have in into is it its of on one or "
    "that the their them then these this to two was were what whether which with".split()
)
MIN_PREFIX = 3  # `LOC` matches "location"; shorter label words must match whole
# a label word is matched as the start of a query word only when it is abbreviation-sized (`LOC`,
# `ENTY`, `neg`): longer ones matched as prefixes are other words ('other' in "otherwise", a
# 'state' label in "statement"). Measured with a yes/no-free label text (datatune/retrieve.py):
# SNI definitions MRR@10 0.700 -> 0.706, both dev sets unchanged.
MAX_PREFIX = 4


def label_words(labels: Iterable[str]) -> set[str]:
    """Lower-cased words of ClassLabel names, without numbers and single letters."""
    out = set()
    for label in labels:
        out.update(w for w in words(str(label)) if len(w) > 1 and not w.isdigit())
    return out


class LabelMatch:
    """An inverted index from label words (and their stems) to the documents that have them."""

    def __init__(self, doc_labels: Sequence[Iterable[str]]):
        raw: dict[str, list[int]] = {}
        stems: dict[str, list[int]] = {}
        for i, labels in enumerate(doc_labels):
            for w in label_words(labels):
                raw.setdefault(w, []).append(i)
                stems.setdefault(stem(w), []).append(i)
        self._raw = {k: np.unique(np.asarray(v, dtype=np.int32)) for k, v in raw.items()}
        self._stems = {k: np.unique(np.asarray(v, dtype=np.int32)) for k, v in stems.items()}
        self.num_docs = len(doc_labels)

    def matches(self, query: str, extra_labels: Iterable[str] = ()) -> dict[str, np.ndarray]:
        """Query word -> ids of the documents with a label word matching it."""
        out = {}
        for w in dict.fromkeys([*words(query), *label_words(extra_labels)]):
            if w in FUNCTION_WORDS or w.isdigit():
                continue
            hits = [self._raw[w[:n]] for n in range(MIN_PREFIX, min(len(w), MAX_PREFIX) + 1) if w[:n] in self._raw]
            if w in self._raw and (len(w) < MIN_PREFIX or len(w) > MAX_PREFIX):
                hits.append(self._raw[w])
            if stem(w) in self._stems:
                hits.append(self._stems[stem(w)])
            if hits:
                out[w] = np.unique(np.concatenate(hits)) if len(hits) > 1 else hits[0]
        return out

    def scores(self, query: str, extra_labels: Iterable[str] = ()) -> np.ndarray:
        """Per document, the summed rarity (idf) of the query words its labels match, when there are two or more.

        One matching word is usually chance (`DET` in "determine", a `question` label); a task that
        names its classes names at least two.
        """
        out = np.zeros(self.num_docs, dtype=np.float32)
        count = np.zeros(self.num_docs, dtype=np.int16)
        for ids in self.matches(query, extra_labels).values():
            out[ids] += np.log(1.0 + self.num_docs / ids.size)
            count[ids] += 1
        out[count < 2] = 0
        return out
