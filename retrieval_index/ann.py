"""Approximate nearest neighbours for the dense rankers, with faiss (IVF, flat lists), above a size where it pays.

Below `EXACT_BELOW` vectors the index scores every vector (dense.ScoringMatrix: exact, and faster
there); from it on, each dense role (dataset descriptions, config task sentences) has its own
inverted-file index, and a search reads its candidates, rescored with the same ScoringMatrix kernel
the exact path uses, so a candidate's cosine is the exact path's to the bit and the two paths differ
only in which rows they score. Rows that aren't candidates are absent (-inf) for the rankers.

Lists are keyed by the hash of the text behind each vector (stable across builds), so a rebuild
after a catalog change removes the keys that went and adds the ones that came (the centroids are
kept); an index that lost more than `REBUILD_SHARE` of its keys, or grew past `REBUILD_GROWTH`
times the size it was trained at, is retrained from the (cached) vectors.

Why IVF and not HNSW: on the 1M-document benchmark (benchmarks/scale/RESULTS.md) usearch's HNSW
(int8, f16 or f32; connectivity 32, expansion 1,600) found only 54-65% of the exact top 10 task
sentences: ~200 near-copies of each card form tight clusters that an HNSW walk doesn't leave.
IVF with 1,024 to 2,048 lists and 32 probed found all of them in 0.3-0.5 ms.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from .dense import DIM

EXACT_BELOW = 100_000  # vectors: below this the exact product is faster (benchmarks/scale/RESULTS.md, crossover)
NPROBE = 32  # lists read per search
REBUILD_SHARE = 0.25
REBUILD_GROWTH = 4.0
ROLES = ("dense", "task")


def keys_for(hashes: Sequence[str]) -> np.ndarray:
    """faiss ids (int64, non-negative) from text hashes (hex): the first 15 hex digits."""
    return np.fromiter((int(h[:15], 16) for h in hashes), dtype=np.int64, count=len(hashes))


def lists_for(n: int) -> int:
    return int(max(1, min(4096, 4 * np.sqrt(max(n, 1)), n // 8)))


class AnnRole:
    """One inverted-file index over some rows of the index's vector matrix, keyed by text hash."""

    def __init__(self, index, rows: np.ndarray, keys: np.ndarray, trained_at: int):
        self.index = index
        self.rows = np.asarray(rows, dtype=np.int64)  # matrix rows in the index
        order = np.argsort(keys, kind="stable")
        self._sorted_keys = keys[order]
        self._sorted_rows = self.rows[order]
        self.trained_at = trained_at
        self.added = 0
        self.removed = 0
        self.reused = 0

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def memory_mb(self) -> float:
        return round(self.index.ntotal * (DIM * 4 + 8) / 2**20 + self.index.nlist * DIM * 4 / 2**20, 1)

    @staticmethod
    def new_index(vectors: np.ndarray):
        import faiss

        nlist = lists_for(len(vectors))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(DIM), DIM, nlist, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(0)
        sample = vectors if len(vectors) <= 40 * nlist else vectors[np.sort(rng.choice(len(vectors), 40 * nlist, replace=False))]
        index.train(np.ascontiguousarray(sample, dtype=np.float32))
        index.nprobe = NPROBE
        return index

    @classmethod
    def build(cls, vectors: np.ndarray, rows: np.ndarray, hashes: Sequence[str], previous=None, threads: int = 0) -> "AnnRole":
        """The index over `rows` of `vectors` (`hashes[i]`: the text hash of matrix row i); `previous`:
        (faiss index, size it was trained at) of an earlier build, whose keys still present are kept."""
        import faiss

        rows = np.asarray(rows, dtype=np.int64)
        keys = keys_for([hashes[r] for r in rows.tolist()])
        if np.unique(keys).size != keys.size:
            raise ValueError("two texts share a 60-bit key")
        index, removed, reused, trained_at, have = None, 0, 0, len(rows), np.zeros(0, dtype=np.int64)
        if previous is not None and previous[0].ntotal:
            old_index, old_trained = previous
            old = _ids(old_index)
            gone = old[~np.isin(old, keys)]
            if gone.size <= REBUILD_SHARE * old.size and len(rows) <= REBUILD_GROWTH * old_trained:
                index, trained_at = old_index, old_trained
                if gone.size:
                    index.remove_ids(gone)
                removed, reused = int(gone.size), int(old.size - gone.size)
                have = old[np.isin(old, keys)]
        if index is None:
            index = cls.new_index(vectors[rows])
        todo = ~np.isin(keys, have)
        if todo.any():
            if threads:
                faiss.omp_set_num_threads(threads)
            index.add_with_ids(np.ascontiguousarray(vectors[rows[todo]], dtype=np.float32), keys[todo])
        role = cls(index, rows, keys, trained_at)
        role.added, role.removed, role.reused = int(todo.sum()), removed, reused
        return role

    def candidates(self, vector: np.ndarray, k: int) -> np.ndarray:
        """Matrix rows of the (approximately) `k` nearest vectors."""
        import faiss

        k = min(k, len(self.rows))
        faiss.omp_set_num_threads(1)  # one query: OpenMP's threads would spin-wait on a busy machine
        _, ids = self.index.search(np.asarray(vector, dtype=np.float32)[None], k)
        keys = ids[0][ids[0] >= 0]
        pos = np.minimum(np.searchsorted(self._sorted_keys, keys), len(self._sorted_keys) - 1)
        return self._sorted_rows[pos[self._sorted_keys[pos] == keys]]


class AnnSet:
    """The inverted-file indexes of one index, one per dense role; saved as <folder>/<role>.faiss."""

    def __init__(self, roles: dict[str, AnnRole]):
        self.roles = roles

    def __getitem__(self, role: str) -> AnnRole:
        return self.roles[role]

    @property
    def stats(self) -> dict:
        return {name: {"vectors": len(r), "added": r.added, "removed": r.removed, "reused": r.reused,
                       "lists": r.index.nlist, "memory_mb": r.memory_mb} for name, r in self.roles.items()}

    @classmethod
    def build(cls, vectors: np.ndarray, role_rows: dict[str, np.ndarray], hashes: Sequence[str],
              previous: Path | None = None, threads: int = 0) -> "AnnSet":
        roles = {}
        for name, rows in role_rows.items():
            prev = _restore(previous / f"{name}.faiss") if previous is not None else None
            roles[name] = AnnRole.build(vectors, rows, hashes, prev, threads)
        return cls(roles)

    def save(self, folder: Path) -> None:
        import faiss

        folder.mkdir(parents=True, exist_ok=True)
        for name, r in self.roles.items():
            faiss.write_index(r.index, str(folder / f"{name}.faiss"))
            (folder / f"{name}.trained").write_text(str(r.trained_at))

    @classmethod
    def load(cls, folder: Path, role_rows: dict[str, np.ndarray], hashes: Sequence[str]) -> "AnnSet | None":
        """The saved indexes; None when one is missing or doesn't hold exactly these rows."""
        roles = {}
        for name, rows in role_rows.items():
            got = _restore(folder / f"{name}.faiss")
            if got is None or got[0].ntotal != len(rows):
                return None
            rows = np.asarray(rows, dtype=np.int64)
            keys = keys_for([hashes[r] for r in rows.tolist()])
            if not np.array_equal(np.sort(_ids(got[0])), np.sort(keys)):
                return None
            got[0].nprobe = NPROBE
            roles[name] = AnnRole(got[0], rows, keys, got[1])
        return cls(roles)


def _ids(index) -> np.ndarray:
    """Every id stored in an IVF index's lists."""
    import faiss

    invlists = index.invlists
    out = [faiss.rev_swig_ptr(invlists.get_ids(i), invlists.list_size(i)).copy() for i in range(index.nlist) if invlists.list_size(i)]
    return np.concatenate(out).astype(np.int64) if out else np.zeros(0, dtype=np.int64)


def _restore(path: Path):
    """(index, size it was trained at), or None when missing or unreadable."""
    if not path.is_file():
        return None
    import faiss

    try:
        index = faiss.read_index(str(path))
        trained = int((path.with_suffix(".trained")).read_text())
    except Exception:  # noqa: BLE001 - an unreadable index is rebuilt from the vectors
        return None
    if index.d != DIM or not hasattr(index, "invlists"):
        return None
    return index, trained
