"""Shared setup for the retrieval benchmarks: the catalog, the dev set, the index.

Paths default to ../shared next to the repository; override with DATATUNE_HUB and DATATUNE_DEV_SET.
The index is cached under DATATUNE_CACHE (else datatune's usual cache dir), like any other build.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HUB = Path(os.environ.get("DATATUNE_HUB", ROOT.parent / "shared" / "hub"))
DEV_SET = Path(os.environ.get("DATATUNE_DEV_SET", ROOT.parent / "shared" / "eval" / "retrieval_dev.jsonl"))
OUT = Path(__file__).resolve().parent

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def catalog():
    from datatune.catalog.local import LocalCatalog
    from datatune.core.settings import cache_dir

    return LocalCatalog(HUB, cache=cache_dir("catalog"))


def index(progress: bool = True):
    from retrieval_index import RetrievalIndex

    idx = RetrievalIndex.load_or_build(catalog(), progress=progress)
    s = idx.stats
    print(f"index: {s.documents} documents, {s.entries} datasets, {s.vectors} vectors "
          f"({'loaded' if s.loaded else f'built in {s.seconds:.1f}s, {s.embedded} embedded'})", file=sys.stderr)
    return idx


def dev_set():
    from retrieval_index.evaluate import load_dev_set

    return load_dev_set(DEV_SET)
