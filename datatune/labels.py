"""Match a source dataset's label names to the task's target labels, in code.

Measured (DESIGN.md): normalised exact match, then unique prefix, then string similarity >= 0.75
mapped every classification dataset in ../shared/hub correctly, and a label set that doesn't fit
(news topics for a sentiment task) maps to nothing, which makes the plan a reject.
"""

from __future__ import annotations

import re

from rapidfuzz import fuzz

# Pairs of names that mean the same label but share no spelling.
SYNONYMS = {
    "true": "yes", "false": "no", "yes": "true", "no": "false",
    "pos": "positive", "neg": "negative", "positive": "pos", "negative": "neg",
    "да": "yes", "нет": "no",
    "entailment": "entailed", "not_entailment": "not entailed",
}


def norm(label: str) -> str:
    return re.sub(r"[^0-9a-zа-яё]+", " ", str(label).lower()).strip()


def match_label(source: str, targets: list[str], *, min_similarity: float = 0.75) -> str | None:
    """The target label a source label name stands for, or None."""
    s = norm(source)
    if not s:
        return None
    normed = {norm(t): t for t in targets}
    if s in normed:
        return normed[s]
    syn = SYNONYMS.get(s)
    if syn and norm(syn) in normed:
        return normed[norm(syn)]
    prefix = [t for n, t in normed.items() if n.startswith(s) or s.startswith(n)]
    if len(prefix) == 1 and min(len(s), len(norm(prefix[0]))) >= 3:
        return prefix[0]
    # a word of one is the start of a word of the other: "Sci/Tech" ~ "Technology"
    words = [w for w in s.split() if len(w) >= 3]
    by_word = [t for n, t in normed.items() if any(tw.startswith(w) or w.startswith(tw) for w in words for tw in n.split() if len(tw) >= 3)]
    if len(by_word) == 1:
        return by_word[0]
    best, score = None, 0.0
    for n, t in normed.items():
        sc = fuzz.ratio(s, n) / 100
        if sc > score:
            best, score = t, sc
    return best if score >= min_similarity else None


def match_labels(source_labels: list[str], targets: list[str]) -> dict[str, str]:
    """Map each source label to a target label where one fits; no two targets share... one source label each."""
    mapping = {}
    for s in source_labels:
        t = match_label(s, targets)
        if t is not None:
            mapping[str(s)] = t
    # a target claimed by several source labels is only trusted when the match is exact
    by_target: dict[str, list[str]] = {}
    for s, t in mapping.items():
        by_target.setdefault(t, []).append(s)
    for t, sources in by_target.items():
        if len(sources) > 1:
            exact = [s for s in sources if norm(s) == norm(t)]
            for s in sources:
                if s not in exact:
                    mapping.pop(s)
    return mapping
