"""`datatune apply OUT/plans.json --out NEW` gives the rows of the build in OUT: same rows, same order,
same splits, with no flag repeated (issue 16, item 5). plans.json carries what reproduces the build
(catalog, size, seed, validation fraction, ...); flags given to apply override it. A run that failed
does not block the retry.

Through the CLI (click's runner), on real rows from ../shared/hub, with the fake LLM of the golden
test at the llm seam, fixed candidates instead of retrieval and the deterministic HashEmbedder.
"""

from __future__ import annotations

import json

import datasets
import pytest
from click.testing import CliRunner

from datatune.cli import main
from datatune.embed import HashEmbedder
from datatune.errors import DatasetLoadError
from datatune.plan import load_plans

from .test_golden import TASKS, fake_llm_for, fixed_retriever

BY_NAME = {t.name: t for t in TASKS}


@pytest.fixture
def cli(catalog, fake_llm, monkeypatch):
    """cli(task, args) -> (click result, LLM requests): `datatune ARGS` with the task's fake LLM and candidates."""
    state = {"retrieved": 0}

    def run(task, args):
        llm, ep = fake_llm(fake_llm_for(task))
        retrieve = fixed_retriever(catalog, task.candidates)

        def counting(*a, **k):
            state["retrieved"] += 1
            return retrieve(*a, **k)

        monkeypatch.setattr("datatune.llm.open_llm", lambda settings, **kw: llm)
        monkeypatch.setattr("datatune.retrieve.make_retriever", lambda *a, **k: counting)
        monkeypatch.setattr("datatune.embed.get_embedder", lambda: HashEmbedder())
        result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
        return result, ep.requests

    run.state = state
    return run


def rows_of(out):
    ds = datasets.load_dataset(str(out))
    return {split: ds[split].to_list() for split in sorted(ds)}


def planning_calls(requests):
    """Requests that plan (a task spec, a column choice): apply makes none."""
    def props(body):
        rf = body.get("response_format") or {}
        return ((rf.get("json_schema") or {}).get("schema") or {}).get("properties", {})
    return [b for b in requests if "output_kind" in props(b) or "output_column" in props(b)]


@pytest.mark.parametrize("name,flags", [
    ("sentiment_readme", ["--size", "100", "--seed", "5", "--validation-fraction", "0.2"]),
    ("science_mc", ["--size", "120", "--seed", "2", "--validation-fraction", "0.25", "--per-source-cap", "0.4"]),
])
def test_apply_gives_the_rows_of_the_build(name, flags, cli, hub_path, tmp_path):
    task = BY_NAME[name]
    a, b = tmp_path / "a", tmp_path / "b"
    result, _ = cli(task, ["build", task.description, "--catalog", hub_path, "--out", a, "-q", *flags])
    assert result.exit_code == 0, result.output
    built = rows_of(a)
    assert set(built) == {"train", "validation"} and sum(map(len, built.values())) == int(flags[1])

    rec = load_plans(a / "plans.json").build
    assert rec is not None and rec.catalog == str(hub_path.resolve()) and rec.size == int(flags[1]) and rec.seed == int(flags[3])
    assert rec.validation_fraction == float(flags[5]) and rec.embed and rec.curate and rec.synthetic

    retrieved = cli.state["retrieved"]
    # no --catalog (and no $DATATUNE_CATALOG: conftest removes it), no --size, no --seed: all from plans.json
    result, requests = cli(task, ["apply", a / "plans.json", "--out", b, "-q"])
    assert result.exit_code == 0, result.output
    assert cli.state["retrieved"] == retrieved and planning_calls(requests) == []
    applied = rows_of(b)
    assert {s: len(r) for s, r in applied.items()} == {s: len(r) for s, r in built.items()}
    for split in built:
        assert applied[split] == built[split], f"{split}: first differing row {next(i for i, (x, y) in enumerate(zip(built[split], applied[split])) if x != y)}"
    # the applied build's plans.json reproduces it in turn
    assert load_plans(b / "plans.json").build == rec.model_copy(update={})

    # a flag given explicitly overrides the file
    result, _ = cli(task, ["apply", a / "plans.json", "--out", tmp_path / "c", "-q", "--size", "40", "--validation-fraction", "0"])
    assert result.exit_code == 0, result.output
    assert {s: len(r) for s, r in rows_of(tmp_path / "c").items()} == {"train": 40}


def test_older_plans_without_a_build_record_still_apply(cli, hub_path, tmp_path):
    task = BY_NAME["sentiment_readme"]
    result, _ = cli(task, ["build", task.description, "--catalog", hub_path, "--out", tmp_path / "a", "-q", "--size", "60"])
    assert result.exit_code == 0, result.output
    old = json.loads((tmp_path / "a" / "plans.json").read_text())
    del old["build"]
    (tmp_path / "old.json").write_text(json.dumps(old))
    assert load_plans(tmp_path / "old.json").build is None
    result, _ = cli(task, ["apply", tmp_path / "old.json", "--out", tmp_path / "b", "-q", "--catalog", hub_path, "--size", "30"])
    assert result.exit_code == 0, result.output
    assert len(rows_of(tmp_path / "b")["train"]) == 30


def test_a_catalog_that_is_not_here_is_one_line(cli, hub_path, tmp_path):
    task = BY_NAME["sentiment_readme"]
    result, _ = cli(task, ["build", task.description, "--catalog", hub_path, "--out", tmp_path / "a", "-q", "--size", "30"])
    assert result.exit_code == 0, result.output
    pf = json.loads((tmp_path / "a" / "plans.json").read_text())
    pf["build"]["catalog"] = str(tmp_path / "moved")
    (tmp_path / "moved.json").write_text(json.dumps(pf))
    result, _ = cli(task, ["apply", tmp_path / "moved.json", "--out", tmp_path / "b", "-q"])
    assert result.exit_code == 1
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "--catalog" in lines[0] and "moved" in lines[0], result.output
    assert not (tmp_path / "b").exists()  # nothing started: no run for a retry to trip over


def test_a_failed_run_does_not_block_the_retry(cli, hub_path, tmp_path, monkeypatch):
    task = BY_NAME["sentiment_readme"]
    a, out = tmp_path / "a", tmp_path / "again"
    result, _ = cli(task, ["build", task.description, "--catalog", hub_path, "--out", a, "-q", "--size", "50"])
    assert result.exit_code == 0, result.output

    import datatune.pipeline as pl

    real = pl.execute_sources

    def failing(*args, **kw):
        raise DatasetLoadError("could not load cornell-movie-review-data/rotten_tomatoes: the connection dropped")

    monkeypatch.setattr(pl, "execute_sources", failing)
    result, _ = cli(task, ["apply", a / "plans.json", "--out", out, "-q", "--size", "20"])
    assert result.exit_code == 1 and "connection dropped" in result.output
    assert json.loads((out / ".datatune" / "run.json").read_text())["status"] == "started"
    monkeypatch.setattr(pl, "execute_sources", real)

    # the retry with other flags (here: the build's own size) replaces the failed run, saying so in one line
    result, _ = cli(task, ["apply", a / "plans.json", "--out", out])
    assert result.exit_code == 0, result.output
    notes = [ln for ln in result.output.splitlines() if "unfinished build" in ln]
    assert len(notes) == 1 and "replaced" in notes[0], result.output
    assert rows_of(out) == rows_of(a)

    # a failed run retried with the same inputs continues (no notice, no flag needed)
    monkeypatch.setattr(pl, "execute_sources", failing)
    result, _ = cli(task, ["apply", a / "plans.json", "--out", tmp_path / "same", "-q"])
    assert result.exit_code == 1
    monkeypatch.setattr(pl, "execute_sources", real)
    result, _ = cli(task, ["apply", a / "plans.json", "--out", tmp_path / "same"])
    assert result.exit_code == 0, result.output
    assert "continuing the build" in result.output and "unfinished build" not in result.output
    assert rows_of(tmp_path / "same") == rows_of(a)

    # a finished build is never replaced without --overwrite: one line naming the flag
    result, _ = cli(task, ["apply", a / "plans.json", "--out", out, "-q", "--size", "20"])
    assert result.exit_code == 1
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "--overwrite" in lines[0], result.output
    result, _ = cli(task, ["apply", a / "plans.json", "--out", out, "-q", "--size", "20", "--overwrite"])
    assert result.exit_code == 0, result.output
    assert len(rows_of(out)["train"]) == 20
