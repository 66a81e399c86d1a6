"""The cheap filters, run first: empty, too long, label outside the set, exact duplicates.

Each filter is a keep mask over the rows (`*_mask`, what `curate()` composes, so it knows which input
rows survived by position) and a `filter_*` function that applies it and counts the drops.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Sequence

import numpy as np

from ..records import Row
from .text import duplicate_keys, normalize_text

Filtered = tuple[list[Row], Counter]


def apply_mask(rows: Sequence[Row], keep: np.ndarray, reason: str) -> Filtered:
    """The rows a keep mask keeps, in order, and the count of the others under `reason`."""
    kept = [r for r, k in zip(rows, keep) if k]
    return kept, Counter({reason: len(rows) - len(kept)})


def _mask(flags) -> np.ndarray:
    return np.fromiter(flags, dtype=bool)


def empty_mask(rows: Sequence[Row]) -> np.ndarray:
    return _mask(bool((r.input or "").strip() and (r.output or "").strip()) for r in rows)


def too_long_mask(rows: Sequence[Row], *, max_input_chars: int = 10_000, max_output_chars: int = 5_000) -> np.ndarray:
    return _mask(len(r.input or "") <= max_input_chars and len(r.output or "") <= max_output_chars for r in rows)


def filter_empty(rows: Sequence[Row]) -> Filtered:
    return apply_mask(rows, empty_mask(rows), "empty")


def filter_too_long(rows: Sequence[Row], *, max_input_chars: int = 10_000, max_output_chars: int = 5_000) -> Filtered:
    return apply_mask(rows, too_long_mask(rows, max_input_chars=max_input_chars, max_output_chars=max_output_chars), "too_long")


_LABEL_STRIP = " \t\r\n\"'`.()[]{}:;,"


def _label_key(text: str) -> str:
    return normalize_text(text).strip(_LABEL_STRIP)


def _canon(labels: Sequence[str]) -> dict[str, str]:
    canon: dict[str, str] = {}
    for label in labels:
        canon.setdefault(_label_key(label), label)
    return canon


def labels_mask(rows: Sequence[Row], labels: Sequence[str]) -> np.ndarray:
    """Rows whose output is one of `labels` (compared case-, space- and bracket-insensitively); all when
    there are no labels."""
    if not labels:
        return np.ones(len(rows), dtype=bool)
    canon = _canon(labels)
    return _mask(_label_key(r.output or "") in canon for r in rows)


def canonical_labels(rows: Sequence[Row], labels: Sequence[str]) -> list[Row]:
    """Each row with its output in the label's own spelling ("(A)" -> "A"); rows without a match as they are."""
    canon = _canon(labels)
    out = []
    for r in rows:
        label = canon.get(_label_key(r.output or ""))
        out.append(replace(r, output=label) if label is not None and r.output != label else r)
    return out


def filter_labels(rows: Sequence[Row], labels: Sequence[str], *, canonicalize: bool = True) -> Filtered:
    """Drop rows whose output is not one of `labels`; with `canonicalize`, a kept row's output is
    rewritten to the label's own spelling. An empty label set keeps everything."""
    kept, counts = apply_mask(rows, labels_mask(rows, labels), "label_outside_set")
    return (canonical_labels(kept, labels) if canonicalize and labels else kept), counts


def exact_duplicates_mask(rows: Sequence[Row], *, keys: np.ndarray | None = None) -> np.ndarray:
    """The first row of each (normalised input, normalised output) pair (text.duplicate_keys, made here
    unless `keys` gives them, one per row)."""
    if keys is None:
        keys = duplicate_keys([(r.input, r.output) for r in rows])
    keep = np.zeros(len(rows), dtype=bool)
    if len(rows):
        _, first = np.unique(keys, return_index=True)
        keep[first] = True
    return keep


def filter_exact_duplicates(rows: Sequence[Row]) -> Filtered:
    """Keep the first row of each (normalised input, normalised output) pair."""
    return apply_mask(rows, exact_duplicates_mask(rows), "exact_duplicate")
