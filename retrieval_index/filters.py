"""Filters and exclusions: which documents may be candidates at all.

Filters are hard constraints (a licence the user can't use is not a weaker match, it is no match), so
they are applied before ranking, as a boolean mask over documents. The benchmark guard keeps copies of
the benchmark a task comes from out of the candidates: training on the test set is not a source.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from datatune.core.types import DatasetEntry

from .languages import language_name


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _tuple(v: str | Iterable[str] | None) -> tuple[str, ...]:
    if v is None:
        return ()
    if isinstance(v, str):
        return (v,)
    return tuple(v)


@dataclass(frozen=True)
class Filters:
    """All fields optional; a list field passes an entry that has any of the values.

    licenses: SPDX-like card ids (`mit`, `apache-2.0`, `cc-by-4.0`); languages: codes or names;
    task_categories: Hub task categories or task ids (`text-classification`, `extractive-qa`);
    size_categories: Hub size buckets (`10K<n<100K`); min_rows / max_rows: rows of the config, all splits;
    exclude: names (id, short id or alias) never to return; benchmark: a benchmark name whose copies are
    excluded (`bigbench` also removes `tasksource/bigbench`, `BIG-bench-lite`, ...); has_rows: only
    datasets whose rows the catalog can load.
    """

    licenses: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    task_categories: tuple[str, ...] = ()
    size_categories: tuple[str, ...] = ()
    min_rows: int | None = None
    max_rows: int | None = None
    exclude: tuple[str, ...] = ()
    benchmark: str | None = None
    has_rows: bool | None = None

    @classmethod
    def make(cls, **kw) -> "Filters":
        """Like the constructor, but accepts a string where a tuple is expected."""
        for k in ("licenses", "languages", "task_categories", "size_categories", "exclude"):
            if k in kw:
                kw[k] = _tuple(kw[k])
        return cls(**kw)

    def __bool__(self) -> bool:
        return self != Filters()

    def allows_entry(self, e: DatasetEntry) -> bool:
        if self.licenses and not {x.lower() for x in e.licenses} & {x.lower() for x in self.licenses}:
            return False
        if self.languages:
            want = {language_name(x).lower() for x in self.languages}
            if not {language_name(x).lower() for x in e.languages} & want:
                return False
        if self.task_categories:
            want = {_norm(x) for x in self.task_categories}
            if not {_norm(x) for x in (*e.task_categories, *e.task_ids)} & want:
                return False
        if self.size_categories and not set(e.size_categories) & set(self.size_categories):
            return False
        if self.has_rows is not None and e.has_rows != self.has_rows:
            return False
        if self.exclude and {n.lower() for n in e.names} & {x.lower() for x in self.exclude}:
            return False
        if self.benchmark and is_copy_of(e, self.benchmark):
            return False
        return True

    def allows_rows(self, num_rows: int) -> bool:
        if self.min_rows is not None and num_rows < self.min_rows:
            return False
        if self.max_rows is not None and num_rows > self.max_rows:
            return False
        return True


def is_copy_of(entry: DatasetEntry, benchmark: str) -> bool:
    """True when any name of the entry (or its pretty name) contains the benchmark's name."""
    b = _norm(benchmark.split("/")[-1])
    if not b:
        return False
    return any(b in _norm(n) for n in (*entry.names, entry.pretty_name))


def document_mask(
    filters: Filters, entries: Sequence[DatasetEntry], doc_entry: np.ndarray, doc_rows: np.ndarray
) -> np.ndarray:
    """Boolean mask over documents; `doc_entry[i]` is the index of document i's entry, `doc_rows[i]` its rows."""
    allowed = np.fromiter((filters.allows_entry(e) for e in entries), dtype=bool, count=len(entries))
    mask = allowed[doc_entry]
    if filters.min_rows is not None:
        mask &= doc_rows >= filters.min_rows
    if filters.max_rows is not None:
        mask &= doc_rows <= filters.max_rows
    return mask
