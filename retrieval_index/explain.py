"""Why a hit matched: the task tags, labels, columns and languages it shares with the description.

A ranked name alone doesn't let a person judge a candidate; the matching schema parts do, and they
are what the planner will map next.
"""

from __future__ import annotations

from functools import lru_cache

from datatune.core.types import ConfigInfo, DatasetEntry

from .labels import FUNCTION_WORDS, MIN_PREFIX, label_words
from .languages import language_name
from .text import humanize, stem, tokenize, words

_GENERIC = frozenset(tokenize("text classification generation other task data"))


@lru_cache(maxsize=50_000)
def _label_parts(label: str) -> tuple[tuple[str, str], ...]:
    return tuple((w, stem(w)) for w in label_words([label]))


@lru_cache(maxsize=50_000)
def _stems(name: str) -> frozenset[str]:
    return frozenset(tokenize(humanize(name)))


def _label_hit(label: str, qwords: set[str], qstems: set[str]) -> bool:
    for lw, st in _label_parts(label):
        if lw in qwords or st in qstems:
            return True
        if len(lw) >= MIN_PREFIX and any(w.startswith(lw) for w in qwords):
            return True
    return False


def query_terms(query: str, extra_labels=()) -> tuple[set[str], set[str]]:
    """The description's words (function words left out) and stems, with the task's label words."""
    qstems = set(tokenize(query)) | {stem(w) for w in label_words(extra_labels)}
    qwords = {w for w in words(query) if w not in FUNCTION_WORDS} | label_words(extra_labels)
    return qwords, qstems


def why(query: str, entry: DatasetEntry, config: ConfigInfo | None, labels: list[str], languages: tuple[str, ...],
        extra_labels=(), entry_languages: set[str] | None = None, *,
        terms: tuple[set[str], set[str]] | None = None) -> tuple[str, ...]:
    """Short reasons, most specific first: `labels: favor, against`, `task: stance-detection`, ...

    `labels` are the config's label names (ClassLabel names and categorical values seen in its rows);
    `entry_languages`, the entry's language names in lower case, when the caller has them; `terms`,
    `query_terms(query, extra_labels)` when the caller explains several hits of one query.
    """
    qwords, qstems = terms if terms is not None else query_terms(query, extra_labels)
    out = []
    hit = [lb for lb in labels if _label_hit(lb, qwords, qstems)]
    if hit:
        out.append("labels: " + ", ".join(hit[:6]))
    tags = [t for t in dict.fromkeys((*entry.task_ids, *entry.task_categories)) if (_stems(t) & qstems) - _GENERIC]
    if tags:
        out.append("task: " + ", ".join(tags[:4]))
    if config is not None:
        cols = [f.name for f in config.features if _stems(f.name) & qstems]
        if cols:
            out.append("columns: " + ", ".join(cols[:5]))
    have = entry_languages if entry_languages is not None else {language_name(x).lower() for x in entry.languages}
    langs = [x for x in languages if x.lower() in have]
    if langs:
        out.append("language: " + ", ".join(langs))
    return tuple(out)
