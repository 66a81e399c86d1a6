"""Retrieval by rows: the task's example inputs against real values of each config that has rows.

A definition can say little that a card says ("Craft one correct answer to the question given in
input" names neither stories nor commonsense; openbookqa's card speaks of 'open book' exams), while
the examples look like the rows. Measured with MiniLM over ../shared/hub (mean over examples of the
best cosine to 48 row texts): on the 12 Super-NaturalInstructions tasks with rows, the task's own
source ranked first among 44 datasets in 9 and within the top 3 in all 12; against the definition
instead it ranked first in 1. So, when a task has examples, the configs whose sampled values are
nearest the examples join the card ranking by reciprocal-rank fusion.
"""

from __future__ import annotations

import numpy as np

RRF_K = 5.0
ROWS_WEIGHT = 0.7  # measured on the SNI definitions: hit@10 0.71 -> 0.81, MRR@10 0.667 -> 0.663 (cards alone vs fused)
MIN_CHARS = 12  # ids, labels and numbers are not rows
# a config joins the fusion only when its rows stand out from the catalog's (z-score of its score among
# every config's for this query): first place among rows that are all far is chance (news rows for
# an MRPC task whose own config has no rows here). Measured on the SNI definitions: MRR@10 0.684 ->
# 0.694 and hit@5 0.76 -> 0.86; 2.0 and 2.5 gave the same ranks.
MIN_Z = 2.5
# Hubness: a config with many short, varied values (cosmos_qa's answers) is near any example by
# chance, and topped the rows for a poem-sentiment task. Each config's score is lowered by its mean
# best cosine to other configs' values (CSLS, Conneau et al. 2018), at this weight: chosen on fold A
# of the SNI definitions (0.5 and 1.0 tied there; 1.0 cost ARC its first place on fold B): MRR@10
# 0.714 -> 0.722 (poem_sentiment 3rd -> 2nd), nothing else moved. Tasks without examples don't use rows.
HUBNESS_WEIGHT = 0.5
HUBNESS_REFERENCES = 3  # values drawn from each config as the reference queries


class RowMatcher:
    """Sampled values of every config with rows, embedded once per index."""

    def __init__(self, index):
        self.index = index
        self.keys: list[tuple[str, str]] = []
        owners: list[int] = []
        texts: list[str] = []
        for entry_id, configs in index.samples.items():
            for config, sample in configs.items():
                values = [v.strip() for v in str(sample.get("text", "")).split(" | ") if len(v.strip()) >= MIN_CHARS]
                if not values:
                    continue
                self.keys.append((entry_id, config))
                owners += [len(self.keys) - 1] * len(values)
                texts += values
        self.owner = np.asarray(owners, dtype=np.int64)
        self.vectors = np.asarray(index.encoder.encode(texts), dtype=np.float32) if texts else np.zeros((0, 1), np.float32)
        self.hubness = self._hubness()

    def _hubness(self) -> np.ndarray:
        """Per config, its mean best cosine to values drawn from the other configs (seeded)."""
        n = len(self.keys)
        if n < 2:
            return np.zeros(n, dtype=np.float32)
        rng = np.random.default_rng(0)
        starts = np.searchsorted(self.owner, np.arange(n + 1))  # values are grouped by owner, in order
        picks = np.asarray([rng.integers(starts[c], starts[c + 1]) for c in range(n) for _ in range(HUBNESS_REFERENCES)])
        best = self._best(self.vectors[picks])
        best[self.owner[picks], np.arange(picks.size)] = np.nan  # a config is not its own reference
        return np.nanmean(best, axis=1).astype(np.float32)

    def _best(self, queries: np.ndarray) -> np.ndarray:
        """configs x queries: each config's best cosine over its values."""
        best = np.full((len(self.keys), len(queries)), -1.0, dtype=np.float32)
        np.maximum.at(best, self.owner, self.vectors @ queries.T)
        return best

    def scores(self, examples: list[str]) -> dict[tuple[str, str], float]:
        """(dataset, config) -> mean over examples of the best cosine to one of its values, less its hubness."""
        if not examples or not self.keys:
            return {}
        ex = np.asarray(self.index.encoder.encode([e[:600] for e in examples]), dtype=np.float32)
        score = self._best(ex).mean(axis=1) - HUBNESS_WEIGHT * self.hubness
        return {k: float(score[i]) for i, k in enumerate(self.keys)}


def fuse(hits: list, examples: list[str], matcher: RowMatcher, *, lookup, depth: int = 10, weight: float = ROWS_WEIGHT,
         min_z: float = MIN_Z) -> list:
    """Card hits and the configs nearest the examples, by reciprocal-rank fusion (one result per dataset and config).

    `lookup(dataset_id, config)` makes a hit for a config the card ranking did not return (or None).
    """
    scores = matcher.scores(examples)
    if not scores:
        return hits
    values = np.fromiter(scores.values(), dtype=np.float64)
    mean, std = float(values.mean()), float(values.std()) or 1.0
    floor = mean + min_z * std  # near the examples compared with the rest of the catalog, not only first of it
    by_rows = [k for k in sorted(scores, key=lambda k: -scores[k])[:depth] if scores[k] >= floor]
    fused: dict[tuple[str, str], float] = {}
    found = {(h.dataset_id, h.config): h for h in hits}
    for r, h in enumerate(hits, 1):
        fused[(h.dataset_id, h.config)] = 1.0 / (RRF_K + r)
    for r, key in enumerate(by_rows, 1):
        if key not in found:
            # a config of a dataset already found under another config counts for that hit
            same = next((k for k in found if k[0] == key[0] and key[1] in found[k].configs), None)
            if same is not None:
                key = same
            else:
                h = lookup(*key)
                if h is None:
                    continue
                found[key] = h
        fused[key] = fused.get(key, 0.0) + weight / (RRF_K + r)
    return [found[k] for k in sorted(fused, key=lambda k: -fused[k])]
