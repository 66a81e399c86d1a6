"""The retrieval index at Hub scale: 100k and 1M documents, approximate (faiss IVF) vs exact dense search.

    python benchmarks/scale/index.py --docs 100000 --docs 1000000    # build (or reuse) each, then query
    python benchmarks/scale/index.py --docs 1000000 --phase query    # query an index built before

Documents are the real catalog's cards replicated with perturbed names and prose, as
benchmarks/retrieval/speed.py does (its ScaledCatalog). MiniLM embeds 31 texts/s on this CPU, so
the vectors of replicas are *generated*, not embedded (`SyntheticEncoder`):

- every text of an original card (replica 0) gets its real MiniLM vector (taken from the real
  catalog's index where the text is the same, encoded here otherwise);
- a replica's text gets the real vector of the same text of its original card plus Gaussian noise,
  renormalised, with the noise drawn so that its cosine to the original follows the distribution
  measured on real replicas: `calibrate` encodes 60 random cards' dense texts and task sentences at
  replicas 1 and 7 with MiniLM and records cos(original, replica) per role;
- task tags are not perturbed by the replication, so their (real) vectors are shared.

Queries are real: 200 distinct descriptions (the dev set's and generated ones, speed.py's `queries`),
encoded by MiniLM on every search (the query cache is cleared). Each phase runs in its own process
(memory figures are those of a process that builds, or that only searches). Writes
results_index.json next to this file and prints it; RESULTS.md's Index section is written from it
by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "benchmarks" / "retrieval"))
sys.path.insert(0, str(ROOT))

import common  # noqa: E402
import speed  # noqa: E402  (ScaledCatalog, _perturb, queries, percentile)

from retrieval_index.dense import DIM, Encoder  # noqa: E402


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return rss_mb()


# -- calibration: how far a replica's real vector is from its original's ----------------------------
def calibrate(out: Path, cards: int = 60, seed: int = 5) -> dict:
    import random

    from retrieval_index.documents import documents_for

    if out.is_file():
        return json.loads(out.read_text())
    rng = random.Random(seed)
    pick = rng.sample(common.catalog().entries(), cards)
    orig, rep, roles = [], [], []
    for e in pick:
        d0 = documents_for(e)
        for n in (1, 7):
            d1 = documents_for(speed._perturb(e, n, random.Random(n * 7919 + pick.index(e))))
            seen = set()
            for a, b in zip(d0, d1):
                for role, x, y in (("dense", a.dense, b.dense), ("task", a.task, b.task)):
                    if (role, x) not in seen:
                        seen.add((role, x))
                        orig.append(x), rep.append(y), roles.append(role)
    enc = Encoder()
    cos = (enc.encode(orig) * enc.encode(rep)).sum(1)
    roles = np.asarray(roles)
    result = {"cards": cards, "texts": len(orig),
              "cos": {r: sorted(float(c) for c in cos[roles == r]) for r in ("dense", "task")}}
    out.write_text(json.dumps(result))
    return result


class SyntheticEncoder(Encoder):
    """Real MiniLM vectors for the original cards' texts, calibrated perturbations of them for replicas."""

    def __init__(self, base_vectors: dict[str, np.ndarray], origin: dict[str, tuple[str, str]], cos: dict[str, list[float]]):
        super().__init__()
        self.base = base_vectors  # text hash -> real vector
        self.origin = origin  # replica text hash -> (original text, role)
        self.cos = {r: np.asarray(c) for r, c in cos.items()}
        self.real_encoded = 0
        self.generated = 0

    def encode(self, texts, *, progress=None):
        from retrieval_index.text import text_hash

        out = np.zeros((len(texts), DIM), dtype=np.float32)
        hashes = [text_hash(t) for t in texts]
        need = {}  # texts that need a real vector: originals not in the real index (or unknown texts)
        for t, h in zip(texts, hashes):
            src = self.origin.get(h)
            x, xh = (src[0], text_hash(src[0])) if src else (t, h)
            if xh not in self.base:
                need[xh] = x
        if need:
            vecs = super().encode(list(need.values()))
            self.real_encoded += len(need)
            self.base.update(zip(need, vecs))
        for i, (t, h) in enumerate(zip(hashes, hashes)):
            src = self.origin.get(h)
            if src is None:
                out[i] = self.base[h]
                continue
            v = self.base[text_hash(src[0])]
            rng = np.random.default_rng(int(h[:15], 16))
            c = rng.choice(self.cos[src[1]])
            s = np.sqrt(max(1 / c**2 - 1, 0.0))
            x = v + s * rng.standard_normal(DIM).astype(np.float32) / np.sqrt(DIM)
            out[i] = x / np.linalg.norm(x)
            self.generated += 1
        if progress:
            progress(len(texts))
        return out


def scaled_catalog(docs: int):
    return speed.ScaledCatalog(common.catalog(), docs)


def synthetic_encoder(catalog, calibration: dict) -> SyntheticEncoder:
    from retrieval_index import RetrievalIndex, store
    from retrieval_index.documents import documents_for
    from retrieval_index.text import text_hash

    real = common.index(progress=False)  # the real catalog's index (built with MiniLM if not cached)
    folder = RetrievalIndex.folder_for(common.catalog())
    keys = store.read_meta(folder)["row_keys"]
    base = {k: real.vectors[i] for i, k in enumerate(keys)}
    originals = {e.id: e for e in common.catalog().entries()}
    origin: dict[str, tuple[str, str]] = {}
    for e in catalog.entries():
        stem, _, n = e.id.rpartition("-r")
        if not (stem in originals and n.isdigit()):
            continue
        for a, b in zip(documents_for(originals[stem]), documents_for(e)):
            origin.setdefault(text_hash(b.dense), (a.dense, "dense"))
            if b.task != a.task:
                origin.setdefault(text_hash(b.task), (a.task, "task"))
    return SyntheticEncoder(base, origin, calibration["cos"])


# -- phases ---------------------------------------------------------------------------------------
def phase_build(docs: int, root: Path, calibration: dict) -> dict:
    from retrieval_index import RetrievalIndex

    catalog = scaled_catalog(docs)
    t = time.perf_counter()
    enc = synthetic_encoder(catalog, calibration)
    prep = time.perf_counter() - t
    t = time.perf_counter()
    index = RetrievalIndex.build(catalog, root=root, progress=False, samples=False, encoder=enc)
    seconds = time.perf_counter() - t
    folder = RetrievalIndex.folder_for(catalog, root)
    disk = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    s = index.stats
    added = sum(r["added"] for r in (s.ann or {}).values())
    return {
        "documents": s.documents, "datasets": s.entries, "vectors": s.vectors, "generated_vectors": enc.generated,
        "real_vectors_encoded_now": enc.real_encoded, "vectors_reused": s.reused, "dense_mode": index.dense_mode,
        "vector_map_seconds": round(prep, 1), "build_seconds": round(seconds, 1), "build_docs_per_s": round(s.documents / seconds, 1),
        "ann": s.ann, "ann_seconds": round(s.ann_seconds, 1),
        "ann_add_vectors_per_s": round(added / s.ann_seconds, 1) if added else None,
        "peak_rss_mb_build": round(rss_mb()), "disk_mb": round(disk / 2**20, 1),
    }


def phase_query(docs: int, root: Path, n_queries: int) -> dict:
    from retrieval_index import RetrievalIndex

    catalog = scaled_catalog(docs)
    before = current_rss_mb()
    t = time.perf_counter()
    folder = RetrievalIndex.folder_for(catalog, root)
    # loaded as built, even when code that writes documents changed since (a rebuild would embed with MiniLM)
    index = RetrievalIndex.load(folder, encoder=Encoder())
    load_s = time.perf_counter() - t
    qs = speed.queries(n_queries)
    enc = index.encoder
    for q in ("warm up the model", "and the index"):
        index.search(q)
    loaded_rss = current_rss_mb()
    result = {"documents": len(index), "vectors": len(index.vectors), "queries": len(qs), "load_seconds": round(load_s, 2),
              "rss_mb_before_load": round(before), "rss_mb_loaded": round(loaded_rss)}
    shipped = index.dense_mode
    if index.ann is None:  # below EXACT_BELOW: ANN indexes built in memory to compare the two paths here too
        t = time.perf_counter()
        index.build_ann(threads=2)
        result["ann_built_in_memory_seconds"] = round(time.perf_counter() - t, 1)
        index.use_ann(True)
    result["ann"] = index.ann.stats

    def timed(fn, items):
        out, lat = [], []
        for x in items:
            t = time.perf_counter()
            out.append(fn(x))
            lat.append(time.perf_counter() - t)
        return out, lat

    def keyed(hits):
        return [(h.dataset_id, h.config) for h in hits]

    ms = lambda xs: round(statistics.median(xs) * 1000, 2)  # noqa: E731
    p95 = lambda xs: round(speed.percentile(xs, 95) * 1000, 2)  # noqa: E731
    loads = {"start": os.getloadavg()[0]}
    per_mode = {}
    tops = {}
    vectors = {q: enc.encode_query(q) for q in qs}
    for mode in ("ann", "exact"):
        index.use_ann(mode == "ann")
        enc.clear_query_cache()
        cpu0 = time.process_time()
        hits, lat = timed(lambda q: keyed(index.search(q, k=10)), qs)
        cpu = (time.process_time() - cpu0) / len(qs)
        _, given = timed(lambda q: index.search(q, k=10, query_vector=vectors[q]), qs)
        tops[mode] = hits
        per_mode[mode] = {"search_p50_ms": ms(lat), "search_p95_ms": p95(lat), "search_mean_ms": round(statistics.mean(lat) * 1000, 2),
                          "search_cpu_ms_per_query": round(cpu * 1000, 2),
                          "given_vector_p50_ms": ms(given), "given_vector_p95_ms": p95(given)}
        loads[f"after_{mode}"] = os.getloadavg()[0]
    # recall of the final fused top 10 (dataset, config) against exact search
    rec = [len(set(a) & set(b)) / max(1, len(b)) for a, b in zip(tops["ann"], tops["exact"])]
    same_order = sum(a == b for a, b in zip(tops["ann"], tops["exact"]))
    # and of the raw vector search: each role's exact top 200 rows within its ANN index's 400 candidates
    raw = {}
    for role, graph in index.ann.roles.items():
        r200, r10 = [], []
        for q in qs:
            v = vectors[q]
            exact = graph.rows[np.argsort(-index._scoring.score_rows(v, graph.rows), kind="stable")[:200]]
            cand = set(graph.candidates(v, index.ann_candidates).tolist())
            r200.append(len(cand & set(exact.tolist())) / 200)
            r10.append(len(cand & set(exact[:10].tolist())) / 10)
        raw[role] = {"exact_top200_in_candidates": round(float(np.mean(r200)), 4), "exact_top10_in_candidates": round(float(np.mean(r10)), 4)}
    _, lex = timed(index.lexical.scores, qs)
    _, enc_lat = timed(enc.encode_query_uncached, qs)
    index.use_ann(shipped == "ann")
    result.update({
        "shipped_dense_mode": shipped, "load_avg": {k: round(v, 2) for k, v in loads.items()},
        "ann_search": per_mode["ann"], "exact_search": per_mode["exact"],
        "fused_top10_recall_vs_exact": round(float(np.mean(rec)), 4), "fused_top10_recall_min": round(float(np.min(rec)), 2),
        "fused_top10_identical_lists": f"{same_order}/{len(qs)}", "raw_recall": raw,
        "bm25s_scores_p50_ms": ms(lex), "bm25s_scores_p95_ms": p95(lex), "query_encoding_p50_ms": ms(enc_lat),
        "rss_mb_after_searches": round(current_rss_mb()), "peak_rss_mb": round(rss_mb()),
    })
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, action="append", help="index size (repeatable; default 100,000 and 1,000,000)")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--root", type=Path, default=None)
    ap.add_argument("--phase", choices=["build", "query"], default=None)
    args = ap.parse_args()
    sizes = args.docs or [100_000, 1_000_000]
    if args.root is None:
        from datatune.core.settings import cache_dir

        args.root = cache_dir("benchmarks", "scale")
    args.root.mkdir(parents=True, exist_ok=True)
    calibration = calibrate(args.root / "calibration.json")
    if args.phase == "build":
        print(json.dumps(phase_build(sizes[0], args.root, calibration)))
        return
    if args.phase == "query":
        print(json.dumps(phase_query(sizes[0], args.root, args.queries)))
        return
    path = HERE / "results_index.json"
    results = json.loads(path.read_text()) if path.is_file() else {}
    cal = calibration["cos"]
    results["calibration"] = {"cards": calibration["cards"], "texts": calibration["texts"],
                              **{f"{r}_cos_p10_p50_p90": [round(float(np.percentile(c, p)), 4) for p in (10, 50, 90)] for r, c in cal.items()}}
    from retrieval_index import RetrievalIndex

    for docs in sizes:
        catalog = scaled_catalog(docs)
        folder = RetrievalIndex.folder_for(catalog, args.root)
        from retrieval_index import store

        meta = store.read_meta(folder)
        entry = results.get(str(docs), {})
        if meta is None or meta.get("fingerprint") != RetrievalIndex.current_fingerprint(catalog, samples=False):
            out = subprocess.run([sys.executable, __file__, "--phase", "build", "--docs", str(docs), "--root", str(args.root)],
                                 check=True, stdout=subprocess.PIPE, text=True).stdout
            entry["build"] = json.loads(out.strip().splitlines()[-1])
        out = subprocess.run([sys.executable, __file__, "--phase", "query", "--docs", str(docs), "--root", str(args.root),
                              "--queries", str(args.queries)], check=True, stdout=subprocess.PIPE, text=True).stdout
        entry["query"] = json.loads(out.strip().splitlines()[-1])
        entry["machine"] = {"cpus": os.cpu_count(), "load_avg_at_end": os.getloadavg()}
        results[str(docs)] = entry
        path.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
