"""Speed at scale: build and query an index of 100,000 documents, against rank-bm25 in the same run.

    python benchmarks/retrieval/speed.py                 # build (or reuse) the 100k index, then query it
    python benchmarks/retrieval/speed.py --docs 20000    # a smaller run
    python benchmarks/retrieval/speed.py --root DIR      # keep the index under DIR

A build reuses the vectors of the index it replaces (only changed texts are embedded): the index is
rebuilt, incrementally, when the code that writes it changed. To time a build from nothing, delete
the index folder first; speed_results.json keeps the last such build under "build" and an
incremental one under "rebuild".

The real cards are scaled up: the catalog's 767 datasets are replicated with perturbed names and
prose (a replica number in every name, a few words of the summary dropped and shuffled), so every
replica has its own texts and vectors; nothing is shared between replicas. Each phase runs in its
own process, so memory figures are those of a process that builds, or only searches.

Writes speed_results.json next to this file. Latencies depend on what else runs on the machine:
the load average is recorded, and so is CPU time per search (all threads), which is what a search
costs on an idle core; "given vector" timings leave out encoding the query (the index alone).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import common

HERE = Path(__file__).resolve().parent


def rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return rss_mb()


class ScaledCatalog:
    """The real catalog's entries, replicated until there are `docs` documents."""

    def __init__(self, base, docs: int, seed: int = 0):
        self.location = f"benchmark://scaled-{docs}"
        rng = random.Random(seed)
        entries, total, n = [], 0, 0
        originals = base.entries()
        while total < docs:
            for e in originals:
                if total >= docs:
                    break
                entries.append(e if n == 0 else _perturb(e, n, rng))
                total += max(1, len(e.configs))
            n += 1
        self._entries = entries

    def entries(self):
        return self._entries

    def entry(self, dataset_id):
        return next(e for e in self._entries if e.id == dataset_id)

    def fingerprint(self):
        return f"{len(self._entries)}-v1"

    def load(self, dataset_id, config, split):
        from datatune.errors import DatasetLoadError

        raise DatasetLoadError("the scaled benchmark catalog has no rows")


def _perturb(e, n: int, rng: random.Random):
    words = e.summary.split()
    keep = [w for w in words if rng.random() > 0.1]
    cut = rng.randrange(len(keep) + 1) if keep else 0
    summary = " ".join(keep[cut:] + keep[:cut])
    return replace(
        e, id=f"{e.id}-r{n}", aliases=tuple(f"{a}-r{n}" for a in e.aliases),
        pretty_name=f"{e.pretty_name or e.id.split('/')[-1]} r{n}", summary=summary, has_rows=False,
    )


def queries(n: int, seed: int = 1) -> list[str]:
    """`n` distinct descriptions: the dev set's, then ones made from random cards' tags and languages
    (distinct, so a timed search never finds its query vector cached)."""
    from datatune.core.types import DatasetEntry  # noqa: F401 - the catalog import path is warm

    out = list(dict.fromkeys(q.query for q in common.dev_set()))
    rng = random.Random(seed)
    cards = [e for e in common.catalog().entries() if e.task_ids or e.task_categories]
    verbs = ["Find data to", "Train a model to", "Build a dataset for", "I need examples to"]
    while len(out) < n:
        e = rng.choice(cards)
        tag = rng.choice([*e.task_ids, *e.task_categories]).replace("-", " ")
        lang = rng.choice(["English", "French", "German", "Spanish", "Chinese", "Arabic"])
        q = f"{rng.choice(verbs)} {tag} on {rng.choice(['tweets', 'news', 'reviews', 'questions', 'dialogues'])} in {lang}."
        if q not in out:
            out.append(q)
    return out[:n]


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


# -- phases (each in its own process) --------------------------------------------------------------
def phase_build(docs: int, root: Path) -> dict:
    from retrieval_index import RetrievalIndex

    catalog = ScaledCatalog(common.catalog(), docs)
    t = time.perf_counter()
    index = RetrievalIndex.build(catalog, root=root, progress=True, samples=False)
    seconds = time.perf_counter() - t
    folder = RetrievalIndex.folder_for(catalog, root)
    disk = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    s = index.stats
    return {
        "documents": s.documents, "datasets": s.entries, "vectors": s.vectors, "embedded": s.embedded,
        "build_seconds": round(seconds, 1), "build_docs_per_s": round(s.documents / seconds, 1),
        "embedded_texts_per_s": round(s.embedded / seconds, 1) if s.embedded else None,
        "peak_rss_mb_build": round(rss_mb()), "disk_mb": round(disk / 2**20, 1),
    }


def phase_query(docs: int, root: Path, n_queries: int, n_bm25: int) -> dict:
    import numpy as np

    from retrieval_index import Filters, RetrievalIndex
    from retrieval_index.text import tokenize

    catalog = ScaledCatalog(common.catalog(), docs)
    before = current_rss_mb()
    t = time.perf_counter()
    index = RetrievalIndex.load_or_build(catalog, root=root, samples=False)
    load_s = time.perf_counter() - t
    if not index.stats.loaded:  # the code changed since the build: it was rebuilt (vectors reused); measure afresh
        sys.stdout.flush()
        os.execv(sys.executable, [sys.executable, *sys.argv])
    qs = queries(n_queries)
    enc = index.encoder
    for q in ("warm up the model", "and the index"):
        index.search(q)
    after_load = current_rss_mb()

    def timed(fn, items) -> list[float]:
        out = []
        for x in items:
            t = time.perf_counter()
            fn(x)
            out.append(time.perf_counter() - t)
        return out

    loads = {}
    enc.clear_query_cache()  # every timed end-to-end search encodes its query
    cpu0, loads["searches_start"] = time.process_time(), os.getloadavg()[0]
    lat = timed(lambda q: index.search(q, k=10), qs)
    cpu_per_query = (time.process_time() - cpu0) / len(qs)
    loads["searches_end"] = os.getloadavg()[0]
    repeat_lat = timed(lambda q: index.search(q, k=10), qs)  # the same queries again: vectors cached
    vectors = {q: enc.encode_query(q) for q in qs}
    index_lat = timed(lambda q: index.search(q, k=10, query_vector=vectors[q]), qs)  # the index alone
    lex_lat = timed(index.lexical.scores, qs)
    enc_lat = timed(enc.encode_query_uncached, qs)
    filt = Filters.make(licenses=["mit", "apache-2.0", "cc-by-4.0"], languages="en", benchmark="bigbench")
    index.search(qs[0], filters=filt)
    enc.clear_query_cache()
    flat = timed(lambda q: index.search(q, k=10, filters=filt), qs[: n_queries // 2])
    search_rss = current_rss_mb()

    # rank-bm25 over the same documents (the same tokens), in this process
    from rank_bm25 import BM25Okapi

    from retrieval_index.documents import documents_for

    t = time.perf_counter()
    corpus = [tokenize(d.lexical) or ["<empty>"] for e in catalog.entries() for d in documents_for(e)]
    tok_s = time.perf_counter() - t
    t = time.perf_counter()
    okapi = BM25Okapi(corpus)
    okapi_build = time.perf_counter() - t
    del corpus
    gc.collect()

    def okapi_top(q):
        scores = okapi.get_scores(tokenize(q))
        return np.argpartition(-scores, 10)[:10]

    loads["rank_bm25_start"] = os.getloadavg()[0]
    okapi_lat = timed(okapi_top, qs[:n_bm25])
    loads["rank_bm25_end"] = os.getloadavg()[0]
    # the two alternated query by query, so both see the same load (the search's vector not cached)
    enc.clear_query_cache()
    alt_search, alt_okapi = [], []
    for q in qs[n_queries - n_bm25:]:
        alt_search += timed(lambda q: index.search(q, k=10), [q])
        alt_okapi += timed(okapi_top, [q])
    loads["alternating_end"] = os.getloadavg()[0]
    ms = lambda xs: round(statistics.median(xs) * 1000, 2)  # noqa: E731
    med = statistics.median
    return {
        "documents": len(index), "queries": len(qs), "distinct_queries": len(set(qs)), "load_seconds": round(load_s, 2),
        "search_p50_ms": ms(lat), "search_p90_ms": round(percentile(lat, 90) * 1000, 2),
        "search_p95_ms": round(percentile(lat, 95) * 1000, 2), "search_p99_ms": round(percentile(lat, 99) * 1000, 2),
        "search_mean_ms": round(statistics.mean(lat) * 1000, 2),
        "search_cpu_ms_per_query": round(cpu_per_query * 1000, 2), "load_avg": {k: round(v, 2) for k, v in loads.items()},
        "search_cached_vector_p50_ms": ms(repeat_lat),
        "search_given_vector_p50_ms": ms(index_lat), "search_given_vector_p90_ms": round(percentile(index_lat, 90) * 1000, 2),
        "search_given_vector_p95_ms": round(percentile(index_lat, 95) * 1000, 2),
        "search_with_filters_p50_ms": ms(flat), "query_encoding_p50_ms": ms(enc_lat), "bm25s_scores_p50_ms": ms(lex_lat),
        "rank_bm25_get_scores_p50_ms": ms(okapi_lat), "rank_bm25_queries": len(okapi_lat),
        "speedup_search_vs_rank_bm25": round(med(okapi_lat) / med(lat), 1),
        "speedup_bm25s_vs_rank_bm25": round(med(okapi_lat) / med(lex_lat), 1),
        "speedup_search_given_vector_vs_rank_bm25": round(med(okapi_lat) / med(index_lat), 1),
        "alternating": {"queries": len(alt_search), "search_p50_ms": ms(alt_search), "rank_bm25_get_scores_p50_ms": ms(alt_okapi),
                        "speedup_search_vs_rank_bm25": round(med(alt_okapi) / med(alt_search), 1)},
        "rank_bm25_build_seconds": round(okapi_build, 1), "tokenize_seconds": round(tok_s, 1),
        "rss_mb_before_load": round(before), "rss_mb_loaded": round(after_load), "rss_mb_after_searches": round(search_rss),
        "index_arrays_mb": round((index.vectors.nbytes + index.lexical._data.nbytes + index.lexical._indices.nbytes) / 2**20, 1),
        "peak_rss_mb_with_rank_bm25": round(rss_mb()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--bm25-queries", type=int, default=30)
    ap.add_argument("--root", type=Path, default=None, help="index folder root (default: datatune's cache/benchmarks)")
    ap.add_argument("--phase", choices=["build", "query"], default=None)
    ap.add_argument("--rebuild", action="store_true", help="rebuild even if the index is current (reusing its vectors)")
    args = ap.parse_args()
    if args.root is None:
        from datatune.core.settings import cache_dir

        args.root = cache_dir("benchmarks", "retrieval")
    if args.phase == "build":
        print(json.dumps(phase_build(args.docs, args.root)))
        return
    if args.phase == "query":
        print(json.dumps(phase_query(args.docs, args.root, args.queries, args.bm25_queries)))
        return

    result = {"machine": {"cpus": os.cpu_count(), "load_avg_at_start": os.getloadavg()}}
    from retrieval_index import RetrievalIndex, store

    catalog = ScaledCatalog(common.catalog(), args.docs)
    folder = RetrievalIndex.folder_for(catalog, args.root)
    meta = store.read_meta(folder)
    prev = HERE / "speed_results.json"
    earlier = json.loads(prev.read_text()) if prev.is_file() else {}
    result["build"] = earlier.get("build")  # the last build that embedded every text
    if args.rebuild or meta is None or meta.get("fingerprint") != RetrievalIndex.current_fingerprint(catalog, samples=False):
        # a build reuses the vectors of the index it replaces: embedding nothing when only the code changed
        out = subprocess.run([sys.executable, __file__, "--phase", "build", "--docs", str(args.docs), "--root", str(args.root)],
                             check=True, stdout=subprocess.PIPE, text=True).stdout
        built = json.loads(out.strip().splitlines()[-1])
        result["build" if built["embedded"] == built["vectors"] else "rebuild"] = built
    out = subprocess.run([sys.executable, __file__, "--phase", "query", "--docs", str(args.docs), "--root", str(args.root),
                          "--queries", str(args.queries), "--bm25-queries", str(args.bm25_queries)],
                         check=True, stdout=subprocess.PIPE, text=True).stdout
    result["query"] = json.loads(out.strip().splitlines()[-1])
    result["machine"]["load_avg_at_end"] = os.getloadavg()
    prev.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
