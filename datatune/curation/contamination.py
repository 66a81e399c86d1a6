"""Contamination: rows whose input shares a word n-gram with the user's examples or an eval text."""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from ..records import Row
from .filters import Filtered, apply_mask
from .text import Tokens


def filter_contaminated(rows: Sequence[Row], references: Iterable[str], *, n: int = 13, min_n: int = 8,
                        _tokens: Tokens | None = None) -> Filtered:
    """Drop rows whose input shares a word n-gram with any reference text (see `contaminated`)."""
    return apply_mask(rows, ~contaminated(rows, references, n=n, min_n=min_n, _tokens=_tokens), "contaminated")


def contaminated(
    rows: Sequence[Row],
    references: Iterable[str],
    *,
    n: int = 13,
    min_n: int = 8,
    _tokens: Tokens | None = None,
) -> np.ndarray:
    """Per row, whether its input shares a word n-gram with any reference text (user examples, eval set).

    For a row of `a` words and a reference of `b` words the n-gram size is min(n, a, b): GPT-3's
    13-gram overlap, and for a text shorter than 13 words its whole word sequence must occur in the
    other. A text shorter than `min_n` words only matches an equal text (so a common short phrase
    in the references does not flag every row that contains it). Words are case-folded
    letter/digit runs (`tokenize`); case and punctuation are ignored.
    """
    refs = [t for t in references if t and t.strip()]
    if not refs or not rows:
        return np.zeros(len(rows), dtype=bool)
    min_n = max(1, min(min_n, n))

    ref_tok = Tokens(refs)
    row_tok = _tokens if _tokens is not None else Tokens([r.input for r in rows])
    bad = np.zeros(len(rows), dtype=bool)

    # whole-text equality covers every short text (and is true contamination for any length)
    ref_whole_all = ref_tok.whole_hashes()
    ref_whole = np.unique(ref_whole_all[ref_tok.lengths > 0])
    row_whole = row_tok.whole_hashes()
    bad |= _isin(row_whole, ref_whole) & (row_tok.lengths > 0)

    sizes = range(min_n, n + 1)
    ref_grams = {k: (h, rr) for k, h, rr in ref_tok.ngram_hashes(sizes)}
    ref_len, row_len = ref_tok.lengths, row_tok.lengths
    for k, h, rr in row_tok.ngram_hashes(sizes):
        rh, _ = ref_grams.get(k, (None, None))
        if rh is None or not len(rh):
            continue
        if k == n:
            # both texts have >= n words: any shared n-gram
            bad[rr[_isin(h, np.unique(rh))]] = True
            continue
        # a row of exactly k words inside a reference of >= k words
        short_rows = np.nonzero(row_len == k)[0]
        if len(short_rows):
            bad[short_rows[_isin(row_whole[short_rows], np.unique(rh))]] = True
        # a reference of exactly k words inside a row of >= k words
        ref_k = ref_whole_all[ref_len == k]
        if len(ref_k):
            bad[rr[_isin(h, np.unique(ref_k))]] = True

    return bad


def _isin(values: np.ndarray, sorted_unique: np.ndarray) -> np.ndarray:
    if not len(sorted_unique) or not len(values):
        return np.zeros(len(values), dtype=bool)
    idx = np.searchsorted(sorted_unique, values)
    idx[idx == len(sorted_unique)] = 0
    return sorted_unique[idx] == values
