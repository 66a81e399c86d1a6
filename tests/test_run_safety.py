"""What a build may touch (issue 15): --overwrite clears only a datatune run and only what it wrote,
one build at a time per folder, --resume never continues other inputs, an --out that is a file,
the HTML report escapes what comes from data, push uploads only what the build wrote."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from datatune.cli import main
from datatune.errors import RunStateError
from datatune.records import Row
from datatune.rundir import RunDir

FP, OTHER_FP = "a" * 16, "b" * 16
ROWS = [Row("a review", "positive", "src/ds", "default", "train", 1)]


def one_line(result, match=""):
    assert result.exit_code == 1, result.output
    lines = [ln for ln in result.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    assert match in lines[0], lines[0]
    return lines[0]


def build_args(hub_path, out, *extra):
    return ["build", "classify the sentiment of tweets", "--catalog", str(hub_path), "--out", str(out), "-q", *extra]


def a_plan(**kw):
    from datatune.plan import OutputRule, Plan

    return Plan(dataset="src/ds", config="default", splits=["train"], keep=True, input_columns=["text"],
                output=OutputRule(kind="column", column="label"), **kw)


def a_run(out: Path, fp: str = FP) -> RunDir:
    """A finished run as a build leaves it: state, recorded outputs, data, card, plots."""
    run = RunDir(out)
    run.open(fp, {"description": "first build"}, resume=False, overwrite=False)
    written = ["data/train-00000-of-00001.parquet", "README.md", "plans.json", "manifest.json", "plots/label_distribution.png"]
    if hasattr(run, "record_outputs"):  # (so this also runs against versions that kept no record)
        run.record_outputs(written)
    for rel in written:
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text("built")
    run.write_shard("src/ds:default", 0, ROWS)
    run.set_status("done")
    return run


# -- 1. --overwrite ------------------------------------------------------------------------------
def test_overwrite_refuses_a_folder_that_is_not_a_run(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "notes.txt").write_text("mine")
    with pytest.raises(RunStateError) as e:
        RunDir(d).open(FP, {}, resume=False, overwrite=True)
    assert "choose another --out" in str(e.value) and "--overwrite" not in str(e.value)
    assert (d / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in d.iterdir()) == ["notes.txt"]  # not even a lock file left behind


def test_overwrite_of_a_non_run_folder_is_one_line_in_the_cli(tmp_path, hub_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "notes.txt").write_text("mine")
    line = one_line(CliRunner().invoke(main, build_args(hub_path, d, "--overwrite")), match="choose another --out")
    assert "--overwrite" not in line
    assert (d / "notes.txt").read_text() == "mine"


def test_root_is_refused_without_suggesting_overwrite():
    with pytest.raises(RunStateError) as e:
        RunDir(Path("/")).open(FP, {}, resume=False, overwrite=False)
    assert "root" in str(e.value) and "choose another --out" in str(e.value) and "--overwrite" not in str(e.value)


def test_home_is_never_cleared(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    (home / ".bashrc").write_text("mine")
    monkeypatch.setenv("HOME", str(home))
    with pytest.raises(RunStateError) as e:
        RunDir(home).open(FP, {}, resume=False, overwrite=True)
    assert "home" in str(e.value) and "--overwrite" not in str(e.value)
    assert (home / ".bashrc").read_text() == "mine"


def test_overwrite_removes_only_what_the_run_wrote_and_follows_no_symlink(tmp_path):
    out, outside = tmp_path / "out", tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("keep")
    (outside / "secret.parquet").write_text("keep")
    a_run(out)
    (out / "notes.txt").write_text("mine")
    (out / "data" / "mine.csv").write_text("mine")
    (out / "linked").symlink_to(outside, target_is_directory=True)  # a symlinked folder inside --out
    (out / "data" / "validation-00000-of-00001.parquet").symlink_to(outside / "secret.parquet")
    # a tampered record must not reach outside the folder either
    RunDir(out).write_json("outputs.json", ["README.md", "../outside/precious.txt", "linked/precious.txt", str(outside / "precious.txt")])

    run = RunDir(out)
    assert run.open(OTHER_FP, {"description": "second build"}, resume=False, overwrite=True) is False
    run.close()
    for rel in ("README.md", "plans.json", "manifest.json", "data/train-00000-of-00001.parquet", "plots"):
        assert not (out / rel).exists(), rel
    assert (out / "notes.txt").read_text() == "mine" and (out / "data" / "mine.csv").read_text() == "mine"
    assert (out / "linked").is_symlink() and (out / "data" / "validation-00000-of-00001.parquet").is_symlink()
    assert (outside / "precious.txt").read_text() == "keep" and (outside / "secret.parquet").read_text() == "keep"
    assert json.loads((out / ".datatune" / "run.json").read_text())["fingerprint"] == OTHER_FP
    assert not (out / ".datatune" / "shards").exists()


def test_write_output_records_what_it_wrote(tmp_path):
    from datatune.output import write_output
    from datatune.task import TaskSpec

    out = tmp_path / "out"
    RunDir(out).open(FP, {}, resume=False, overwrite=False)
    write_output(out, TaskSpec(description="d", output_kind="label", labels=["positive"]), {"train": ROWS},
                 [a_plan()], drops={}, manifest={},
                 metrics={"plots": {"label_distribution": "label_distribution.png"}})
    rec = set(json.loads((out / ".datatune" / "outputs.json").read_text()))
    assert rec == {"data/train-00000-of-00001.parquet", "README.md", "plans.json", "manifest.json", "plots/label_distribution.png"}


# -- 2. one build per folder ---------------------------------------------------------------------
HOLDER = """
import sys
from datatune.rundir import RunDir
run = RunDir(sys.argv[1])
run.open(sys.argv[2], {"description": "build A"}, resume=False, overwrite=False)
run.write_shard("src/ds:default", 0, [])
print("ready", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def held(tmp_path):
    """--out held by build A, running in another process."""
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(out), FP], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        yield out
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)


def test_second_build_on_a_locked_folder_fails_at_once(held):
    before = sorted(p.relative_to(held) for p in held.rglob("*"))
    for kw in ({"resume": True, "overwrite": False}, {"resume": False, "overwrite": True}):
        with pytest.raises(RunStateError, match="in use by another datatune build") as e:
            RunDir(held).open(FP, {}, **kw)
        assert str(held) in str(e.value)
    assert sorted(p.relative_to(held) for p in held.rglob("*")) == before  # B deleted nothing of A's


def test_second_build_on_a_locked_folder_is_one_line_in_the_cli(held, hub_path):
    line = one_line(CliRunner().invoke(main, build_args(hub_path, held, "--overwrite")), match="in use")
    assert str(held) in line


def test_lock_is_released_when_the_run_is_done(tmp_path):
    a_run(tmp_path / "out")  # set_status("done") releases it
    code = f"from datatune.rundir import RunDir; RunDir({str(tmp_path / 'out')!r}).open({FP!r}, {{}}, resume=True, overwrite=False)"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_a_build_in_another_thread_holds_the_folder(tmp_path):
    out = tmp_path / "out"
    opened, stop = threading.Event(), threading.Event()

    def build_a():
        run = RunDir(out)
        run.open(FP, {}, resume=False, overwrite=False)
        opened.set()
        stop.wait(30)
        run.close()

    t = threading.Thread(target=build_a)
    t.start()
    try:
        assert opened.wait(30)
        with pytest.raises(RunStateError, match="in use"):
            RunDir(out).open(FP, {}, resume=True, overwrite=True)
    finally:
        stop.set()
        t.join()
    RunDir(out).open(FP, {}, resume=True, overwrite=False)  # free again


def test_a_failed_build_does_not_lock_out_its_own_rerun(tmp_path):
    out = tmp_path / "out"
    stale = RunDir(out)  # e.g. kept alive by a traceback after the build raised
    stale.open(FP, {}, resume=False, overwrite=False)
    again = RunDir(out)
    assert again.open(FP, {}, resume=True, overwrite=False) is True


def test_shards_of_another_run_are_never_read(tmp_path):
    out = tmp_path / "out"
    run = RunDir(out)
    run.open(FP, {}, resume=False, overwrite=False)
    run.write_shard("src/ds:default", 0, ROWS)
    assert run.read_shard("src/ds:default", 0) == ROWS
    getattr(run, "close", lambda: None)()
    (out / ".datatune" / "run.json").write_text("{torn")  # the run record is lost; its shards stay
    other = RunDir(out)
    other.open(OTHER_FP, {}, resume=False, overwrite=False)
    assert other.read_shard("src/ds:default", 0) is None
    assert other.shard_path("src/ds:default", 0).name.startswith(OTHER_FP)


# -- 3. --resume with other inputs ----------------------------------------------------------------
def test_resume_with_other_inputs_is_refused(tmp_path):
    out = tmp_path / "out"
    a_run(out)
    with pytest.raises(RunStateError) as e:
        RunDir(out).open(OTHER_FP, {"description": "another task", "seed": 3}, resume=True, overwrite=False)
    msg = str(e.value)
    assert "different build" in msg and "another --out" in msg and "--overwrite" in msg
    assert json.loads((out / ".datatune" / "run.json").read_text())["fingerprint"] == FP  # untouched


def test_resume_with_other_inputs_through_build(catalog, fake_llm, tmp_path):
    from datatune.pipeline import BuildOptions, build

    from .test_pipeline import KEYS, SENTIMENT, retriever_for, smart_fake

    llm, _ = fake_llm(smart_fake())
    out = tmp_path / "out"
    build(SENTIMENT, curate_fn=None, topup_fn=None, embedder=None, catalog=catalog, llm=llm, retriever=retriever_for(catalog, KEYS), options=BuildOptions(out=out, size=40))
    with pytest.raises(RunStateError, match="different build"):
        build("Classify the topic of news headlines", curate_fn=None, topup_fn=None, embedder=None, catalog=catalog, llm=llm, retriever=retriever_for(catalog, KEYS),
              options=BuildOptions(out=out, size=40, seed=3, resume=True))
    assert json.loads((out / "manifest.json").read_text())["seed"] == 0


# -- 4. --out that is a file ---------------------------------------------------------------------
def test_out_that_is_a_file(tmp_path, hub_path):
    f = tmp_path / "f"
    f.write_text("x")
    with pytest.raises(RunStateError, match="is a file"):
        RunDir(f).open(FP, {}, resume=False, overwrite=True)
    one_line(CliRunner().invoke(main, build_args(hub_path, f)), match="choose another --out")
    assert f.read_text() == "x"


# -- 5. the HTML report --------------------------------------------------------------------------
XSS = "<script>alert(1)</script>"


def test_report_escapes_data_and_inlines_only_datatune_plots(tmp_path):
    from datatune.output import write_output
    from datatune.report import render_html
    from datatune.task import TaskSpec

    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG secret bytes")
    out = tmp_path / "out"
    RunDir(out).open(FP, {}, resume=False, overwrite=False)
    (out / "plots").mkdir(parents=True)
    (out / "plots" / "label_distribution.png").write_bytes(b"\x89PNG datatune plot")
    (out / "plots" / "planted.png").write_bytes(b"\x89PNG planted")
    desc = f"Classify {XSS} ![a]({secret}) ![b](plots/../../secret.png) ![c](plots/planted.png) <img src=\"{secret}\">"
    spec = TaskSpec(description=desc, output_kind="label", labels=[f"pos{XSS}", "negative"])
    rows = [Row("text", f"pos{XSS}", "src/ds", "default", "train", 1)]
    plan = a_plan(license=f"mit{XSS}")
    write_output(out, spec, {"train": rows}, [plan], drops={}, manifest={"quality": {"plots": {"label_distribution": "label_distribution.png"}}},
                 metrics={"plots": {"label_distribution": "label_distribution.png"}})
    page = render_html(out).read_text()
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert base64.b64encode(secret.read_bytes()).decode() not in page
    assert base64.b64encode(b"\x89PNG planted").decode() not in page
    assert base64.b64encode(b"\x89PNG datatune plot").decode() in page  # datatune's own plot is inlined


# -- 6. push -------------------------------------------------------------------------------------
class RecordingApi:
    def __init__(self, fail=None):
        self.fail, self.uploaded = fail, None

    def create_repo(self, repo_id, **kw):
        if self.fail:
            raise self.fail

    def create_commit(self, repo_id, operations, **kw):
        self.uploaded = {op.path_in_repo: Path(op.path_or_fileobj) for op in operations}
        return type("Info", (), {"repo_url": f"https://huggingface.co/datasets/{repo_id}"})()

    def upload_folder(self, folder_path, ignore_patterns=None, allow_patterns=None, **kw):
        from huggingface_hub.utils import filter_repo_objects

        root = Path(folder_path)
        files = {p.relative_to(root).as_posix(): p for p in root.glob("**/*") if p.is_file()}
        self.uploaded = {k: files[k] for k in filter_repo_objects(files, allow_patterns=allow_patterns, ignore_patterns=ignore_patterns)}
        return type("Info", (), {"repo_url": "https://huggingface.co/datasets/x"})()


def test_push_uploads_only_what_the_build_wrote(tmp_path):
    from datatune.publish import push

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "id_rsa").write_text("private key")
    out = tmp_path / "out"
    wrote = ["data/train-00000-of-00001.parquet", "README.md", "plans.json", "manifest.json", "plots/label_distribution.png", "report.html"]
    for rel in wrote + [".env", "notes.txt", ".datatune/run.json", "data/.train.parquet.tmp"]:
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text("x")
    (out / "data" / "validation-00000-of-00001.parquet").symlink_to(outside / "id_rsa")
    (out / "plots" / "leak.png").symlink_to(outside / "id_rsa")
    (out / "linked").symlink_to(outside, target_is_directory=True)
    api = RecordingApi()
    push(out, "me/ds", api=api)
    assert sorted(api.uploaded) == sorted(wrote)
    assert all(p.resolve().is_relative_to(out.resolve()) for p in api.uploaded.values())


def test_push_offline_says_the_hub_cant_be_reached(tmp_path):
    from datatune.errors import OfflineError
    from datatune.publish import push

    out = tmp_path / "out"
    (out / "data").mkdir(parents=True)
    (out / "data" / "train-00000-of-00001.parquet").write_text("x")
    (out / "README.md").write_text("card")
    with pytest.raises(OfflineError) as e:
        push(out, "me/ds", api=RecordingApi(fail=ConnectionError("no route")))
    msg = str(e.value)
    assert "can't be reached" in msg and "online" in msg and "HF_ENDPOINT" in msg and "--catalog" not in msg


def test_manifest_holds_no_credentials(tmp_path):
    from datatune.output import write_output
    from datatune.task import TaskSpec

    out = tmp_path / "out"
    endpoint = "http://alice:hunter2@llm.example:8000/v1?api_key=sk-live-123&api-version=2024-06"
    write_output(out, TaskSpec(description="d"), {"train": ROWS}, [a_plan()],
                 drops={}, manifest={"endpoint": endpoint, "nested": [{"url": "https://u:p@h/x?token=abc"}]})
    text = (out / "manifest.json").read_text()
    for secret in ("alice", "hunter2", "sk-live-123", "u:p@", "abc"):
        assert secret not in text, secret
    m = json.loads(text)
    assert m["endpoint"].startswith("http://llm.example:8000/v1?") and "api-version=2024-06" in m["endpoint"]
