"""`--engine ray` gives the rows of `--engine local` (issue 17): on a two-node Ray cluster on this machine
(`ray.cluster_utils.Cluster`, one CPU per node), joined through DATATUNE_RAY_ADDRESS as a real cluster
would be; a worker killed mid-run is replaced and the build's rows are unchanged (Ray's task retries).

Builds run through the CLI as in test_apply_reproduces (real rows from ../shared/hub, the golden test's
fake LLM, fixed candidates, HashEmbedder). One cluster serves the module; the Ray runtime and the nodes
are shut down after it.
"""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import pytest

from datatune.core.errors import ConfigError
from datatune.engines import ray as ray_engine

from . import test_apply_reproduces as reproduces
from .test_apply_reproduces import BY_NAME, rows_of

cli = reproduces.cli  # the fixture: `datatune ARGS` with the task's fake LLM and fixed candidates

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")  # Ray copying its own context

# The build maps 8,192-row batches: smaller ones spread each split over both nodes (a few blocks each: every Ray task costs scheduling).
SMALL_BATCH = 1000
SIZE = 300
# The flags of each task's build. science_mc's sources are small enough at --per-source-cap 1 that their
# pools keep pass 1's valid places and outputs (execute.sample_pool's `retain`): a batch out of place changes the rows.
FLAGS = {"sentiment_readme": ["--seed", "4", "--validation-fraction", "0.2"],
         "science_mc": ["--seed", "2", "--validation-fraction", "0.25", "--per-source-cap", "1"]}


@pytest.fixture(scope="module")
def two_nodes():
    import ray
    from ray.cluster_utils import Cluster

    assert not ray.is_initialized(), "another test left a Ray runtime running"
    store = 96 * 2**20
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "object_store_memory": store, "include_dashboard": False})
    try:
        cluster.add_node(num_cpus=1, object_store_memory=store)
        cluster.wait_for_nodes()
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


@pytest.fixture
def on_cluster(two_nodes, monkeypatch):
    """DATATUNE_RAY_ADDRESS at the two-node cluster; map_split with SMALL_BATCH-row batches, its calls and rows counted."""
    monkeypatch.setenv("DATATUNE_RAY_ADDRESS", two_nodes.address)
    real = ray_engine.RayEngine.map_split
    seen = {"calls": 0, "rows": 0}

    def map_split(self, mapper, ds, *, batch_size):
        seen["calls"] += 1
        for table in real(self, mapper, ds, batch_size=SMALL_BATCH):
            seen["rows"] += table.num_rows
            yield table

    monkeypatch.setattr(ray_engine.RayEngine, "map_split", map_split)
    return seen


def alive_nodes() -> int:
    import ray

    return sum(1 for n in ray.nodes() if n["Alive"])


def build_then_apply(cli, task, hub_path, tmp_path, *flags):
    """A local build of `task`, then `apply` of its plans.json with `flags` (--engine ...): (built rows, applied rows)."""
    a, b = tmp_path / "a", tmp_path / "b"
    result, _ = cli(task, ["build", task.description, "--catalog", hub_path, "--out", a, "-q", "--size", SIZE, *FLAGS[task.name], "--engine", "local"])
    assert result.exit_code == 0, result.output
    result, _ = cli(task, ["apply", a / "plans.json", "--out", b, "-q", *flags])
    assert result.exit_code == 0, result.output
    return rows_of(a), rows_of(b)


def test_an_unreachable_cluster_is_one_line(cli, hub_path, tmp_path, monkeypatch):
    import ray

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("DATATUNE_RAY_ADDRESS", f"127.0.0.1:{port}")
    monkeypatch.setattr(ray, "is_initialized", lambda: False)  # as in a fresh process, whatever ran before
    monkeypatch.setattr(ray, "init", lambda *a, **k: pytest.fail("ray.init was called for an address that can't be reached"))
    task = BY_NAME["news_topic"]
    result, _ = cli(task, ["build", task.description, "--catalog", hub_path, "--out", tmp_path / "a", "-q", "--size", "30", "--engine", "ray"])
    assert result.exit_code == 1
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and f"DATATUNE_RAY_ADDRESS=127.0.0.1:{port}" in lines[0] and "can't be reached" in lines[0], result.output


def test_a_bad_address_and_a_missing_ray_say_what_to_do(monkeypatch):
    with pytest.raises(ConfigError, match="HOST:PORT"):
        ray_engine._reachable("my-head-node")
    monkeypatch.setitem(__import__("sys").modules, "ray", None)  # as if ray were not installed
    with pytest.raises(ConfigError, match=r"pip install 'ray\[data\]'.*--engine local"):
        ray_engine.ensure_ray()


@pytest.mark.parametrize("name", ["sentiment_readme", "science_mc"])  # a label map in pyarrow compute; lettered choices in Python per row
def test_apply_on_two_nodes_gives_the_rows_of_local(name, cli, on_cluster, hub_path, tmp_path):
    built, on_ray = build_then_apply(cli, BY_NAME[name], hub_path, tmp_path, "--engine", "ray")
    assert on_cluster["calls"] >= 2 and on_cluster["rows"] > SMALL_BATCH  # the sources were mapped on Ray, in several batches
    assert alive_nodes() == 2
    result, _ = cli(BY_NAME[name], ["apply", tmp_path / "a" / "plans.json", "--out", tmp_path / "c", "-q", "--engine", "local"])
    assert result.exit_code == 0, result.output
    local = rows_of(tmp_path / "c")
    assert local == built
    assert {s: len(r) for s, r in on_ray.items()} == {s: len(r) for s, r in local.items()} and sum(map(len, local.values())) == SIZE
    for split in local:
        assert on_ray[split] == local[split], f"{split}: first differing row {next(i for i, (x, y) in enumerate(zip(local[split], on_ray[split])) if x != y)}"


PLANS = {  # (dataset, config, split), plan: the pyarrow label map, a template mapped in Python, rows dropped here and there
    "label_map": (("cornell-movie-review-data/rotten_tomatoes", "default", "train"),
                  {"input_columns": ["text"], "output": {"kind": "label_map", "column": "label", "label_map": {"neg": "negative", "pos": "positive"}}}),
    "template_drops": (("cornell-movie-review-data/rotten_tomatoes", "default", "train"),
                       {"input_columns": ["text"], "input_template": "Review: {text}", "output": {"kind": "label_map", "column": "label", "label_map": {"pos": "positive"}}}),
    "choices": (("allenai/ai2_arc", "ARC-Challenge", "test"),
                {"input_columns": ["question"], "choices": {"options": ["choices.text"]}, "output": {"kind": "column", "column": "answerKey"}}),
}


@pytest.mark.parametrize("name", sorted(PLANS))
def test_the_mapped_batches_are_those_of_local_in_order(name, catalog, on_cluster):
    import pyarrow as pa

    from datatune.compile import compile_plan
    from datatune.engines import get_engine
    from datatune.plan import Plan

    (dataset, config, split), fields = PLANS[name]
    ds = catalog.load(dataset, config, split)
    mapper = compile_plan(Plan.model_validate({"dataset": dataset, "config": config, "splits": [split], "keep": True, **fields}), ds.features)
    local = pa.concat_tables(get_engine("local").map_split(mapper, ds, batch_size=SMALL_BATCH))
    on_ray = pa.concat_tables(get_engine("ray").map_split(mapper, ds, batch_size=SMALL_BATCH))
    assert on_cluster["rows"] == len(ds) == local.num_rows
    assert on_ray.equals(local)
    if name == "template_drops":
        assert 0 < local.column("drop").null_count < len(ds)


class KillsItsWorkerOnce:
    """A compiled plan that kills the Ray worker process mapping it, the first time only (a marker file
    says it happened), and writes down each node it ran on. In the driver it only maps."""

    def __init__(self, mapper, folder: Path, driver: int):
        self.mapper, self.folder, self.driver = mapper, folder, driver
        self.columns = mapper.columns

    def map_arrow(self, table):
        if os.getpid() != self.driver:
            import ray

            (self.folder / f"node-{ray.get_runtime_context().get_node_id()}").touch()
            try:
                os.close(os.open(self.folder / "killed", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                pass
            else:
                os.kill(os.getpid(), signal.SIGKILL)
        return self.mapper.map_arrow(table)


def test_a_worker_killed_mid_run_leaves_the_rows_unchanged(cli, on_cluster, hub_path, tmp_path, monkeypatch):
    import datatune.execute as execute

    folder = tmp_path / "marks"
    folder.mkdir()
    real = execute.compile_plan
    monkeypatch.setattr(execute, "compile_plan", lambda plan, features: KillsItsWorkerOnce(real(plan, features), folder, os.getpid()))
    built, on_ray = build_then_apply(cli, BY_NAME["science_mc"], hub_path, tmp_path, "--engine", "ray")
    assert (folder / "killed").exists(), "no worker was killed: the test did not test anything"
    assert len(list(folder.glob("node-*"))) == 2, "the maps ran on one node only"
    assert on_ray == built


def translation_chunks(n_chunks: int = 5, size: int = 16):
    from datatune.plan import LLMField, Plan
    from datatune.records import Row

    plan = Plan(dataset="d", config="c", splits=["train"], keep=True,
                llm_fields=[LLMField(target="input", instruction="Translate the input into German. Keep its meaning.")])
    return plan, {i: [Row(input=f"review {i}-{k}: a fine film", output="positive", source_row=i * size + k) for k in range(size)]
                  for i in range(n_chunks)}


def served_llm(server, cache: Path | None, max_calls: int | None = None):
    from datatune.llm import LLM, Endpoint, ResponseCache

    return LLM(Endpoint(server.url, "fake-model", "x"), concurrency=4, cache=ResponseCache(cache) if cache else None, max_calls=max_calls)


def test_llm_fields_on_two_nodes_are_those_of_local_and_count_against_one_budget(on_cluster, tmp_path):
    """Per-row LLM fields as Ray tasks: the rows of the local engine; every worker's requests in the driver's
    usage and budget; the shared response cache serves a second run; a budget stops the fan-out."""
    from datatune.core.errors import BudgetExceeded
    from datatune.engines import get_engine

    from .fake_openai import FakeOpenAI

    plan, chunks = translation_chunks()
    with FakeOpenAI(delay=0.01) as server:
        local_llm = served_llm(server, tmp_path / "local-cache")
        local = list(get_engine("local").fill_llm(plan, chunks, local_llm))
        assert server.calls == 80
        ray_llm = served_llm(server, tmp_path / "ray-cache")
        on_ray = sorted(get_engine("ray").fill_llm(plan, chunks, ray_llm), key=lambda t: t[0])
        assert server.calls == 160
        assert [(i, [r.to_dict() for r in rows], d) for i, rows, d in on_ray] == [(i, [r.to_dict() for r in rows], d) for i, rows, d in local]
        assert all(r.input.startswith("DE: review") and r.method == "llm" for _, rows, _ in on_ray for r in rows)
        assert ray_llm.in_flight_peak == 0  # the driver sent nothing itself: the workers did
        assert ray_llm.sent == 80 and ray_llm.usage.calls == 80 and ray_llm.usage.stage("execute-llm").prompt_tokens == 800

        again = served_llm(server, tmp_path / "ray-cache")
        assert len(list(get_engine("ray").fill_llm(plan, chunks, again))) == 5
        assert server.calls == 160 and again.usage.cache_hits == 80 and again.sent == 0  # the workers read the shared cache

        budget = served_llm(server, None, max_calls=40)
        got = []
        with pytest.raises(BudgetExceeded, match="budget of 40"):
            for item in get_engine("ray").fill_llm(plan, chunks, budget):
                got.append(item)
        assert server.calls - 160 <= 40 and budget.sent <= 40 and len(got) <= 2


def test_the_embedded_model_fills_its_fields_in_this_process():
    from datatune.llm import LLM, Endpoint
    from datatune.llm.portable import recipe

    embedded = LLM(Endpoint(None, "qwen", embedded=True, start=lambda: pytest.fail("started")))
    assert recipe(embedded, workers=4) is None
    remote = LLM(Endpoint("http://127.0.0.1:9/v1", "m"), rpm=100, tpm=None)
    r = recipe(remote, workers=4)
    assert r is not None and r.rpm == 25 and r.tpm is None and r.base_url == "http://127.0.0.1:9/v1"


def test_a_build_with_llm_fields_on_two_nodes_gives_the_rows_of_local(on_cluster, hub_path, tmp_path, monkeypatch):
    """`datatune build --engine ray` for a German task over English sources (a translation field per row,
    from an OpenAI-compatible endpoint): the rows of `--engine local`, every row translated."""
    from click.testing import CliRunner

    from datatune.cli import main

    from .fake_openai import FakeOpenAI
    from .test_resume import TASK

    catalog = tmp_path / "catalog"
    (catalog / "datasets").mkdir(parents=True)
    (catalog / "datasets" / "cornell-movie-review-data__rotten_tomatoes").symlink_to(hub_path / "datasets" / "cornell-movie-review-data__rotten_tomatoes")
    outs = {}
    with FakeOpenAI(delay=0.0) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.url)
        monkeypatch.setenv("OPENAI_API_KEY", "x")
        for engine in ("local", "ray"):
            monkeypatch.setenv("DATATUNE_CACHE", str(tmp_path / f"cache-{engine}"))  # each engine asks the endpoint itself
            out = outs[engine] = tmp_path / engine
            calls = server.calls
            if engine == "ray":  # the translations go out from Ray tasks, not from this process
                monkeypatch.setattr("datatune.engines.local.LocalEngine.fill_llm", lambda *a: pytest.fail("filled locally"))
            result = CliRunner().invoke(main, ["build", TASK, "--catalog", str(catalog), "--size", "40", "--out", str(out), "-q",
                                               "--no-synthetic", "--no-curate", "--no-embed", "--engine", engine])
            assert result.exit_code == 0, result.output
            assert server.calls - calls >= 40  # every translation was asked for
    local, on_ray = rows_of(outs["local"]), rows_of(outs["ray"])
    assert on_ray == local and sum(map(len, local.values())) == 40
    assert all(r["input"].startswith("DE: ") and r["method"] == "llm" for rows in on_ray.values() for r in rows)


def test_curation_on_two_nodes_makes_the_decisions_of_local(on_cluster, catalog, monkeypatch):
    """Curation's per-row work (duplicate keys, word tokens) as Ray tasks over blocks of the pooled rows:
    the same rows kept and dropped, reason by reason, as in this process, on real tweets with planted copies."""
    import datatune.curate as curate_mod
    from datatune.curate import curate
    from datatune.engines import get_engine
    from datatune.records import Row
    from datatune.task import Example, TaskSpec

    ds = catalog.load("tdavidson/hate_speech_offensive", "default", "train").select(range(3000))
    rows = [Row(input=t, output="x", source_row=i) for i, t in enumerate(ds["tweet"])]
    rows += [Row(input=r.input.upper() + "  ", output="X", source_row=10_000 + k) for k, r in enumerate(rows[:200])]  # exact copies
    rows += [Row(input=r.input + " lol", output="x", source_row=20_000 + k) for k, r in enumerate(rows[200:400])]  # near copies
    spec = TaskSpec(description="Classify tweets", output_kind="text", examples=[Example(input=rows[500].input, output="x")])
    local = curate(rows, spec)
    monkeypatch.setattr(curate_mod, "BLOCK", 700)  # five blocks of tasks, over both nodes
    on_ray = curate(rows, spec, engine=get_engine("ray"))
    assert local.drops["exact_duplicate"] >= 200 and local.drops["near_duplicate"] > 0 and local.drops["contaminated"] >= 1
    assert on_ray.drops == local.drops
    assert on_ray.kept.tolist() == local.kept.tolist()


def test_card_texts_embedded_on_two_nodes_are_the_local_vectors(on_cluster, catalog):
    """`index build --engine ray`: MiniLM on a pool of Ray actors, a block of whole encoding chunks each, in order."""
    import numpy as np

    from datatune.engines.ray_embed import RayEncoder
    from retrieval_index.dense import Encoder

    texts = [f"{e.id}: {e.summary[:120]}" for e in list(catalog.entries())[:150]]
    local = Encoder(batch_size=1).encode(texts)
    seen = []
    on_ray = RayEncoder(batch_size=1).encode(texts, progress=seen.append)  # blocks of 128 texts: two tasks, one per node
    assert seen == [128, 22]
    assert on_ray.shape == local.shape and np.abs(on_ray - local).max() < 1e-5


def test_index_build_takes_the_engine(monkeypatch, hub_path):
    from click.testing import CliRunner

    from datatune.cli import main

    got = {}

    class Stats:
        loaded, entries, documents, embedded, reused, seconds = True, 1, 1, 0, 1, 0.0

    def fake_open_index(catalog, **kw):
        got.update(kw)
        return type("I", (), {"stats": Stats()})()

    monkeypatch.setattr("datatune.retrieve.open_index", fake_open_index)
    result = CliRunner().invoke(main, ["index", "build", "--catalog", str(hub_path), "-q", "--engine", "ray"])
    assert result.exit_code == 0, result.output
    assert got["engine"] == "ray"
