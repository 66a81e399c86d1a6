"""datatune.core.files: atomic writes with unique temp names, the inter-process lock, and writers of the
shared retrieval index, catalog cache and LLM cache racing in several processes."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
from pathlib import Path

import numpy as np
import pytest

from datatune.core.files import LockTimeout, atomic_open, atomic_path, atomic_write_bytes, atomic_write_text, lock_path, locked

ROUNDS = 15
_CTX = mp.get_context("fork")


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    p = tmp_path / "sub" / "a.json"
    atomic_write_text(p, "one")
    atomic_write_text(p, "two", fsync=True)
    atomic_write_bytes(p, b"three")
    assert p.read_text() == "three"
    assert _leftovers(p.parent) == []


def test_new_file_gets_the_umask_mode_and_an_old_file_keeps_its_own(tmp_path):
    p = tmp_path / "a.txt"
    atomic_write_text(p, "x")
    umask = os.umask(0)
    os.umask(umask)
    assert p.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600
    p.chmod(0o640)
    atomic_write_text(p, "y")
    assert p.stat().st_mode & 0o777 == 0o640


def test_a_failed_write_keeps_the_old_file(tmp_path):
    p = tmp_path / "a.txt"
    p.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_open(p, "w") as f:
            f.write("half")
            raise RuntimeError("boom")
    with pytest.raises(RuntimeError):
        with atomic_path(p) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert p.read_text() == "old" and _leftovers(tmp_path) == []
    with pytest.raises(ValueError):
        with atomic_open(p, "a"):
            pass


def _hold(path: str, ready, release) -> None:
    with locked(path):
        ready.set()
        release.wait(30)


def test_lock_held_by_another_process_times_out_with_one_line(tmp_path):
    target = tmp_path / "index"
    ready, release = _CTX.Event(), _CTX.Event()
    p = _CTX.Process(target=_hold, args=(str(target), ready, release))
    p.start()
    try:
        assert ready.wait(30)
        t0 = time.monotonic()
        with pytest.raises(LockTimeout) as ei:
            with locked(target, timeout=0.3, what="the test index"):
                pass
        assert time.monotonic() - t0 < 5
        msg = str(ei.value)
        assert "\n" not in msg and "the test index" in msg and str(lock_path(target)) in msg
    finally:
        release.set()
        p.join(30)
    with locked(target, timeout=5):  # free again once the holder is gone
        with locked(target, timeout=0):  # re-entrant in one process
            pass


# -- processes racing on the same shared file --------------------------------------------------
def _write_index(folder: str, k: int) -> None:
    from datatune.core.types import DatasetEntry
    from retrieval_index import store

    for r in range(ROUNDS):
        n = 3 + (k + r) % 4
        entries = [DatasetEntry(id=f"w{k}/d{i}", summary="x" * 200) for i in range(n)]
        vectors = np.full((n, 8), k, dtype=np.float32)
        store.save(Path(folder), {"format": store.FORMAT, "writer": k, "n": n}, entries, vectors, {})


def _run_all(target, args_list) -> None:
    procs = [_CTX.Process(target=target, args=a) for a in args_list]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * len(procs)


def test_processes_saving_the_same_index_leave_a_whole_one(tmp_path):
    from retrieval_index import store

    folder = tmp_path / "index" / "catalog-1234"
    _run_all(_write_index, [(str(folder), k) for k in range(3)])
    meta = store.read_meta(folder)
    entries, vectors = store.read_entries(folder), store.read_vectors(folder)
    # the three files are one writer's, from one save
    assert len(entries) == len(vectors) == meta["n"]
    assert {e.id.split("/")[0] for e in entries} == {f"w{meta['writer']}"} and (vectors == meta["writer"]).all()
    assert sorted(p.name for p in folder.parent.iterdir()) == ["catalog-1234", "catalog-1234.lock"]


def _parse_catalog(root: str, cache: str) -> None:
    from datatune.catalog.local import LocalCatalog

    for _ in range(ROUNDS):
        c = LocalCatalog(Path(root), cache=Path(cache))
        c._parse_all()  # every round writes the parse cache


def test_processes_writing_the_catalog_cache_leave_a_readable_file(tmp_path):
    from datatune.catalog.local import LocalCatalog

    root = tmp_path / "catalog"
    for name in ("alpha", "beta"):
        (root / "cards" / name).mkdir(parents=True)
        (root / "cards" / name / "README.md").write_text(f"---\nlicense: mit\n---\n# {name}\n\n{name} " * 50)
    cache = tmp_path / "cache"
    _run_all(_parse_catalog, [(str(root), str(cache))] * 3)
    files = list(cache.iterdir())
    assert [f.name.endswith(".json") for f in files] == [True]
    assert {d["id"] for d in json.loads(files[0].read_text())} == {"alpha", "beta"}
    assert {e.id for e in LocalCatalog(root, cache=cache)._load_cached()} == {"alpha", "beta"}


def _use_llm_cache(directory: str, k: int) -> None:
    from datatune.llm.cache import ResponseCache

    c = ResponseCache(Path(directory))
    for r in range(ROUNDS * 4):
        c.set(f"k{r % 7}", {"content": f"{k}-{r}", "finish_reason": "stop", "refusal": None})
        assert c.get(f"k{r % 7}") is not None
    c.close()


def test_processes_sharing_the_llm_cache_leave_it_readable(tmp_path):
    from datatune.llm.cache import ResponseCache

    d = tmp_path / "llm"
    _run_all(_use_llm_cache, [(str(d), k) for k in range(3)])
    c = ResponseCache(d)
    assert all(c.get(f"k{i}")["content"] for i in range(7))
    c.close()


def test_plans_and_run_state_are_written_atomically(tmp_path):
    from datatune.plan import load_plans, save_plans
    from datatune.rundir import RunDir
    from datatune.task import TaskSpec

    spec = TaskSpec(description="Classify the sentiment of a movie review.")
    save_plans(tmp_path / "plans.json", spec, [])
    assert load_plans(tmp_path / "plans.json").plans == [] and _leftovers(tmp_path) == []
    run = RunDir(tmp_path / "out")
    run.write_json("x.json", {"a": 1})
    assert run.read_json("x.json") == {"a": 1} and _leftovers(run.state) == []


def test_a_lock_kept_out_of_the_folder_leaves_it_clean(tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    with locked(folder / "m.gguf", beside=False, timeout=5):
        atomic_write_bytes(folder / "m.gguf", b"GGUF")
    assert [p.name for p in folder.iterdir()] == ["m.gguf"]
