"""The cheap filters, run first: empty, too long, label outside the set, exact duplicates."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Sequence

from ..records import Row
from .text import normalize_text

Filtered = tuple[list[Row], Counter]


def filter_empty(rows: Sequence[Row]) -> Filtered:
    kept = [r for r in rows if (r.input or "").strip() and (r.output or "").strip()]
    return kept, Counter({"empty": len(rows) - len(kept)})


def filter_too_long(rows: Sequence[Row], *, max_input_chars: int = 10_000, max_output_chars: int = 5_000) -> Filtered:
    kept = [r for r in rows if len(r.input or "") <= max_input_chars and len(r.output or "") <= max_output_chars]
    return kept, Counter({"too_long": len(rows) - len(kept)})


_LABEL_STRIP = " \t\r\n\"'`.()[]{}:;,"


def _label_key(text: str) -> str:
    return normalize_text(text).strip(_LABEL_STRIP)


def filter_labels(rows: Sequence[Row], labels: Sequence[str], *, canonicalize: bool = True) -> Filtered:
    """Drop rows whose output is not one of `labels` (compared case-, space- and bracket-insensitively).

    With `canonicalize`, a kept row's output is rewritten to the label's own spelling ("(A)" -> "A").
    An empty label set keeps everything.
    """
    if not labels:
        return list(rows), Counter({"label_outside_set": 0})
    canon = {}
    for label in labels:
        canon.setdefault(_label_key(label), label)
    kept = []
    for r in rows:
        label = canon.get(_label_key(r.output or ""))
        if label is None:
            continue
        kept.append(replace(r, output=label) if canonicalize and r.output != label else r)
    return kept, Counter({"label_outside_set": len(rows) - len(kept)})


def filter_exact_duplicates(rows: Sequence[Row]) -> Filtered:
    """Keep the first row of each (normalised input, normalised output) pair."""
    seen: set[tuple[str, str]] = set()
    kept = []
    for r in rows:
        key = (normalize_text(r.input), normalize_text(r.output))
        if key in seen:
            continue
        seen.add(key)
        kept.append(r)
    return kept, Counter({"exact_duplicate": len(rows) - len(kept)})
