"""A build killed with SIGKILL in the middle of per-row LLM execution resumes to the same rows as an
uninterrupted build with the same seed: none lost, none duplicated. Also: an endpoint that goes
down mid-run stops the build cleanly, and a dataset that fails to load is skipped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import datasets
import pytest

from .fake_openai import FakeOpenAI

TASK = "Classify the sentiment of movie reviews in German as positive or negative"


@pytest.fixture
def tiny_catalog(hub_path, tmp_path):
    """Two real datasets with rows (symlinked, not copied) and one card-only entry."""
    root = tmp_path / "catalog"
    (root / "datasets").mkdir(parents=True)
    (root / "cards").mkdir()
    for name in ("cornell-movie-review-data__rotten_tomatoes", "nyu-mll__glue"):
        (root / "datasets" / name).symlink_to(hub_path / "datasets" / name)
    (root / "cards" / "imdb").symlink_to(hub_path / "cards" / "imdb")
    return root


def build_cmd(catalog, out, *extra):
    return [sys.executable, "-m", "datatune.cli", "build", TASK, "--catalog", str(catalog), "--size", "60",
            "--out", str(out), "-q", "--no-synthetic", "--no-curate", "--no-embed", "--concurrency", "1", *extra]


def env_for(server, cache):
    env = dict(os.environ)
    env.update(OPENAI_BASE_URL=server.url, OPENAI_API_KEY="x", DATATUNE_CACHE=str(cache))
    return env


def rows(out: Path):
    return sorted(map(tuple, (r.values() for r in datasets.load_dataset(str(out))["train"].to_list())))


@pytest.mark.slow
def test_sigkill_mid_execution_then_resume(tiny_catalog, tmp_path):
    with FakeOpenAI(delay=0.05) as server:
        # uninterrupted reference build (its own LLM cache)
        ref = tmp_path / "ref"
        subprocess.run(build_cmd(tiny_catalog, ref), env=env_for(server, tmp_path / "cache-ref"), check=True, timeout=600)
        # the same build, killed once the first LLM-row shard is on disk
        out = tmp_path / "killed"
        env = env_for(server, tmp_path / "cache-killed")
        proc = subprocess.Popen(build_cmd(tiny_catalog, out), env=env)
        deadline = time.time() + 300
        shards = out / ".datatune" / "shards"
        while time.time() < deadline and not (shards.is_dir() and any(shards.rglob("*.parquet"))):
            assert proc.poll() is None, "the build ended before it could be killed"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert not (out / "data").exists()  # it really died mid-run
        done_before = len(list(shards.rglob("*.parquet")))
        calls_before = server.calls
        subprocess.run(build_cmd(tiny_catalog, out, "--resume"), env=env, check=True, timeout=600)
        assert rows(out) == rows(ref)
        got = datasets.load_dataset(str(out))["train"]
        assert len(got) == 60
        keys = [(r["source_dataset"], r["source_split"], r["source_row"]) for r in got]
        assert len(set(keys)) == len(keys)  # none duplicated
        assert all(r["input"].startswith("DE: ") and r["method"] == "llm" for r in got)
        llm_rows = 2 * 39  # two sources, 1.3 x the per-source cap of 30
        assert done_before >= 1 and server.calls - calls_before <= llm_rows - 16 * done_before  # finished shards were not redone


@pytest.mark.slow
def test_endpoint_down_mid_run_stops_cleanly_and_resumes(tiny_catalog, tmp_path):
    out = tmp_path / "o"
    with FakeOpenAI(delay=0.05) as server:
        env = env_for(server, tmp_path / "cache")
        proc = subprocess.Popen(build_cmd(tiny_catalog, out), env=env, stderr=subprocess.PIPE, text=True)
        shards = out / ".datatune" / "shards"
        deadline = time.time() + 300
        while time.time() < deadline and not (shards.is_dir() and any(shards.rglob("*.parquet"))):
            time.sleep(0.05)
    # the server is gone now: the build must stop with one line, exit 1, state kept
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err
    last = err.strip().splitlines()[-1]
    assert "can't be reached" in last and "Traceback" not in err
    assert any(shards.rglob("*.parquet"))
    with FakeOpenAI(delay=0.0) as server:
        subprocess.run(build_cmd(tiny_catalog, out, "--resume"), env=env_for(server, tmp_path / "cache"), check=True, timeout=600)
    assert len(datasets.load_dataset(str(out))["train"]) == 60
