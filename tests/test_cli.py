"""The CLI's front door: help, version, and one-line errors with the right exit codes."""

from __future__ import annotations

import errno

import pytest
from click.testing import CliRunner

from datatune.cli import main
from datatune.errors import ConfigError
from datatune.rundir import RunDir


@pytest.fixture
def runner():
    return CliRunner()


def one_line_error(result, code=1, match=""):
    assert result.exit_code == code, result.output
    lines = [ln for ln in result.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, result.output
    assert "Traceback" not in result.output
    assert match in lines[0], lines[0]
    return lines[0]


def test_version_and_help(runner):
    assert runner.invoke(main, ["--version"]).output.startswith("datatune, version")
    out = runner.invoke(main, ["build", "-h"]).output
    for opt in ("--catalog", "--size", "--out", "--examples", "--validation-fraction", "--seed", "--model", "--dry-run",
                "--resume", "--overwrite", "--max-llm-calls", "--no-cache", "--concurrency", "--plans", "--push-to-hub",
                "--no-synthetic", "--synthetic-fraction", "--eval-file", "--exclude", "--json", "--quiet"):
        assert opt in out, opt


def test_empty_task(runner, tmp_path):
    one_line_error(runner.invoke(main, ["build", "  ", "--out", str(tmp_path / "o")]), match="task description is empty")


def test_size_zero(runner, tmp_path):
    one_line_error(runner.invoke(main, ["build", "classify tweets", "--size", "0", "--out", str(tmp_path / "o")]), match="--size")


def test_missing_catalog(runner, tmp_path):
    line = one_line_error(runner.invoke(main, ["build", "classify tweets", "--catalog", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]))
    assert "catalog folder not found" in line and "--catalog" in line


def test_catalog_that_is_not_a_catalog(runner, tmp_path):
    (tmp_path / "cat").mkdir()
    one_line_error(runner.invoke(main, ["build", "classify tweets", "--catalog", str(tmp_path / "cat"), "--out", str(tmp_path / "o")]),
                   match="not a datatune catalog")


@pytest.mark.parametrize("content,match", [
    ('{"input": "a", "output": "b"}\n{not json}\n', ":2: not valid JSON"),
    ('{"text": "a"}\n', "needs string fields 'input' and 'output'"),
    ("", "has no examples"),
])
def test_malformed_examples(runner, tmp_path, content, match):
    f = tmp_path / "ex.jsonl"
    f.write_text(content)
    one_line_error(runner.invoke(main, ["build", "classify tweets", "--examples", str(f), "--out", str(tmp_path / "o")]), match=match)


def test_missing_examples_file(runner, tmp_path):
    one_line_error(runner.invoke(main, ["build", "classify tweets", "--examples", str(tmp_path / "x.jsonl")]), match="examples file not found")


def test_unreachable_endpoint(runner, tmp_path, hub_path, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "x")
    line = one_line_error(runner.invoke(main, ["build", "classify tweets", "--catalog", str(hub_path), "--out", str(tmp_path / "o"), "-q"]))
    assert "can't be reached" in line and "OPENAI_BASE_URL" in line


def test_usage_error_exit_2(runner):
    assert runner.invoke(main, ["build", "x", "--size", "many"]).exit_code == 2
    assert runner.invoke(main, ["build", "x", "--no-such-flag"]).exit_code == 2


def test_unwritable_out(runner, tmp_path, hub_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    one_line_error(runner.invoke(main, ["build", "classify tweets", "--catalog", str(hub_path), "--out", str(blocker / "sub"), "-q"]),
                   match="can't write to")


def test_out_is_another_folder(runner, tmp_path, hub_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    line = one_line_error(runner.invoke(main, ["build", "classify tweets", "--catalog", str(hub_path), "--out", str(out), "-q"]),
                          match="choose another --out")
    assert "--overwrite" not in line  # a folder that is not a run is never cleared
    assert (out / "notes.txt").read_text() == "mine"  # nothing lost


def test_disk_full_is_one_line(tmp_path, monkeypatch):
    run = RunDir(tmp_path / "o")
    run.open("fp", {"description": "d"}, resume=False, overwrite=False)

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("pathlib.Path.write_text", full)
    with pytest.raises(ConfigError, match="disk full.*--resume"):
        run.write_json("plans.json", [])


def test_status_of_nothing(runner, tmp_path):
    one_line_error(runner.invoke(main, ["status", str(tmp_path)]), match="holds no datatune run")


def test_debug_shows_traceback(runner, tmp_path, monkeypatch):
    monkeypatch.setenv("DATATUNE_DEBUG", "1")
    result = runner.invoke(main, ["build", " "])
    assert isinstance(result.exception, ConfigError)


@pytest.mark.parametrize("content,says", [("", "has no evaluation rows"), ('{"input": null}\n', ":1: no 'input' text"),
                                          ('{"output": "x"}\n', ":1: no 'input' text"), ('{"input": "  "}\n', ":1: no 'input' text")])
def test_empty_or_null_eval_file_is_refused(tmp_path, content, says):
    """Issue 15: an empty or null-valued --eval-file was accepted silently (no contamination check at all)."""
    from click.testing import CliRunner

    from datatune.cli import main

    f = tmp_path / "eval.jsonl"
    f.write_text(content)
    r = CliRunner().invoke(main, ["build", "classify sentiment", "--eval-file", str(f), "--out", str(tmp_path / "o"), "--dry-run"])
    assert r.exit_code == 1 and says in r.output and len(r.output.strip().splitlines()) == 1, r.output


def test_a_size_beyond_what_a_build_makes_is_refused_at_once(tmp_path):
    """Issue 15: --size 1000000000 was OOM-killed at 20 GB."""
    from click.testing import CliRunner

    from datatune.cli import main

    r = CliRunner().invoke(main, ["build", "classify sentiment", "--size", "1000000000", "--out", str(tmp_path / "o")])
    assert r.exit_code == 1 and "1,000,000,000 is more than one build makes" in r.output and len(r.output.strip().splitlines()) == 1


# -- progress of the index build follows -q / --json (issue 16) -----------------------------------
@pytest.fixture
def tiny_catalog(tmp_path, monkeypatch):
    """Two datasets with rows in a catalog folder, and the index's encoder swapped for a hash (no model)."""
    import retrieval_index.index as index_module

    from .test_catalog import make_repo
    from .test_retrieval import HashEncoder

    monkeypatch.setattr(index_module, "Encoder", HashEncoder)
    root = tmp_path / "cat"
    make_repo(root, "toy/reviews", [{"text": f"a fine film {i}", "label": i % 2} for i in range(6)])
    make_repo(root, "toy/tweets", [{"text": f"what a day {i}", "label": i % 2} for i in range(6)])
    return root


def test_index_build_progress_follows_quiet_and_json(runner, tiny_catalog):
    import json as _json

    as_json = runner.invoke(main, ["index", "build", "--catalog", str(tiny_catalog), "--json"])
    assert as_json.exit_code == 0, as_json.output
    assert as_json.stderr == ""  # no tqdm bar: progress is JSON events on stdout, like the build's
    events = [_json.loads(line) for line in as_json.stdout.splitlines()]
    stages = [(e["event"], e.get("stage")) for e in events if e["event"] in ("stage_start", "stage_end")]
    assert stages == [("stage_start", "index samples"), ("stage_end", "index samples"),
                      ("stage_start", "index embeddings"), ("stage_end", "index embeddings")]
    assert any(e["event"] == "progress" and e["stage"] == "index embeddings" for e in events)
    assert events[-1]["event"] == "index" and events[-1]["entries"] == 2 and events[-1]["loaded"] is False

    again = runner.invoke(main, ["index", "build", "--catalog", str(tiny_catalog), "--json"])
    assert [_json.loads(line)["event"] for line in again.stdout.splitlines()] == ["index"]  # current: loaded, nothing to show

    quiet = runner.invoke(main, ["index", "build", "--catalog", str(tiny_catalog), "--force", "-q"])
    assert quiet.exit_code == 0, quiet.output
    assert quiet.stderr == "" and quiet.stdout.startswith("built: 2 datasets")

    shown = runner.invoke(main, ["index", "build", "--catalog", str(tiny_catalog), "--force"])
    assert shown.exit_code == 0, shown.output
    assert "index samples" in shown.stderr and shown.stdout.startswith("built: 2 datasets")  # tqdm bars by default


def test_the_builds_index_progress_follows_its_reporter(tiny_catalog, capsys):
    """`datatune build -q / --json` loads the index through make_retriever with its reporter: no tqdm bars."""
    import io
    import json as _json

    from datatune.catalog.local import LocalCatalog
    from datatune.progress import JsonReporter, Reporter
    from datatune.retrieve import make_retriever

    catalog = LocalCatalog(tiny_catalog)
    make_retriever(catalog, reporter=Reporter())("reviews of films", 2, [])
    assert capsys.readouterr().err == ""
    stream = io.StringIO()
    make_retriever(catalog, reporter=JsonReporter(stream))("reviews of films", 2, [])
    assert capsys.readouterr().err == ""
    events = [_json.loads(line)["event"] for line in stream.getvalue().splitlines()]
    assert events[0] == "index"  # "loading the retrieval index", then the loaded index: no bars to show
