"""Loops numpy does in several passes, compiled with numba for large indexes (numpy's own for small ones).

A search over a million documents spends its time in two loops: adding each query token's BM25
posting list into the per-document scores, and taking each result group's best document score. numpy
does the first as gather, add, scatter (`out[idx] += data`) and the second with `maximum.reduceat`;
one compiled pass each is 4-7x faster at 1M documents (benchmarks/scale/RESULTS.md). Below
COMPILED_FROM elements numpy's versions run: they are fast enough there and a first compiled call
costs about a second (then cached on disk where numba can write its cache).
"""

from __future__ import annotations

import numpy as np

COMPILED_FROM = 200_000  # array length from which the compiled loops run

_compiled: dict | None = None


def _numba_kernels() -> dict:
    global _compiled
    if _compiled is None:
        try:
            import numba
        except ImportError:  # numba is a dependency; a broken install still searches, more slowly
            _compiled = {}
        else:
            @numba.njit(nogil=True, cache=True)
            def scatter_add(out, indices, data):  # pragma: no cover - compiled
                for i in range(indices.shape[0]):
                    out[indices[i]] += data[i]

            @numba.njit(nogil=True, cache=True)
            def segment_max(values, starts, out):  # pragma: no cover - compiled
                n, g = values.shape[0], starts.shape[0]
                for j in range(g):
                    lo = starts[j]
                    hi = starts[j + 1] if j + 1 < g else n
                    best = values[lo]
                    for i in range(lo + 1, hi):
                        if values[i] > best:
                            best = values[i]
                    out[j] = best

            @numba.njit(nogil=True, cache=True)
            def segment_max_of(values, take, starts, out):  # pragma: no cover - compiled
                n, g = take.shape[0], starts.shape[0]
                for j in range(g):
                    lo = starts[j]
                    hi = starts[j + 1] if j + 1 < g else n
                    best = values[take[lo]]
                    for i in range(lo + 1, hi):
                        v = values[take[i]]
                        if v > best:
                            best = v
                    out[j] = best

            @numba.njit(nogil=True, cache=True)
            def segments_reached(values, take, starts):  # pragma: no cover - compiled
                n, g = take.shape[0], starts.shape[0]
                count = 0
                for j in range(g):
                    lo = starts[j]
                    hi = starts[j + 1] if j + 1 < g else n
                    for i in range(lo, hi):
                        if np.isfinite(values[take[i]]):
                            count += 1
                            break
                return count

            _compiled = {"scatter_add": scatter_add, "segment_max": segment_max, "segment_max_of": segment_max_of,
                         "segments_reached": segments_reached}
    return _compiled


def scatter_add(out: np.ndarray, indices: np.ndarray, data: np.ndarray) -> None:
    """out[indices] += data, for indices without repeats (a posting list names a document once)."""
    fn = _numba_kernels().get("scatter_add") if len(out) >= COMPILED_FROM else None
    if fn is None:
        out[indices] += data
    else:
        fn(out, indices, data)


def segment_max(values: np.ndarray, starts: np.ndarray, take: np.ndarray | None = None) -> np.ndarray:
    """np.maximum.reduceat(values[take], starts) (`take` omitted: values itself) for ascending, non-empty
    segments starting at `starts` (starts[0] == 0); with `take`, the gather is part of the one pass."""
    n = len(values) if take is None else len(take)
    kernels = _numba_kernels() if n >= COMPILED_FROM and len(starts) else {}
    if not kernels:
        return np.maximum.reduceat(values if take is None else values[take], starts)
    out = np.empty(len(starts), dtype=values.dtype)
    if take is None:
        kernels["segment_max"](values, starts, out)
    else:
        kernels["segment_max_of"](values, take, starts, out)
    return out


def segments_reached(values: np.ndarray, take: np.ndarray, starts: np.ndarray) -> int:
    """How many segments of values[take] (as in segment_max) hold a finite value."""
    kernels = _numba_kernels() if len(take) >= COMPILED_FROM and len(starts) else {}
    if not kernels:
        return int(np.count_nonzero(np.logical_or.reduceat(np.isfinite(values[take]), starts)))
    return int(kernels["segments_reached"](values, take, starts))
