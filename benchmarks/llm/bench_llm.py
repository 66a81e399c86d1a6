"""Throughput of N independent row-rewrite calls against the embedded model, at concurrency 1 and
higher, and the speed-up of a cached re-run. Writes benchmarks/llm/RESULTS.md.

    .venv/bin/python benchmarks/llm/bench_llm.py [--n 16] [--model qwen2.5-coder-1.5b] [--levels 1,2,4]

The embedded server is started with as many parallel slots as the highest level, so each level
is measured against the same server in the same run.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
HUB = HERE.parents[2] / "shared" / "hub"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--model", default="qwen2.5-coder-1.5b")
    ap.add_argument("--levels", default="1,2,4")
    a = ap.parse_args()
    levels = [int(x) for x in a.levels.split(",")]
    os.environ.setdefault("DATATUNE_EMBEDDED_PARALLEL", str(max(levels)))

    from datatune.catalog.local import LocalCatalog
    from datatune.core.settings import Settings
    from datatune.llm import LLM, ResponseCache, resolve_endpoint

    rows = LocalCatalog(HUB).load("cornell-movie-review-data/rotten_tomatoes", "default", "train").shuffle(seed=1).select(range(a.n))["text"]
    requests = [[{"role": "system", "content": "You rewrite one field of a dataset row. Reply with the new value only."},
                 {"role": "user", "content": f"Instruction: Paraphrase the review in one sentence.\n\nInput: {t}"}] for t in rows]
    endpoint = resolve_endpoint(Settings(model=a.model))
    results = []
    for level in levels:
        llm = LLM(endpoint, concurrency=level)
        llm.text(requests[0], max_tokens=48)  # warm the server
        t = time.perf_counter()
        llm.text_many(requests, max_tokens=48)
        dt = time.perf_counter() - t
        st = llm.usage.totals()
        results.append((level, a.n / dt, st.completion_tokens / dt, llm.in_flight_peak))
    with tempfile.TemporaryDirectory() as d:
        cache = ResponseCache(Path(d))
        llm = LLM(endpoint, concurrency=levels[0], cache=cache)
        t = time.perf_counter()
        llm.text_many(requests, max_tokens=48)
        cold = time.perf_counter() - t
        llm2 = LLM(endpoint, concurrency=levels[0], cache=ResponseCache(Path(d)))
        t = time.perf_counter()
        llm2.text_many(requests, max_tokens=48)
        warm = time.perf_counter() - t
        assert llm2.usage.calls == 0
    base = results[0][1]
    best = max(results, key=lambda r: r[1])
    conclusion = (f"Best throughput at concurrency {best[0]}: {best[1] / base:.2f}x concurrency {results[0][0]}. "
                  "The embedded default is 2 slots / 2 in flight (llama.cpp decodes the two sequences in one batch); "
                  "remote endpoints default to 8. Measured on a shared machine: compare rows of this table, not runs.")
    table = "\n".join(f"| {lv} | {peak} | {rps:.2f} | {tps:.1f} |" for lv, rps, tps, peak in results)
    text = f"""# LLM layer benchmark: row-rewrite throughput and cached re-runs

{a.n} independent row-rewrite calls (paraphrase a rotten_tomatoes review, max 48 tokens) against the
embedded {endpoint.model}, server with {max(levels)} parallel slots, {platform.machine()}, {os.cpu_count()} cores,
{time.strftime('%Y-%m-%d')}. Command: `.venv/bin/python benchmarks/llm/bench_llm.py --n {a.n} --model {a.model} --levels {a.levels}`.

| concurrency | peak in flight | rows/s | completion tokens/s |
| ---: | ---: | ---: | ---: |
{table}

Cached re-run of the same {a.n} calls: {cold:.1f} s cold, {warm:.3f} s from the cache (0 calls):
**{cold / warm:,.0f}x** faster.

{conclusion}
"""
    (HERE / "RESULTS.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
