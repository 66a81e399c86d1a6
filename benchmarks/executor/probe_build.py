"""Where a build's memory goes, stage by stage: the peak RssAnon, RssFile and Arrow allocations of one build.

    .venv/bin/python benchmarks/executor/probe_build.py [--rows 2000000]

The source and the plan are bench_build.py's (a fresh catalog, so the build converts it to `datasets`'
cache as the benchmark's builds do). The build runs in a child process (`datatune build`, every source
row built) with a thread reading /proc/self/status every 5 ms; while a stage runs (the pipeline's
stage functions, and inside them the catalog load, allocation, the quality counts, the parquet
writes and the scatter of the written rows), the samples taken are its own. Prints one line per stage,
in the order the stages first ran: the peak of each figure while it ran, in MB, and its seconds.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_build import PLAN, ROOT, drop_rows_cache, make_catalog  # noqa: E402

CHILD = r'''
import sys, threading, time
import pyarrow as pa

label, peaks, seconds = ["(outside)"], {}, {}


def status() -> dict:
    out = {}
    for line in open("/proc/self/status"):
        if line.startswith(("RssAnon:", "RssFile:")):
            key, value = line.split(":")
            out[key] = int(value.split()[0]) // 1024
    out["total"] = out["RssAnon"] + out["RssFile"]
    out["arrow"] = pa.total_allocated_bytes() >> 20
    return out


def sample() -> None:
    while True:
        now, at = status(), peaks.setdefault(label[0], {})
        for key, value in now.items():
            at[key] = max(at.get(key, 0), value)
        time.sleep(0.005)


def stage(owner, name: str, tag: str) -> None:
    inner = getattr(owner, name)

    def timed(*args, **kwargs):
        outer, label[0], t = label[0], tag, time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            seconds[tag] = seconds.get(tag, 0.0) + time.perf_counter() - t
            label[0] = outer

    setattr(owner, name, timed)


import datatune.catalog.local as catalog
import datatune.execute as execute
import datatune.output as output
import datatune.pipeline as pipeline
import datatune.quality as quality
import datatune.stages.release as release
import datatune.stages.selection as selection

for owner, name, tag in [(pipeline, "execute_sources", "execute"), (catalog.LocalCatalog, "load", "  load"),
                         (pipeline, "select_rows", "select"), (selection, "allocate_by_split_indices", "  allocate"),
                         (pipeline, "shuffle_and_split", "shuffle"), (pipeline, "release", "release"),
                         (quality, "quality_report", "  quality"), (release, "write_output", "  output"),
                         (output, "write_parquet", "    parquet"), (execute.MappedRows, "scatter", "      scatter"),
                         (output, "card_body", "    card")]:
    stage(owner, name, tag)
threading.Thread(target=sample, daemon=True).start()
from datatune.cli import main

try:
    main(sys.argv[1:], standalone_mode=False)
finally:
    time.sleep(0.05)
    print(f"{'stage':14s} {'anon':>6s} {'file':>6s} {'total':>6s} {'arrow':>6s} {'s':>6s}")
    for tag, p in peaks.items():
        print(f"{tag:14s} {p['RssAnon']:6d} {p['RssFile']:6d} {p['total']:6d} {p['arrow']:6d} {seconds.get(tag, 0.0):6.1f}")
'''


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2_000_000)
    args = ap.parse_args()
    from datatune.plan import PlanFile
    from datatune.task import TaskSpec

    work = Path(tempfile.mkdtemp(prefix="datatune-probe-"))
    try:
        plans = work / "plans.json"
        spec = TaskSpec(description="rotten reviews", output_kind="label", labels=["negative", "positive"])
        plans.write_text(PlanFile(task=spec, plans=[PLAN]).model_dump_json(indent=2))
        cat = make_catalog(work / "cat", args.rows)
        cmd = [sys.executable, "-c", CHILD, "build", "rotten reviews", "--plans", str(plans), "--catalog", str(cat), "--no-curate",
               "--no-synthetic", "--no-embed", "--size", str(args.rows), "--out", str(work / "out"), "--overwrite", "--quiet"]
        p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        print(p.stdout)
        if p.returncode:
            raise SystemExit(p.stderr[-2000:])
        drop_rows_cache(cat)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
