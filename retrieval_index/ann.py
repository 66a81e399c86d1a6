"""Approximate nearest neighbours for the dense rankers, with usearch (HNSW), above a size where it pays.

Below `EXACT_BELOW` vectors the index scores every vector (dense.ScoringMatrix: exact, and faster
there); from it on, each dense role (dataset descriptions, config task sentences) has its own HNSW
graph, and a search reads the graph's candidates, rescored with the same ScoringMatrix kernel the
exact path uses, so a candidate's cosine is the exact path's to the bit and the two paths differ
only in which rows they score. Rows that aren't candidates are absent (-inf) for the rankers.

Graphs are keyed by the hash of the text behind each vector (stable across builds), so a rebuild
after a catalog change removes the keys that went and adds the ones that came, instead of
rebuilding the graph; a graph that lost more than `REBUILD_SHARE` of its keys is rebuilt from the
(cached) vectors. Saved graphs are memory-mapped when an index is loaded.

Parameters (int8 graph vectors, connectivity 32, expansion 256 at add, 1,600 at search) were
chosen in benchmarks/scale/index.py: on the replicated catalog, whose ~200 near-copies of each
card make a hard case for HNSW, connectivity 16 or search expansion 800 leave 2-5% of the exact
top 200 out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from .dense import DIM

EXACT_BELOW = 100_000  # vectors: below this the exact product is faster (benchmarks/scale/RESULTS.md, crossover)
CONNECTIVITY = 32
EXPANSION_ADD = 256
EXPANSION_SEARCH = 1600
DTYPE = "i8"
REBUILD_SHARE = 0.25
ROLES = ("dense", "task")


def keys_for(hashes: Sequence[str]) -> np.ndarray:
    """usearch keys (uint64) from text hashes (hex): the first 16 hex digits."""
    return np.fromiter((int(h[:16], 16) for h in hashes), dtype=np.uint64, count=len(hashes))


class AnnRole:
    """One HNSW graph over some rows of the index's vector matrix, keyed by text hash."""

    def __init__(self, graph, rows: np.ndarray, keys: np.ndarray):
        self.graph = graph
        self.rows = np.asarray(rows, dtype=np.int64)  # matrix rows in the graph
        order = np.argsort(keys, kind="stable")
        self._sorted_keys = keys[order]
        self._sorted_rows = self.rows[order]
        self.added = 0
        self.removed = 0
        self.reused = 0

    def __len__(self) -> int:
        return len(self.rows)

    @staticmethod
    def new_graph():
        from usearch.index import Index

        return Index(ndim=DIM, metric="ip", dtype=DTYPE, connectivity=CONNECTIVITY, expansion_add=EXPANSION_ADD,
                     expansion_search=EXPANSION_SEARCH)

    @classmethod
    def build(cls, vectors: np.ndarray, rows: np.ndarray, hashes: Sequence[str], previous=None, threads: int = 0) -> "AnnRole":
        """The graph over `rows` of `vectors` (`hashes[i]`: the text hash of matrix row i); `previous`:
        a usearch Index of an earlier build (writable), whose keys still present are kept."""
        rows = np.asarray(rows, dtype=np.int64)
        keys = keys_for([hashes[r] for r in rows.tolist()])
        if np.unique(keys).size != keys.size:
            raise ValueError("two texts share a 64-bit key")
        graph, removed, reused = None, 0, 0
        if previous is not None and len(previous):
            old = np.asarray(previous.keys, dtype=np.uint64)
            gone = old[~np.isin(old, keys)]
            if gone.size <= REBUILD_SHARE * old.size:
                graph = previous
                if gone.size:
                    graph.remove(gone)
                removed, reused = int(gone.size), int(old.size - gone.size)
        if graph is None:
            graph = cls.new_graph()
        todo = ~np.isin(keys, np.asarray(graph.keys, dtype=np.uint64)) if len(graph) else np.ones(keys.size, dtype=bool)
        if todo.any():
            graph.add(keys[todo], np.ascontiguousarray(vectors[rows[todo]], dtype=np.float32), threads=threads)
        role = cls(graph, rows, keys)
        role.added, role.removed, role.reused = int(todo.sum()), removed, reused
        return role

    def candidates(self, vector: np.ndarray, k: int) -> np.ndarray:
        """Matrix rows of the (approximately) `k` nearest vectors."""
        k = min(k, len(self.rows))
        if self.graph.expansion_search < k:
            self.graph.expansion_search = k
        found = self.graph.search(np.asarray(vector, dtype=np.float32), k, threads=1)
        keys = np.asarray(found.keys, dtype=np.uint64)
        pos = np.searchsorted(self._sorted_keys, keys)
        pos = np.minimum(pos, len(self._sorted_keys) - 1)
        ok = self._sorted_keys[pos] == keys  # keys removed from a viewed graph can't come back, but be safe
        return self._sorted_rows[pos[ok]]


class AnnSet:
    """The HNSW graphs of one index, one per dense role; saved as <folder>/<role>.usearch."""

    def __init__(self, roles: dict[str, AnnRole]):
        self.roles = roles

    def __getitem__(self, role: str) -> AnnRole:
        return self.roles[role]

    @property
    def stats(self) -> dict:
        return {name: {"vectors": len(r), "added": r.added, "removed": r.removed, "reused": r.reused,
                       "memory_mb": round(r.graph.memory_usage / 2**20, 1)} for name, r in self.roles.items()}

    @classmethod
    def build(cls, vectors: np.ndarray, role_rows: dict[str, np.ndarray], hashes: Sequence[str],
              previous: Path | None = None, threads: int = 0) -> "AnnSet":
        roles = {}
        for name, rows in role_rows.items():
            prev = _restore(previous / f"{name}.usearch", view=False) if previous is not None else None
            roles[name] = AnnRole.build(vectors, rows, hashes, prev, threads)
        return cls(roles)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for name, r in self.roles.items():
            r.graph.save(str(folder / f"{name}.usearch"))

    @classmethod
    def load(cls, folder: Path, role_rows: dict[str, np.ndarray], hashes: Sequence[str]) -> "AnnSet | None":
        """The saved graphs, memory-mapped; None when one is missing or doesn't hold exactly these rows."""
        roles = {}
        for name, rows in role_rows.items():
            graph = _restore(folder / f"{name}.usearch", view=True)
            if graph is None or len(graph) != len(rows):
                return None
            rows = np.asarray(rows, dtype=np.int64)
            keys = keys_for([hashes[r] for r in rows.tolist()])
            if not bool(np.all(graph.contains(keys))):
                return None
            graph.expansion_search = EXPANSION_SEARCH
            roles[name] = AnnRole(graph, rows, keys)
        return cls(roles)


def _restore(path: Path, *, view: bool):
    if not path.is_file():
        return None
    from usearch.index import Index

    try:
        graph = Index.restore(str(path), view=view)
    except Exception:  # noqa: BLE001 - an unreadable graph is rebuilt from the vectors
        return None
    if graph is None or graph.ndim != DIM:
        return None
    return graph
